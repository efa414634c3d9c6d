"""Training and evaluation of the relevance heads (the encoder is fixed here; see ``finetune`` for tuning it).

Two measurements, both printed by ``digest train``:

* **5-fold CV** on the labels (stratified by label, seed 0);
* a **time-based split**: heads fit on papers listed up to ``split`` (default 2025-12), scored on the later
  ones — the model always meets papers newer than its labels. The threshold policy reads this split:
  the best F1 among thresholds keeping recall on clearly relevant papers ≥ 0.95.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from digest.errors import ModelError
from digest.relevance.data import Example
from digest.relevance.model import (
    TFIDF_PARAMS,
    Params,
    RelevanceModel,
    Targets,
    choose_threshold,
    fit_heads,
    metrics,
    tfidf_text,
)

DEFAULT_SPLIT = "2025-12"
MIN_RECALL2 = 0.95


def targets_of(examples: Sequence[Example], topics: Sequence[str]) -> Targets:
    """Label rows train every topic (positive where labelled with it); seed/vote rows as they say."""
    t = Targets.empty(len(examples), len(topics))
    for i, e in enumerate(examples):
        for k, topic in enumerate(topics):
            if e.kind in ("label", "reading-list"):
                t.y[i, k] = 1 if e.label >= 1 and topic in e.topics else 0
            elif topic in e.topics:
                t.y[i, k] = 1 if e.label >= 1 else 0
            t.w[i, k] = e.weight
    return t


def topics_of(examples: Sequence[Example], order: Sequence[str] = ()) -> list[str]:
    """The topics the labels name: those of ``order`` (the topics file) first, in its order, then the rest."""
    seen: dict[str, None] = {}
    for e in examples:
        for t in e.topics:
            seen.setdefault(t, None)
    if not seen:
        raise ModelError("the labels name no topics: relevant papers need a topics list")
    return [t for t in order if t in seen] + [t for t in seen if t not in order]


def _texts(ex: Sequence[Example], params: Params) -> list[str]:
    return [tfidf_text(e.paper.title, e.paper.abstract, params.title_weight) for e in ex]


def fit(
    examples: Sequence[Example], emb: np.ndarray, topics: Sequence[str], params: Params, embedder: str
) -> RelevanceModel:
    """Fit the tf-idf vocabulary and every topic's heads on ``examples`` (threshold 0.5 until chosen)."""
    vec = TfidfVectorizer(**TFIDF_PARAMS)
    x = vec.fit_transform(_texts(examples, params)) if params.use_tfidf else None
    targets = targets_of(examples, topics)
    coef_t, coef_e, icpt = fit_heads(x, emb, targets, params)
    pos = [i for i, e in enumerate(examples) if e.label >= 1]
    return RelevanceModel(
        topics=tuple(topics),
        vocabulary=list(vec.get_feature_names_out()) if x is not None else [],
        idf=vec.idf_.astype(np.float32) if x is not None else np.zeros(0, np.float32),
        coef_tfidf=coef_t,
        coef_emb=coef_e,
        intercept=icpt,
        threshold=0.5,
        params=params,
        embedder=embedder,
        pos_emb=emb[pos].astype(np.float16),
        pos_ids=[examples[i].paper.id for i in pos],
        pos_titles=[examples[i].paper.title for i in pos],
        pos_topics=[list(examples[i].topics) for i in pos],
    )


def scores_of(model: RelevanceModel, ex: Sequence[Example], emb: np.ndarray) -> np.ndarray:
    return model.topic_scores([e.paper.title for e in ex], [e.paper.abstract for e in ex], emb)


def oof_scores(
    ex: Sequence[Example], emb: np.ndarray, topics: Sequence[str], params: Params, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold (n, T) topic scores by stratified k-fold CV."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([e.label for e in ex])
    out = np.zeros((len(ex), len(topics)))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        m = fit([ex[i] for i in tr], emb[tr], topics, params, "cv")
        out[te] = scores_of(m, [ex[i] for i in te], emb[te])
    return out


def time_split(ex: Sequence[Example], until: str = DEFAULT_SPLIT) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: papers listed up to month ``until`` vs later ones."""
    months = np.array([e.month for e in ex])
    if not all(months):
        raise ModelError("a time-based split needs every labelled paper's date (a corpus with `date`)")
    tr, va = np.where(months <= until)[0], np.where(months > until)[0]
    if not len(tr) or not len(va):
        raise ModelError(f"the time split at {until} leaves an empty side ({len(tr)} / {len(va)} papers)")
    return tr, va


def split_scores(
    ex: Sequence[Example], emb: np.ndarray, topics: Sequence[str], params: Params, until: str = DEFAULT_SPLIT
) -> tuple[np.ndarray, np.ndarray]:
    """(validation indices, their (n_val, T) scores) from heads fit on the earlier papers only."""
    tr, va = time_split(ex, until)
    m = fit([ex[i] for i in tr], emb[tr], topics, params, "split")
    return va, scores_of(m, [ex[i] for i in va], emb[va])


def report(labels: np.ndarray, score: np.ndarray, strata: np.ndarray, threshold: float) -> dict[str, Any]:
    """Metrics at ``threshold``, overall and per stratum (``random`` estimates a real day)."""
    out: dict[str, Any] = {"threshold": round(threshold, 4), **metrics(labels, score >= threshold)}
    out["strata"] = {
        s: metrics(labels[strata == s], score[strata == s] >= threshold) for s in sorted(set(strata.tolist())) if s
    }
    return out


def nested_f1(labels: np.ndarray, score: np.ndarray) -> float:
    """F1 with the threshold chosen on one half of the papers and applied to the other (both ways, averaged)."""
    idx = np.arange(len(labels))
    fs = []
    for a, b in ((idx % 2 == 0, idx % 2 == 1), (idx % 2 == 1, idx % 2 == 0)):
        t = choose_threshold(labels[a], score[a], MIN_RECALL2)
        fs.append(metrics(labels[b], score[b] >= t)["f1"])
    return round(float(np.mean(fs)), 4)


@dataclass
class TrainResult:
    model: RelevanceModel
    cv: dict[str, Any]
    split: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = []
        cv_name = f"{self.cv.get('folds', 5)}-fold CV"
        for name, m in ((cv_name, self.cv), (f"time split (train ≤ {self.split.get('until', '')})", self.split)):
            if not m:
                continue
            rnd = m.get("strata", {}).get("random")
            out.append(
                f"{name}: F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f}, clear-recall "
                f"{m['recall_label2']:.3f}) at threshold {m['threshold']:.3f}"
                + (f"; random stratum F1 {rnd['f1']:.3f}" if rnd else "")
                + (f"; nested F1 {m['nested_f1']:.3f}" if "nested_f1" in m else "")
                + (f" — {m['note']}" if "note" in m else "")
            )
        return out


def train(
    ex: Sequence[Example],
    emb: np.ndarray,
    embedder: str,
    params: Params | None = None,
    extra: Sequence[Example] = (),
    extra_emb: np.ndarray | None = None,
    folds: int = 5,
    split: str | None = DEFAULT_SPLIT,
    split_scores_override: tuple[np.ndarray, np.ndarray] | None = None,
    tuned: bool = False,
    order: Sequence[str] = (),
) -> TrainResult:
    """Fit on the labels (+ ``extra`` positives); CV and time-split lines; threshold from the split."""
    params = params or Params()
    topics = topics_of(list(ex) + list(extra), order)
    y = np.array([e.label for e in ex])
    strata = np.array([e.stratum for e in ex])
    oof = oof_scores(ex, emb, topics, params, folds=folds).max(axis=1)
    cv_thr = choose_threshold(y, oof, MIN_RECALL2)
    cv = {"folds": folds, **report(y, oof, strata, cv_thr)}
    if tuned:  # the encoder saw every label: CV over its embeddings only re-fits the heads
        cv["note"] = "heads only; the encoder was tuned on these labels (optimistic)"
    split_rep: dict[str, Any] = {}
    threshold = cv_thr
    if split:
        va, s = split_scores_override or split_scores(ex, emb, topics, params, split)
        s_max = s.max(axis=1) if s.ndim == 2 else s
        threshold = choose_threshold(y[va], s_max, MIN_RECALL2)
        split_rep = {
            "until": split,
            **report(y[va], s_max, strata[va], threshold),
            "nested_f1": nested_f1(y[va], s_max),
        }
    all_ex = list(ex) + list(extra)
    all_emb = emb if extra_emb is None or not len(extra) else np.vstack([emb, extra_emb])
    model = fit(all_ex, all_emb, topics, params, embedder)
    model.threshold = threshold
    model.card = {
        "trained": dt.date.today().isoformat(),
        "examples": len(all_ex),
        "positives": sum(e.label >= 1 for e in all_ex),
        "label2": sum(e.label == 2 for e in all_ex),
        "topics": topics,
        "embedder": embedder,
        "params": params.__dict__,
        "cv": cv,
        "split": split_rep,
        "threshold_policy": f"best F1 with clear-recall ≥ {MIN_RECALL2} on the "
        + ("time split" if split else f"{folds}-fold CV"),
    }
    return TrainResult(model, cv, split_rep)


def tfidf_matrix(model: RelevanceModel, ex: Sequence[Example]) -> sparse.csr_matrix:
    return model.tfidf([e.paper.title for e in ex], [e.paper.abstract for e in ex])

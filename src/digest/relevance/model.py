"""The relevance classifier: TF-IDF (title weighted) + sentence embedding, one logistic head per topic.

Each topic head is a logistic regression on ``[tfidf(title ×2 + abstract), α · embedding]``; the
paper's score is the max over topics and ``relevant = score ≥ threshold``, the threshold chosen by
cross-validation for the recall goal (recall ≥ 0.95 on clearly relevant papers, best F1 under that).
The whole model is one ``.npz`` (vocabulary, idf, weights, labelled positives for explanations) that
loads in well under a second; prediction is numpy + a sparse matrix product.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from digest.errors import ModelError
from digest.models import Neighbour

TOPICS = ("clip", "editing")
DEFAULT_MODEL = Path(__file__).parent / "assets" / "relevance-model.npz"
TFIDF_PARAMS: dict[str, Any] = {
    "ngram_range": (1, 2),
    "min_df": 2,
    "max_df": 0.5,
    "sublinear_tf": True,
    "strip_accents": "unicode",
    "lowercase": True,
    "dtype": np.float32,
}


@dataclass
class Example:
    id: str
    version: int
    title: str
    abstract: str
    label: int
    topics: list[str]


@dataclass
class Params:
    """Late fusion: ``w`` · tf-idf logit + (1 − ``w``) · embedding logit, per topic (chosen by 5-fold CV)."""

    w: float = 0.8
    c_tfidf: float = 64.0  # inverse regularisation of the tf-idf heads
    c_emb: float = 16.0  # … of the embedding heads
    title_weight: int = 2
    use_tfidf: bool = True
    use_embedding: bool = True


def tfidf_text(title: str, abstract: str, title_weight: int = 2) -> str:
    return " ".join([title] * title_weight + [abstract])


@dataclass
class RelevanceModel:
    vocabulary: list[str]
    idf: np.ndarray
    coef_tfidf: np.ndarray  # (T, V)
    coef_emb: np.ndarray  # (T, D)
    intercept: np.ndarray  # (T,)
    threshold: float
    params: Params
    embedder: str
    pos_emb: np.ndarray  # (P, D) float16
    pos_ids: list[str]
    pos_titles: list[str]
    card: dict[str, Any] = field(default_factory=dict)
    topics: tuple[str, ...] = TOPICS
    _vec: TfidfVectorizer | None = None

    @property
    def name(self) -> str:
        return f"hybrid-{self.card.get('trained', 'dev')}"

    def vectorizer(self) -> TfidfVectorizer:
        if self._vec is None:
            vec = TfidfVectorizer(vocabulary={t: i for i, t in enumerate(self.vocabulary)}, **TFIDF_PARAMS)
            vec.idf_ = self.idf
            self._vec = vec
        return self._vec

    def topic_scores(self, titles: list[str], abstracts: list[str], emb: np.ndarray) -> np.ndarray:
        """(n, T) probabilities per topic."""
        z = np.tile(self.intercept, (len(titles), 1)).astype(np.float64)
        if self.params.use_tfidf and self.vocabulary:
            x = self.vectorizer().transform(
                [tfidf_text(t, a, self.params.title_weight) for t, a in zip(titles, abstracts, strict=True)]
            )
            z += np.asarray(x @ self.coef_tfidf.T)
        if self.params.use_embedding:
            z += emb.astype(np.float64) @ self.coef_emb.T.astype(np.float64)
        return 1.0 / (1.0 + np.exp(-z))

    def neighbours(self, emb: np.ndarray, k: int = 3) -> list[list[Neighbour]]:
        if not len(self.pos_ids):
            return [[] for _ in range(len(emb))]
        sims = emb.astype(np.float32) @ self.pos_emb.astype(np.float32).T
        top = np.argsort(-sims, axis=1)[:, :k]
        return [
            [
                Neighbour(id=self.pos_ids[j], title=self.pos_titles[j], similarity=round(float(sims[i, j]), 4))
                for j in row
            ]
            for i, row in enumerate(top)
        ]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "params": self.params.__dict__,
            "embedder": self.embedder,
            "threshold": self.threshold,
            "topics": list(self.topics),
            "card": self.card,
            "pos_ids": self.pos_ids,
            "pos_titles": self.pos_titles,
        }
        with open(path, "wb") as f:
            np.savez_compressed(
                f,
                vocabulary=np.array(self.vocabulary, dtype=object).astype(str),
                idf=self.idf.astype(np.float32),
                coef_tfidf=self.coef_tfidf.astype(np.float32),
                coef_emb=self.coef_emb.astype(np.float32),
                intercept=self.intercept.astype(np.float64),
                pos_emb=self.pos_emb.astype(np.float16),
                meta=np.array(json.dumps(meta)),
            )

    @classmethod
    def load(cls, path: Path | None = None) -> RelevanceModel:
        path = path or DEFAULT_MODEL
        if not path.is_file():
            raise ModelError(
                f"no relevance model at {path}: train one with `digest train --labels …` "
                "or unset DIGEST_RELEVANCE_MODEL to use the packaged one"
            )
        try:
            z = np.load(path, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{path} is not a relevance model file ({exc})") from None
        return cls(
            vocabulary=[str(t) for t in z["vocabulary"]],
            idf=z["idf"],
            coef_tfidf=z["coef_tfidf"],
            coef_emb=z["coef_emb"],
            intercept=z["intercept"],
            threshold=float(meta["threshold"]),
            params=Params(**meta["params"]),
            embedder=meta["embedder"],
            pos_emb=z["pos_emb"],
            pos_ids=meta["pos_ids"],
            pos_titles=meta["pos_titles"],
            card=meta["card"],
            topics=tuple(meta["topics"]),
        )


def fit(examples: list[Example], emb: np.ndarray, params: Params, embedder: str) -> RelevanceModel:
    """Fit a tf-idf head and an embedding head per topic and fold them into one linear model.

    The fused logit ``w·(x·a + b) + (1−w)·(e·c + d)`` is linear, so it is stored as one set of weights.
    """
    from sklearn.linear_model import LogisticRegression

    if len({e.label >= 1 for e in examples}) < 2:
        raise ModelError("training needs both relevant (label ≥ 1) and non-relevant (label 0) examples")
    w_t = params.w if params.use_tfidf and params.use_embedding else float(params.use_tfidf)
    w_e = 1.0 - w_t
    vec = TfidfVectorizer(**TFIDF_PARAMS)
    x_t = (
        vec.fit_transform([tfidf_text(e.title, e.abstract, params.title_weight) for e in examples])
        if params.use_tfidf
        else None
    )
    nv = x_t.shape[1] if x_t is not None else 0
    coef_t = np.zeros((len(TOPICS), nv), dtype=np.float32)
    coef_e = np.zeros((len(TOPICS), emb.shape[1]), dtype=np.float32)
    icpt = np.zeros(len(TOPICS))
    for k, topic in enumerate(TOPICS):
        y = np.array([e.label >= 1 and topic in e.topics for e in examples], dtype=int)
        if y.sum() == 0 or y.sum() == len(y):
            icpt[k] = -20.0 if y.sum() == 0 else 20.0
            continue
        if x_t is not None:
            ct = LogisticRegression(C=params.c_tfidf, class_weight="balanced", max_iter=5000).fit(x_t, y)
            coef_t[k] = w_t * ct.coef_[0]
            icpt[k] += w_t * ct.intercept_[0]
        if params.use_embedding:
            ce = LogisticRegression(C=params.c_emb, class_weight="balanced", max_iter=5000).fit(emb, y)
            coef_e[k] = w_e * ce.coef_[0]
            icpt[k] += w_e * ce.intercept_[0]
    pos = [i for i, e in enumerate(examples) if e.label >= 1]
    return RelevanceModel(
        vocabulary=list(vec.get_feature_names_out()) if x_t is not None else [],
        idf=vec.idf_.astype(np.float32) if x_t is not None else np.zeros(0, np.float32),
        coef_tfidf=coef_t,
        coef_emb=coef_e,
        intercept=icpt,
        threshold=0.5,
        params=params,
        embedder=embedder,
        pos_emb=emb[pos].astype(np.float16),
        pos_ids=[examples[i].id for i in pos],
        pos_titles=[examples[i].title for i in pos],
    )


def oof_scores(examples: list[Example], emb: np.ndarray, params: Params, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold (n, T) topic scores by stratified k-fold CV."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([e.label for e in examples])
    out = np.zeros((len(examples), len(TOPICS)))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        m = fit([examples[i] for i in tr], emb[tr], params, "cv")
        out[te] = m.topic_scores([examples[i].title for i in te], [examples[i].abstract for i in te], emb[te])
    return out


def metrics(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    rel = labels >= 1
    tp = float((pred & rel).sum())
    p = tp / max(pred.sum(), 1)
    r = tp / max(rel.sum(), 1)
    f1 = 2 * p * r / max(p + r, 1e-12)
    r2 = float((pred & (labels == 2)).sum()) / max((labels == 2).sum(), 1)
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "recall_label2": round(r2, 4),
        "n": len(labels),
        "positives": int(rel.sum()),
    }


def choose_threshold(labels: np.ndarray, score: np.ndarray, min_recall2: float = 0.95) -> float:
    """Best-F1 threshold among those keeping recall on label-2 papers ≥ ``min_recall2``."""
    best_t, best_f = 0.5, -1.0
    for t in np.unique(np.round(score, 4)):
        m = metrics(labels, score >= t)
        if m["recall_label2"] >= min_recall2 and m["f1"] > best_f:
            best_t, best_f = float(t), m["f1"]
    return best_t


def model_card(examples: list[Example], params: Params, embedder: str, cv: dict[str, Any]) -> dict[str, Any]:
    return {
        "trained": dt.date.today().isoformat(),
        "examples": len(examples),
        "positives": sum(e.label >= 1 for e in examples),
        "label2": sum(e.label == 2 for e in examples),
        "params": params.__dict__,
        "embedder": embedder,
        "cv": cv,
    }

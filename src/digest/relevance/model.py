"""The relevance classifier: per topic, a TF-IDF head and an embedding head, late-fused into one linear model.

For topic *k* the logit is ``w·(tfidf(x)·a_k + b_k) + (1−w)·(e(x)·c_k + d_k)`` — linear, so it is stored
as one set of weights (``coef_tfidf``, ``coef_emb``, ``intercept``). The paper's score is the max over
topics and ``relevant = score ≥ threshold`` (chosen for the recall goal: recall ≥ 0.95 on clearly relevant
papers under a time-based split, best F1 under that). The model records its topics, the encoder its
embeddings come from, and its labelled positives (for the "why" neighbours). One ``.npz``, loads in
well under a second; prediction is numpy + a sparse matrix product.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from digest.errors import ModelError
from digest.models import Neighbour

PACKAGED_MODEL = Path(__file__).parent / "assets" / "relevance-model.npz"
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
class Params:
    """Late fusion: ``w`` · tf-idf logit + (1 − ``w``) · embedding logit, per topic."""

    w: float = 0.8
    c_tfidf: float = 64.0  # inverse regularisation of the tf-idf heads
    c_emb: float = 16.0  # … of the embedding heads
    title_weight: int = 2
    use_tfidf: bool = True
    use_embedding: bool = True


def tfidf_text(title: str, abstract: str, title_weight: int = 2) -> str:
    return " ".join([title] * title_weight + [abstract])


@dataclass
class Targets:
    """Training targets: ``y[i, k]`` 1 / 0 / −1 (unknown: row ``i`` does not train topic ``k``), weights ``w``."""

    y: np.ndarray  # (n, T) int8
    w: np.ndarray  # (n, T) float32

    @classmethod
    def empty(cls, n: int, t: int) -> Targets:
        return cls(np.full((n, t), -1, np.int8), np.ones((n, t), np.float32))

    def stack(self, other: Targets) -> Targets:
        return Targets(np.vstack([self.y, other.y]), np.vstack([self.w, other.w]))


@dataclass
class RelevanceModel:
    topics: tuple[str, ...]
    vocabulary: list[str]
    idf: np.ndarray
    coef_tfidf: np.ndarray  # (T, V)
    coef_emb: np.ndarray  # (T, D)
    intercept: np.ndarray  # (T,)
    threshold: float
    params: Params
    embedder: str
    pos_emb: np.ndarray  # (P, D) float16: labelled positives / seeds, for explanations
    pos_ids: list[str]
    pos_titles: list[str]
    pos_topics: list[list[str]]
    card: dict[str, Any] = field(default_factory=dict)
    topic_thresholds: dict[str, float] = field(default_factory=dict)  # seeded topics calibrated on their seeds
    _vec: TfidfVectorizer | None = None

    def thresholds(self, override: float | None = None) -> np.ndarray:
        """The decision threshold of each topic (``override`` replaces all of them)."""
        if override is not None:
            return np.full(len(self.topics), override)
        return np.array([self.topic_thresholds.get(t, self.threshold) for t in self.topics])

    @property
    def name(self) -> str:
        return f"hybrid-{self.card.get('trained', 'dev')}"

    def vectorizer(self) -> TfidfVectorizer:
        if self._vec is None:
            self._vec = make_vectorizer(self.vocabulary, self.idf)
        return self._vec

    def tfidf(self, titles: list[str], abstracts: list[str]) -> sparse.csr_matrix:
        texts = [tfidf_text(t, a, self.params.title_weight) for t, a in zip(titles, abstracts, strict=True)]
        return self.vectorizer().transform(texts)

    def logits(self, titles: list[str], abstracts: list[str], emb: np.ndarray) -> np.ndarray:
        z = np.tile(self.intercept, (len(titles), 1)).astype(np.float64)
        if self.vocabulary and len(titles):
            z += np.asarray(self.tfidf(titles, abstracts) @ self.coef_tfidf.T)
        if len(titles):
            z += emb.astype(np.float64) @ self.coef_emb.T.astype(np.float64)
        return z

    def topic_scores(self, titles: list[str], abstracts: list[str], emb: np.ndarray) -> np.ndarray:
        """(n, T) probabilities per topic."""
        return 1.0 / (1.0 + np.exp(-self.logits(titles, abstracts, emb)))

    def neighbours(self, emb: np.ndarray, best: list[str | None] | None = None, k: int = 3) -> list[list[Neighbour]]:
        """The ``k`` labelled positives (or seeds) nearest each paper, among those of its best topic."""
        if not len(self.pos_ids):
            return [[] for _ in range(len(emb))]
        sims = emb.astype(np.float32) @ self.pos_emb.astype(np.float32).T
        out = []
        for i, row in enumerate(sims):
            topic = best[i] if best else None
            if topic is not None:
                mask = np.array([topic in ts for ts in self.pos_topics])
                if mask.any():
                    row = np.where(mask, row, -np.inf)
            top = np.argsort(-row)[:k]
            out.append(
                [
                    Neighbour(id=self.pos_ids[j], title=self.pos_titles[j], similarity=round(float(row[j]), 4))
                    for j in top
                ]
            )
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "params": asdict(self.params),
            "embedder": self.embedder,
            "threshold": self.threshold,
            "topics": list(self.topics),
            "card": self.card,
            "pos_ids": self.pos_ids,
            "pos_titles": self.pos_titles,
            "pos_topics": self.pos_topics,
            "topic_thresholds": self.topic_thresholds,
        }
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
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
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RelevanceModel:
        if not path.is_file():
            raise ModelError(
                f"no relevance model at {path}: train one with `digest train`, "
                "or unset DIGEST_RELEVANCE_MODEL to use the packaged one"
            )
        try:
            z = np.load(path, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
            topics = tuple(meta["topics"])
            return cls(
                topics=topics,
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
                pos_topics=meta.get("pos_topics") or [list(topics)] * len(meta["pos_ids"]),
                card=meta["card"],
                topic_thresholds=meta.get("topic_thresholds") or {},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is not a relevance model file ({exc}): retrain with `digest train`") from None


def make_vectorizer(vocabulary: list[str], idf: np.ndarray) -> TfidfVectorizer:
    vec = TfidfVectorizer(vocabulary={t: i for i, t in enumerate(vocabulary)}, **TFIDF_PARAMS)
    vec.idf_ = idf
    return vec


def fit_heads(
    x_tfidf: sparse.csr_matrix | None,
    emb: np.ndarray,
    targets: Targets,
    params: Params,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per topic, a tf-idf head and an embedding head on the rows that train it; (coef_tfidf, coef_emb, b)."""
    from sklearn.linear_model import LogisticRegression

    n_topics = targets.y.shape[1]
    w_t = params.w if params.use_tfidf and params.use_embedding else float(params.use_tfidf)
    w_e = 1.0 - w_t
    nv = x_tfidf.shape[1] if x_tfidf is not None else 0
    coef_t = np.zeros((n_topics, nv), dtype=np.float32)
    coef_e = np.zeros((n_topics, emb.shape[1]), dtype=np.float32)
    icpt = np.zeros(n_topics)
    for k in range(n_topics):
        rows = np.where(targets.y[:, k] >= 0)[0]
        y = targets.y[rows, k].astype(int)
        sw = targets.w[rows, k]
        if len(rows) == 0 or y.sum() == 0 or y.sum() == len(y):
            raise ModelError(f"topic #{k} has no positive or no negative examples: it cannot be trained")
        if x_tfidf is not None and params.use_tfidf:
            ct = LogisticRegression(C=params.c_tfidf, class_weight="balanced", max_iter=5000)
            ct.fit(x_tfidf[rows], y, sample_weight=sw)
            coef_t[k] = w_t * ct.coef_[0]
            icpt[k] += w_t * ct.intercept_[0]
        if params.use_embedding:
            ce = LogisticRegression(C=params.c_emb, class_weight="balanced", max_iter=5000)
            ce.fit(emb[rows], y, sample_weight=sw)
            coef_e[k] = w_e * ce.coef_[0]
            icpt[k] += w_e * ce.intercept_[0]
    return coef_t, coef_e, icpt


def metrics(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """P / R / F1 of label ≥ 1 vs 0, and recall on clearly relevant (label 2) papers."""
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
    """The threshold policy: best F1 among thresholds keeping recall on label-2 papers ≥ ``min_recall2``."""
    best_t, best_f = 0.5, -1.0
    for t in np.unique(np.round(score, 4)):
        m = metrics(labels, score >= t)
        if m["recall_label2"] >= min_recall2 and m["f1"] > best_f:
            best_t, best_f = float(t), m["f1"]
    return best_t


def today() -> str:
    return dt.date.today().isoformat()


#: the fusion chosen on the time split for a fine-tuned encoder (docs/RELEVANCE.md)
FINETUNED_PARAMS: dict[str, Any] = {"w": 0.3, "c_tfidf": 64.0, "c_emb": 1.0}

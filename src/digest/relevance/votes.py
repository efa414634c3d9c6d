"""Retraining from the reader: the shipped base data, each topic's seed papers, and every vote.

Like Scholar Inbox, each topic's heads are linear models on the paper representation, refit from:

* the **base labels** shipped with the package (features only: embeddings and TF-IDF rows of the 5,300
  labelled papers, so retraining needs no ``../shared``) for the shipped topics;
* **seed papers** (positives) for a reader's own topic, with the base papers and the store's papers as
  weak negatives (weight :data:`W_UNLABELLED`), fetched from the arXiv API by id when not in the store;
* **votes**: up-votes as positives and down-votes as hard negatives (weight :data:`W_VOTE`), so a vote
  flips its paper and moves the papers near it — the heads change, not a per-id override list.

The encoder is not retrained here (minutes, not hours); ``digest train --labels … --finetune`` does that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from digest.errors import ModelError
from digest.models import Paper
from digest.relevance.data import Example
from digest.relevance.embed import Embedder, embed_papers
from digest.relevance.model import RelevanceModel, Targets, fit_heads, metrics
from digest.store import ANY, Store, Vote
from digest.topics import Topic

Say = Callable[[str], None]
W_VOTE = 20.0  # an explicit vote outweighs many labels nearby: it must decide its own paper
W_SEED = 5.0
W_UNLABELLED = 0.3  # unlabelled papers as negatives of a seeded topic (most papers are not about it)
MAX_UNLABELLED = 4000


def base_path(model_file: Path) -> Path:
    return model_file.with_name(model_file.stem + "-base.npz")


def save_base_features(model_file: Path, model: RelevanceModel, ex: Sequence[Example], emb: np.ndarray) -> Path:
    """What retraining from votes needs of the labels: per-topic targets and features, no text."""
    x = model.tfidf([e.paper.title for e in ex], [e.paper.abstract for e in ex]).tocsr().astype(np.float32)
    y = np.array([[1 if e.label >= 1 and t in e.topics else 0 for t in model.topics] for e in ex], dtype=np.int8)
    path = base_path(model_file)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            ids=np.array([e.paper.id for e in ex]),
            label=np.array([e.label for e in ex], dtype=np.int8),
            y=y,
            topics=np.array(list(model.topics)),
            emb=emb.astype(np.float16),
            x_data=x.data.astype(np.float16),
            x_indices=x.indices.astype(np.int32),
            x_indptr=x.indptr.astype(np.int32),
            x_shape=np.array(x.shape),
        )
    tmp.replace(path)
    return path


class Base:
    """The shipped base data, loaded."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise ModelError(f"no base training data at {path}: retrain once with `digest train --labels …`")
        z = np.load(path, allow_pickle=False)
        self.ids = [str(i) for i in z["ids"]]
        self.label = z["label"].astype(int)
        self.y = z["y"].astype(np.int8)
        self.topics = [str(t) for t in z["topics"]]
        self.emb = z["emb"].astype(np.float32)
        shape = tuple(int(v) for v in z["x_shape"])
        self.x = sparse.csr_matrix((z["x_data"].astype(np.float32), z["x_indices"], z["x_indptr"]), shape=shape)


def vote_targets(
    votes: Sequence[Vote],
    topics: Sequence[str],
    best: dict[str, str],
    passing: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, int]]:
    """paper id → topic → 1 / 0 from the latest votes (``any``: up = the paper's best topic, down = all).

    A 👎 under one topic also says no for every other topic the paper passes now (``passing``): the paper is
    shown once, under one topic, and "not for me" means out of the digest — a 👎 under ``clip`` on a paper the
    ``editing`` head also kept used to leave it in the digest, on the other head."""
    out: dict[str, dict[str, int]] = {}
    for v in sorted(votes, key=lambda v: v.created):
        row = out.setdefault(v.paper_id, {})
        targets = (
            list(topics)
            if v.topic == ANY and v.vote == "down"
            else [best.get(v.paper_id, topics[0])]
            if v.topic == ANY
            else [v.topic, *(passing or {}).get(v.paper_id, [])]
            if v.vote == "down"
            else [v.topic]
        )
        for t in targets:
            if t in topics:
                row[t] = 1 if v.vote == "up" else 0
    return out


@dataclass
class VotePlan:
    """The rows a retraining adds to the base data, and their per-topic targets and weights (no features yet)."""

    topics: list[str]
    rows: list[Paper] = field(default_factory=list)
    y: list[list[int]] = field(default_factory=list)
    w: list[list[float]] = field(default_factory=list)
    by_vote: dict[str, dict[str, int]] = field(default_factory=dict)
    unlabelled: int = 0

    def add(self, paper: Paper, targets: dict[str, int], weight: float) -> None:
        y = [-1] * len(self.topics)
        for t, v in targets.items():
            y[self.topics.index(t)] = v
        self.rows.append(paper)
        self.y.append(y)
        self.w.append([weight] * len(self.topics))

    def targets(self) -> Targets:
        n = len(self.topics)
        return Targets(np.array(self.y, np.int8).reshape(-1, n), np.array(self.w, np.float32).reshape(-1, n))


def plan_targets(
    topics: list[str],
    votes: Sequence[Vote],
    voted: dict[str, Paper],
    best: dict[str, str],
    seeds: dict[str, list[str]],
    seed_papers: dict[str, Paper],
    base_topics: Sequence[str],
    base_ids: Sequence[str],
    pool: Sequence[Paper],
    passing: dict[str, list[str]] | None = None,
) -> VotePlan:
    """Pure: votes (latest per paper and topic) as hard targets, seeds as positives, and — for a topic seeded
    anew — unlabelled papers of ``pool`` as weak negatives."""
    plan = VotePlan(topics=list(topics))
    plan.by_vote = vote_targets(votes, topics, best, passing)
    for pid, tv in plan.by_vote.items():
        if pid in voted:
            plan.add(voted[pid], tv, W_VOTE)
    for t, ids in seeds.items():
        for i in ids:
            if i in seed_papers and i not in plan.by_vote:
                plan.add(seed_papers[i], {t: 1}, W_SEED)
    seeded = [t for t in topics if t in seeds or t not in base_topics]
    if seeded:
        taken = {p.id for p in plan.rows} | set(base_ids)
        unl = [p for p in pool if p.id not in taken][:MAX_UNLABELLED]
        for p in unl:
            plan.add(p, dict.fromkeys(seeded, 0), W_UNLABELLED)
        plan.unlabelled = len(unl)
    return plan


def base_targets(
    base: Base, topics: list[str], seeds: dict[str, list[str]], by_vote: dict[str, dict[str, int]]
) -> Targets:
    """Pure: the base labels train the shipped topics (unless seeded anew), are weak negatives for new topics,
    and a vote on a base paper overrides its label."""
    t_index = {t: k for k, t in enumerate(topics)}
    yb = np.full((len(base.ids), len(topics)), -1, np.int8)
    wb = np.ones((len(base.ids), len(topics)), np.float32)
    for t, k in t_index.items():
        if t in base.topics and t not in seeds:
            yb[:, k] = base.y[:, base.topics.index(t)]
        else:
            yb[:, k] = 0
            wb[:, k] = W_UNLABELLED
    for row_i, pid in enumerate(base.ids):
        for topic, v in by_vote.get(pid, {}).items():
            yb[row_i, t_index[topic]] = v
            wb[row_i, t_index[topic]] = W_VOTE
    return Targets(yb, wb)


@dataclass
class Refit:
    model: RelevanceModel
    f1_before: float
    f1_after: float


def fit_from_votes(
    base: Base,
    base_model: RelevanceModel,
    plan: VotePlan,
    seeds: dict[str, list[str]],
    seed_papers: dict[str, Paper],
    embedder: Embedder,
    store: Store | None,
) -> Refit:
    """Fit the topic heads on base data + the plan's rows; thresholds for seeded topics; the model card."""
    topics = plan.topics
    rows = plan.rows
    emb_rows, _ = embed_papers(rows, embedder, store) if rows else (np.zeros((0, base.emb.shape[1]), np.float32), 0)
    x_rows = base_model.tfidf([p.title for p in rows], [p.abstract for p in rows]) if rows else None
    targets = base_targets(base, topics, seeds, plan.by_vote).stack(plan.targets())
    x = sparse.vstack([base.x, x_rows]).tocsr() if x_rows is not None else base.x
    emb = np.vstack([base.emb, emb_rows]) if len(rows) else base.emb
    before = _f1_on_base(base, base_model, topics)
    coef_t, coef_e, icpt = fit_heads(x, emb, targets, base_model.params)
    model = _assemble(base_model, topics, coef_t, coef_e, icpt, seed_papers, seeds, embedder, store)
    model.topic_thresholds = seed_thresholds(x, emb, targets, base_model, topics, seeds, model.threshold)
    model.card = {
        **base_model.card,
        "trained": dt.date.today().isoformat(),
        "retrained_from": "base labels + seeds + votes",
        "votes": len(plan.by_vote),
        "seeds": {t: len(v) for t, v in seeds.items()},
        "topics": list(topics),
    }
    return Refit(model, before, _f1_on_base(base, model, topics) if before else 0.0)


def passing_topics(
    model: RelevanceModel, papers: list[Paper], emb: np.ndarray, override: float | None = None
) -> dict[str, list[str]]:
    """Each paper's topics whose head keeps it under ``model`` now (what a 👎 must take it out of)."""
    if not papers:
        return {}
    s = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    thr = model.thresholds(override)
    return {p.id: [t for k, t in enumerate(model.topics) if r[k] >= thr[k]] for p, r in zip(papers, s, strict=True)}


def best_topics(model: RelevanceModel, papers: list[Paper], emb: np.ndarray) -> dict[str, str]:
    """Each paper's highest-scoring topic under ``model`` (where an ``any`` up-vote lands)."""
    if not papers:
        return {}
    s = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    return {p.id: model.topics[int(np.argmax(r))] for p, r in zip(papers, s, strict=True)}


def seed_thresholds(
    x: sparse.csr_matrix,
    emb: np.ndarray,
    targets: Targets,
    base_model: RelevanceModel,
    topics: Sequence[str],
    seeds: dict[str, list[str]],
    default: float,
    folds: int = 5,
    keep: float = 0.85,
) -> dict[str, float]:
    """A seeded topic has no labels to choose its threshold on: hold out each fifth of its positives, refit its
    heads without them, and set the threshold so that ``keep`` of the held-out positives pass (never above
    the shipped threshold)."""
    out: dict[str, float] = {}
    for t in seeds:
        k = list(topics).index(t)
        pos = np.where(targets.y[:, k] == 1)[0]
        if len(pos) < folds:
            continue
        held: list[float] = []
        for f in range(folds):
            out_rows = pos[f::folds]
            sub = Targets(targets.y[:, [k]].copy(), targets.w[:, [k]].copy())
            sub.y[out_rows, 0] = -1
            ct, ce, b = fit_heads(x, emb, sub, base_model.params)
            z = np.asarray(x[out_rows] @ ct[0]) + emb[out_rows] @ ce[0] + b[0]
            held += list(1 / (1 + np.exp(-z.ravel())))
        out[t] = round(float(min(default, np.quantile(held, 1 - keep))), 4)
    return out


def model_topics(configured: Sequence[Topic], base_topics: Sequence[str]) -> list[str]:
    ids = [t.id for t in configured]
    return ids or list(base_topics)


def _assemble(
    base_model: RelevanceModel,
    topics: Sequence[str],
    coef_t: np.ndarray,
    coef_e: np.ndarray,
    icpt: np.ndarray,
    seed_papers: dict[str, Paper],
    seeds: dict[str, list[str]],
    embedder: Embedder,
    store: Store | None,
) -> RelevanceModel:
    """The new model: same vocabulary/encoder/threshold; explanations = labelled positives + seed papers."""
    keep = [i for i, ts in enumerate(base_model.pos_topics) if any(t in topics and t not in seeds for t in ts)]
    pos_emb = [base_model.pos_emb[keep].astype(np.float32)]
    pos_ids = [base_model.pos_ids[i] for i in keep]
    pos_titles = [base_model.pos_titles[i] for i in keep]
    pos_topics = [[t for t in base_model.pos_topics[i] if t in topics] for i in keep]
    for t, ids in seeds.items():
        ps = [seed_papers[i] for i in ids if i in seed_papers]
        if not ps:
            continue
        e, _ = embed_papers(ps, embedder, store)
        pos_emb.append(e)
        pos_ids += [p.id for p in ps]
        pos_titles += [p.title for p in ps]
        pos_topics += [[t] for _ in ps]
    return RelevanceModel(
        topics=tuple(topics),
        vocabulary=base_model.vocabulary,
        idf=base_model.idf,
        coef_tfidf=coef_t,
        coef_emb=coef_e,
        intercept=icpt,
        threshold=base_model.threshold,
        params=base_model.params,
        embedder=base_model.embedder,
        pos_emb=np.vstack(pos_emb).astype(np.float16),
        pos_ids=pos_ids,
        pos_titles=pos_titles,
        pos_topics=pos_topics,
    )


def _scores(model: RelevanceModel, base: Base, topics: Sequence[str]) -> np.ndarray:
    z = (
        np.tile(model.intercept, (len(base.ids), 1))
        + np.asarray(base.x @ model.coef_tfidf.T)
        + base.emb @ model.coef_emb.T
    )
    s = 1 / (1 + np.exp(-z))
    cols = [k for k, t in enumerate(model.topics) if t in base.topics and t in topics]
    return s[:, cols].max(axis=1) if cols else np.zeros(len(base.ids))


def _f1_on_base(base: Base, model: RelevanceModel, topics: Sequence[str]) -> float:
    s = _scores(model, base, topics)
    return float(metrics(base.label, s >= model.threshold)["f1"]) if len(s) else 0.0


def decisions(
    model: RelevanceModel, papers: list[Paper], emb: np.ndarray, by_vote: dict[str, dict[str, int]]
) -> tuple[int, int, list[str]]:
    if not papers:
        return 0, 0, []
    s = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    agree, total, disagree = 0, 0, []
    for p, row in zip(papers, s, strict=True):
        for t, v in by_vote.get(p.id, {}).items():
            if t not in model.topics:
                continue
            total += 1
            decided = row[model.topics.index(t)] >= model.threshold
            if decided == bool(v):
                agree += 1
            else:
                disagree.append(f"{p.id} ({t})")
    return agree, total, disagree

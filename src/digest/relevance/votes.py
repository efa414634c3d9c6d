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
from pathlib import Path

import numpy as np
from scipy import sparse

from digest.config import Settings
from digest.errors import ModelError
from digest.models import DaySource, Paper
from digest.providers import build_embedder
from digest.relevance.data import Example
from digest.relevance.embed import embed_papers
from digest.relevance.model import PACKAGED_MODEL, RelevanceModel, Targets, fit_heads, metrics
from digest.sources import api
from digest.sources.http import ArxivClient
from digest.store import ANY, Store, Vote
from digest.topics import Topic, load_topics

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


def _fetch_missing(ids: list[str], settings: Settings, store: Store, say: Say) -> None:
    known = {p.id for p in store.get_papers(ids)}
    missing = [i for i in ids if i not in known]
    if not missing:
        return
    say(f"fetching {len(missing)} seed paper(s) from the arXiv API (batched, ≥{settings.arxiv_delay_seconds:g}s apart)")
    client = ArxivClient(settings)
    try:
        got = api.fetch_ids(missing, settings, client)
    finally:
        client.close()
    store.upsert_papers([p.model_copy(update={"announced": None}) for p in got], DaySource.api)


def vote_targets(votes: Sequence[Vote], topics: Sequence[str], best: dict[str, str]) -> dict[str, dict[str, int]]:
    """paper id → topic → 1 / 0 from the latest votes (``any``: up = the paper's best topic, down = all)."""
    out: dict[str, dict[str, int]] = {}
    for v in sorted(votes, key=lambda v: v.created):
        row = out.setdefault(v.paper_id, {})
        targets = (
            list(topics)
            if v.topic == ANY and v.vote == "down"
            else [best.get(v.paper_id, topics[0])]
            if v.topic == ANY
            else [v.topic]
        )
        for t in targets:
            if t in topics:
                row[t] = 1 if v.vote == "up" else 0
    return out


def retrain_from_votes(settings: Settings, store: Store, output: Path | None, say: Say) -> list[str]:
    """``digest train`` without labels: the reader's model from base data + seeds + votes."""
    base_model = RelevanceModel.load(PACKAGED_MODEL)
    base = Base(base_path(PACKAGED_MODEL))
    topics_cfg = load_topics(settings.topics)
    topics = _model_topics(topics_cfg.topics, base.topics)
    embedder = build_embedder(settings, base_model)
    votes = store.current_votes()
    seeds = {t.id: t.seeds for t in topics_cfg.topics if t.seeds}
    _fetch_missing(sorted({i for s in seeds.values() for i in s} | {v.paper_id for v in votes}), settings, store, say)
    voted = {p.id: p for p in store.get_papers(sorted({v.paper_id for v in votes}))}
    seed_papers = {p.id: p for p in store.get_papers(sorted({i for s in seeds.values() for i in s}))}
    for t, ids in seeds.items():
        lost = [i for i in ids if i not in seed_papers]
        if lost:
            say(f"topic {t}: {len(lost)} seed(s) not found on arXiv or in the store: {', '.join(lost[:5])}")
    # the current model's best topic for "any" up-votes
    rows: list[Paper] = []
    extra_y: list[list[int]] = []
    extra_w: list[list[float]] = []
    t_index = {t: k for k, t in enumerate(topics)}
    vemb_all, _ = embed_papers(list(voted.values()), embedder, store)
    best = {}
    if voted:
        s = base_model.topic_scores([p.title for p in voted.values()], [p.abstract for p in voted.values()], vemb_all)
        best = {p.id: base_model.topics[int(np.argmax(r))] for p, r in zip(voted.values(), s, strict=True)}
    by_vote = vote_targets(votes, topics, best)
    for pid, tv in by_vote.items():
        if pid not in voted:
            continue
        rows.append(voted[pid])
        y = [-1] * len(topics)
        w = [W_VOTE] * len(topics)
        for t, v in tv.items():
            y[t_index[t]] = v
        extra_y.append(y)
        extra_w.append(w)
    for t, ids in seeds.items():
        for i in ids:
            if i in seed_papers and i not in by_vote:
                y = [-1] * len(topics)
                y[t_index[t]] = 1
                rows.append(seed_papers[i])
                extra_y.append(y)
                extra_w.append([W_SEED] * len(topics))
    seeded = [t for t in topics if t in seeds or t not in base.topics]
    unl: list[Paper] = []
    if seeded:
        taken = {p.id for p in rows} | set(base.ids)
        unl = [p for p in store.iter_papers() if p.id not in taken][:MAX_UNLABELLED]
        for p in unl:
            y = [-1] * len(topics)
            for t in seeded:
                y[t_index[t]] = 0
            rows.append(p)
            extra_y.append(y)
            extra_w.append([W_UNLABELLED] * len(topics))
    say(f"retraining on {len(base.ids)} base labels, {sum(len(v) for v in seeds.values())} seeds, "
        f"{len(by_vote)} voted papers, {len(unl)} unlabelled papers as weak negatives")  # fmt: skip
    emb_rows, _ = embed_papers(rows, embedder, store) if rows else (np.zeros((0, base.emb.shape[1]), np.float32), 0)
    x_rows = base_model.tfidf([p.title for p in rows], [p.abstract for p in rows]) if rows else None
    # base rows: their labels train the shipped topics (unless seeded anew); as weak negatives for new topics
    yb = np.full((len(base.ids), len(topics)), -1, np.int8)
    wb = np.ones((len(base.ids), len(topics)), np.float32)
    for t, k in t_index.items():
        if t in base.topics and t not in seeds:
            yb[:, k] = base.y[:, base.topics.index(t)]
        else:
            yb[:, k] = 0
            wb[:, k] = W_UNLABELLED
    for row_i, pid in enumerate(base.ids):  # a vote on a base paper overrides its label
        for topic, v in by_vote.get(pid, {}).items():
            yb[row_i, t_index[topic]] = v
            wb[row_i, t_index[topic]] = W_VOTE
    targets = Targets(yb, wb).stack(
        Targets(
            np.array(extra_y, np.int8).reshape(-1, len(topics)), np.array(extra_w, np.float32).reshape(-1, len(topics))
        )
    )
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
        "votes": len(by_vote),
        "seeds": {t: len(v) for t, v in seeds.items()},
        "topics": list(topics),
    }
    target = output or settings.data_dir / "relevance-model.npz"
    model.save(target)
    after = _decisions(model, list(voted.values()), vemb_all, by_vote)
    lines = [
        f"base labels F1 before {before:.3f}" + (f" / after {_f1_on_base(base, model, topics):.3f}" if before else ""),
        f"votes used: {len(by_vote)} papers; decided as voted after retraining: {after[0]} of {after[1]}",
    ]
    if seeds:
        lines.append(
            "seeds used: " + ", ".join(f"{t} {sum(i in seed_papers for i in ids)}" for t, ids in seeds.items())
        )
    if after[2]:
        lines.append("still disagree with their vote: " + ", ".join(after[2][:10]))
    lines.append(f"model → {target} (topics {', '.join(topics)}); the next run uses it")
    return lines


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


def _model_topics(configured: Sequence[Topic], base_topics: Sequence[str]) -> list[str]:
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
    embedder: object,
    store: Store,
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
        e, _ = embed_papers(ps, embedder, store)  # type: ignore[arg-type]
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


def _decisions(
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

"""Every reader their own decision: a personal linear head on the shared embeddings, on top of the topic model.

Scholar Inbox's recipe (a logistic regression per reader on paper embeddings, refit after every rating session)
adapted to a topic digest: a reader's decision on a paper is

    logit = margin(paper) + w · embedding(paper) + b

where ``margin`` is the topic model's log-odds over its threshold for the reader's topics (a fixed offset: with
no votes, ``w = 0, b = 0`` and the reader gets exactly the topic decision). ``w, b`` are fitted on

* the reader's latest vote per paper (👍 = 1, 👎 = 0, weight :data:`W_VOTE`);
* anchor papers (a fixed sample of the store's papers) labelled with the topic model's decision for the reader's
  topics (weight :data:`W_ANCHOR`): away from the votes the correction stays near zero;

with an L2 penalty :data:`L2` on ``w``. Every head is refit from the stored embeddings at the start of each run
(milliseconds per reader). A vote also decides its own paper outright: a 👎 paper never reaches that reader
again (any version, any edition), a 👍 paper always does. Everything here is pure (numpy, scipy); the store is
read by :mod:`digest.usecases` / the pipeline.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from digest.store import Vote

#: the weights, measured with ``bench/personal.py`` (docs/RELEVANCE.md, "Personal models")
W_VOTE = 32.0
W_ANCHOR = 1.0
L2 = 1.0
L2_BIAS = 10.0  # the reader's global shift: a vote moves the papers like it, not every paper
ANCHORS = 300  # anchor papers per reader (drawn from a shared pool of the store's papers)
MAX_EXTRA = 10  # papers per reader and day a personal head may add beyond the topic decision (they are paid)
LEARN = 5  # "help me learn" papers per edition
MARGIN_CLIP = 8.0
#: the vote authors that are the operator, not a reader ("" = CLI/import without --reader, "web" = operator mode)
OPERATOR = ("", "web")


def is_reader(who: str) -> bool:
    return who not in OPERATOR


def reader_votes(votes: Sequence[Vote]) -> dict[str, dict[str, str]]:
    """reader → paper id → their latest vote ("up"/"down") on it, whatever the topic; operator votes excluded."""
    out: dict[str, dict[str, str]] = {}
    for v in sorted(votes, key=lambda v: v.created):
        if is_reader(v.who):
            out.setdefault(v.who, {})[v.paper_id] = v.vote
    return out


def margins(scores: np.ndarray, thresholds: np.ndarray, cols: Sequence[int]) -> np.ndarray:
    """(n,) the best log-odds over threshold among the topics ``cols`` (clipped to ±:data:`MARGIN_CLIP`)."""
    if scores.size == 0 or not len(cols):
        return np.full(scores.shape[0], -MARGIN_CLIP)
    s = np.clip(scores[:, list(cols)].astype(np.float64), 1e-6, 1 - 1e-6)
    t = np.clip(thresholds[list(cols)].astype(np.float64), 1e-6, 1 - 1e-6)
    m = (np.log(s / (1 - s)) - np.log(t / (1 - t))).max(axis=1)
    return np.clip(m, -MARGIN_CLIP, MARGIN_CLIP)


@dataclass(frozen=True)
class Head:
    """A reader's correction to the topic decision: ``logit = margin + emb @ w + b``."""

    w: np.ndarray
    b: float
    votes: int

    def logit(self, emb: np.ndarray, margin: np.ndarray) -> np.ndarray:
        return margin + emb.astype(np.float64) @ self.w + self.b


def fit_head(
    emb: np.ndarray, margin: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float, votes: int = 0
) -> Head:
    """Weighted logistic regression with a fixed offset ``margin`` and an L2 penalty (L-BFGS)."""
    x = emb.astype(np.float64)
    yy = y.astype(np.float64)
    sw = weight.astype(np.float64)
    d = x.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = margin + x @ w + b
        # log(1 + e^z) - y z, stably
        ll = np.logaddexp(0.0, z) - yy * z
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = sw * (p - yy)
        f = float(sw @ ll) + 0.5 * l2 * float(w @ w) + 0.5 * L2_BIAS * b * b
        grad = np.empty(d + 1)
        grad[:d] = x.T @ g + l2 * w
        grad[d] = g.sum() + L2_BIAS * b
        return f, grad

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return Head(w=res.x[:d].copy(), b=float(res.x[d]), votes=votes)


@dataclass
class Pool:
    """What every reader's fit reads: embeddings and per-topic scores of the voted and anchor papers."""

    ids: list[str]
    emb: np.ndarray  # (n, D)
    scores: np.ndarray  # (n, T) topic probabilities
    anchors: np.ndarray  # row indices of the anchor papers

    def index(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.ids)}


@dataclass
class Profiles:
    """Every reader's head, fitted from the current votes; ``reader_topics``: each subscriber's topics."""

    topics: tuple[str, ...]
    thresholds: np.ndarray
    votes: dict[str, dict[str, str]] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)
    reader_topics: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    seconds: float = 0.0

    def columns(self, reader: str) -> list[int]:
        """The topic columns of ``reader``'s subscription (every topic when none is chosen)."""
        wanted = self.reader_topics.get(reader)
        return [k for k, t in enumerate(self.topics) if wanted is None or t in wanted] or list(range(len(self.topics)))


def fit_profiles(
    topics: Sequence[str],
    thresholds: np.ndarray,
    votes: dict[str, dict[str, str]],
    reader_topics: dict[str, tuple[str, ...] | None],
    pool: Pool,
    seed: int = 0,
) -> Profiles:
    """Pure: one head per reader with votes on papers of ``pool``."""
    t0 = time.perf_counter()
    prof = Profiles(tuple(topics), thresholds, votes=votes, reader_topics=reader_topics)
    idx = pool.index()
    rng = np.random.default_rng(seed)
    anchor_ids = [pool.ids[a] for a in pool.anchors.tolist()]
    for reader, mine in votes.items():
        cols = prof.columns(reader)
        rows = [idx[p] for p in mine if p in idx]
        if not rows:
            continue
        anchors = [int(a) for a, pid in zip(pool.anchors.tolist(), anchor_ids, strict=True) if pid not in mine]
        if len(anchors) > ANCHORS:
            anchors = [int(a) for a in rng.choice(anchors, ANCHORS, replace=False)]
        all_rows = np.array(rows + anchors, dtype=int)
        m = margins(pool.scores[all_rows], thresholds, cols)
        y = np.concatenate([[1.0 if mine[pool.ids[r]] == "up" else 0.0 for r in rows], (m[len(rows):] >= 0) * 1.0])
        w = np.concatenate([np.full(len(rows), W_VOTE), np.full(len(anchors), W_ANCHOR)])
        prof.heads[reader] = fit_head(pool.emb[all_rows], m, y, w, l2=L2, votes=len(rows))
    prof.seconds = round(time.perf_counter() - t0, 3)
    return prof


def replay(
    pool: Pool,
    topics: Sequence[str],
    thresholds: np.ndarray,
    wanted: tuple[str, ...] | None,
    ordered: Sequence[tuple[str, str]],
) -> list[tuple[int, float]]:
    """Pure: a reader's votes ``(paper id, vote)`` in time order, each predicted by the head fitted on the votes
    before it (the first by the topic model alone): ``(1 if up else 0, predicted logit)`` per vote."""
    idx = pool.index()
    out: list[tuple[int, float]] = []
    for k, (pid, vote) in enumerate(ordered):
        if pid not in idx:
            continue
        before = {q: v for q, v in ordered[:k]}  # latest vote per paper before this one
        before.pop(pid, None)
        row = idx[pid]
        cols = Profiles(tuple(topics), thresholds, reader_topics={"r": wanted}).columns("r")
        m = margins(pool.scores[[row]], thresholds, cols)
        if before:
            prof = fit_profiles(topics, thresholds, {"r": before}, {"r": wanted}, pool)
            head = prof.heads.get("r")
            logit = float(head.logit(pool.emb[[row]], m)[0]) if head is not None else float(m[0])
        else:
            logit = float(m[0])
        out.append((1 if vote == "up" else 0, logit))
    return out


@dataclass(frozen=True)
class Decision:
    """One reader on one day: the papers of their edition (best first), what their votes changed, and the papers
    their model is least sure about."""

    ids: list[str]
    came_in: list[str]
    left: list[str]
    learn: list[str]
    votes: int


def decide(
    prof: Profiles,
    reader: str,
    ids: Sequence[str],
    emb: np.ndarray,
    scores: np.ndarray,
    topic_in: Sequence[bool],
    max_extra: int = MAX_EXTRA,
    learn: int = LEARN,
) -> Decision:
    """Pure: ``reader``'s edition among the day's papers ``ids`` (``topic_in``: what the topic decision gives
    them, i.e. their part of the shared edition)."""
    mine = prof.votes.get(reader, {})
    margin = margins(scores, prof.thresholds, prof.columns(reader))
    head = prof.heads.get(reader)
    logit = head.logit(emb, margin) if head is not None else np.where(topic_in, np.abs(margin), -np.abs(margin))
    chosen: list[tuple[float, str]] = []
    extra: list[tuple[float, str]] = []
    for i, pid in enumerate(ids):
        v = mine.get(pid)
        keep = v == "up" if v is not None else (logit[i] >= 0 if head is not None else bool(topic_in[i]))
        if not keep:
            continue
        (chosen if topic_in[i] or v == "up" else extra).append((float(logit[i]), pid))
    extra.sort(key=lambda x: -x[0])
    if "up" not in mine.values():  # papers come in only like a 👍: 👎 alone never adds (a linear artefact)
        extra = []
    picked = {pid for _, pid in chosen} | {pid for _, pid in extra[:max_extra]}
    order = [pid for pid in ids if pid in picked]
    base = {pid for pid, t in zip(ids, topic_in, strict=True) if t}
    unsure = sorted((abs(float(logit[i])), pid) for i, pid in enumerate(ids) if pid not in mine)
    return Decision(
        ids=order,
        came_in=[p for p in order if p not in base],
        left=[p for p in ids if p in base and p not in picked],
        learn=[pid for _, pid in unsure[:learn]],
        votes=len(mine),
    )


def wanted_extras(decided: Mapping[str, Decision], shared: set[str], cap: int) -> list[str]:
    """Pure: the papers readers' models add beyond the shared edition (``shared``), the most wanted first — by
    how many readers add it, then by how early it stands in their editions — at most ``cap`` (each is paid)."""
    count: Counter[str] = Counter()
    rank: dict[str, int] = {}
    for d in decided.values():
        for k, pid in enumerate(d.ids):
            if pid in d.came_in and pid not in shared:
                count[pid] += 1
                rank[pid] = min(rank.get(pid, k), k)
    return sorted(count, key=lambda pid: (-count[pid], rank[pid], pid))[:cap]


def summary_line(d: Decision) -> str:
    """What the reader's votes changed in this edition (the ``data-feedback-summary`` line)."""
    if not d.votes:
        return ""
    left, came = len(d.left), len(d.came_in)
    return (
        f"your {d.votes} vote{'s' if d.votes != 1 else ''}: {left} paper{'s' if left != 1 else ''} left your digest, "
        f"{came} came in"
    )


def auc(y: Sequence[int], s: Sequence[float]) -> float:
    """Area under the ROC curve (ties count half); NaN without both classes."""
    pos = [b for a, b in zip(y, s, strict=True) if a]
    neg = [b for a, b in zip(y, s, strict=True) if not a]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))

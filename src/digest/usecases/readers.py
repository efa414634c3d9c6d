"""The reader's side: votes from the command line and files, topics and their cold-start suggestions.

Papers the store lacks are fetched through the run's one arXiv client (its spacing holds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digest.deliver import ADDRESS
from digest.errors import UsageError
from digest.feedback import read_vote_file
from digest.ingest import store_missing
from digest.personalise import anchor_pool
from digest.pipeline import Run
from digest.relevance import personal
from digest.relevance.embed import embed_papers
from digest.store import ANY, Vote
from digest.text import split_id


def known_topics(run: Run) -> list[str]:
    return list(dict.fromkeys([*run.providers.model.topics, *run.providers.topics.ids]))


def check_reader(reader: str) -> str:
    """A reader is an email address (the one their digest goes to); "" is the operator."""
    reader = reader.strip()
    if reader and not ADDRESS.match(reader):
        raise UsageError(f"--reader {reader!r} is not an email address (a reader is the address their digest goes to)")
    return reader


def reader_of(v: Vote) -> str | None:
    """The vote's reader, or None for the operator's vote."""
    return v.who if personal.is_reader(v.who) else None


def add_vote(run: Run, paper: str, vote: str, topic: str | None, reader: str = "") -> Vote:
    """``digest feedback add``: one vote on a paper (fetched from arXiv by id if not in the store)."""
    who = check_reader(reader)
    try:
        pid = split_id(paper)[0]
    except ValueError:
        raise UsageError(f"{paper!r} is not an arXiv id") from None
    if vote not in ("up", "down"):
        raise UsageError(f"--vote must be up or down, not {vote!r}")
    t = topic or ANY
    if t != ANY and t not in known_topics(run):
        raise UsageError(f"--topic {t!r} is not a topic (known: {', '.join(known_topics(run))})")
    p = run.providers
    store_missing([pid], p.settings, p.store, p.arxiv)
    if not p.store.get_papers([pid]):
        raise UsageError(f"{pid} is neither in the store nor on arXiv")
    v = Vote(paper_id=pid, topic=t, vote=vote, who=who, source="cli")
    p.store.add_votes([v])
    return v


def import_votes(run: Run, path: Path, reader: str = "") -> int:
    """``digest feedback import``: all lines or nothing (a bad line names its number). ``reader``: every vote is
    that reader's; else a line's ``reader`` field, else the operator's."""
    who = check_reader(reader)
    votes = read_vote_file(path, known_topics(run))
    for v in votes:
        if v.who not in personal.OPERATOR:
            check_reader(v.who)
    if who:
        votes = [v.model_copy(update={"who": who}) for v in votes]
    p = run.providers
    store_missing(sorted({v.paper_id for v in votes}), p.settings, p.store, p.arxiv)
    return p.store.add_votes(votes)


@dataclass(frozen=True)
class Suggestion:
    id: str
    title: str
    similarity: float
    nearest_seed: str


def suggest(run: Run, topic: str, n: int = 20, say: Callable[[str], None] | None = None) -> list[Suggestion]:
    """``digest topics suggest``: the store's papers nearest to a topic's seed papers (to vote a topic into shape)."""
    p = run.providers
    t = p.topics.get(topic)
    if t is None:
        raise UsageError(f"no topic {topic!r} in {p.settings.topics or 'the shipped topics'}")
    if not t.seeds:
        raise UsageError(f'topic {topic!r} has no seeds: add `seeds = ["2406.01234", …]` to its [[topics]] table')
    store_missing(t.seeds, p.settings, p.store, p.arxiv, say)
    seeds = p.store.get_papers(t.seeds)
    pool = [x for x in p.store.iter_papers() if x.id not in set(t.seeds)]
    if not seeds or not pool:
        return []
    s_emb, _ = embed_papers(seeds, p.embedder, p.store)
    x_emb, _ = embed_papers(pool, p.embedder, p.store)
    sims = x_emb @ s_emb.T
    best = sims.max(axis=1)
    order = np.argsort(-best)[:n]
    return [
        Suggestion(pool[i].id, pool[i].title, round(float(best[i]), 3), seeds[int(np.argmax(sims[i]))].id)
        for i in order
    ]


def list_votes(run: Run) -> list[Vote]:
    """``digest feedback list``: every vote recorded, oldest first."""
    return run.providers.store.all_votes()


def reset_votes(run: Run, reader: str, dry_run: bool = False) -> int:
    """``digest feedback reset``: forget every vote of ``reader`` (their personal model goes with them)."""
    who = check_reader(reader)
    if not who:
        raise UsageError("--reader is required: the operator's votes are removed by retraining without them")
    store = run.providers.store
    return len([v for v in store.all_votes() if v.who == who]) if dry_run else store.delete_votes(who)


@dataclass(frozen=True)
class VoteStats:
    reader: str
    votes: int
    up: int
    down: int
    predicted: int
    accuracy: float
    auc: float
    refit_ms: float


def vote_stats(run: Run, only: str | None = None) -> list[VoteStats]:
    """``digest feedback stats``: each reader's votes in time order, each predicted by their model as it was
    before that vote (the first by the topic model alone): accuracy and AUC per reader."""
    p = run.providers
    by_reader: dict[str, list[Vote]] = {}
    for v in sorted(p.store.all_votes(), key=lambda v: v.created):
        if personal.is_reader(v.who) and (only is None or v.who == only):
            by_reader.setdefault(v.who, []).append(v)
    if not by_reader:
        return []
    pool = anchor_pool(p, [v.paper_id for vs in by_reader.values() for v in vs])
    thresholds = p.model.thresholds(p.settings.relevance_threshold)
    topics = {s.address: s.topics for s in p.subscribers}
    out = []
    for r, vs in sorted(by_reader.items()):
        t0 = time.perf_counter()
        got = personal.replay(pool, p.model.topics, thresholds, topics.get(r), [(v.paper_id, v.vote) for v in vs])
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(got))
        y = [a for a, _ in got]
        z = [b for _, b in got]
        acc = sum((b >= 0) == bool(a) for a, b in got) / len(got) if got else float("nan")
        out.append(VoteStats(r, len(vs), sum(v.vote == "up" for v in vs), sum(v.vote == "down" for v in vs),
                             len(got), round(acc, 4), round(personal.auc(y, z), 4), round(ms, 2)))  # fmt: skip
    return out


@dataclass(frozen=True)
class TopicLine:
    id: str
    name: str
    seeds: int
    reading_lists: int
    trained: bool


def topics_overview(run: Run) -> list[TopicLine]:
    """``digest topics list``: the configured topics and whether the model has a head for each."""
    p = run.providers
    return [
        TopicLine(t.id, t.name, len(t.seeds), len(t.reading_lists), t.id in p.model.topics) for t in p.topics.topics
    ]

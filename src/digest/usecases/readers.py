"""The reader's side: votes from the command line and files, topics and their cold-start suggestions.

Papers the store lacks are fetched through the run's one arXiv client (its spacing holds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digest.errors import UsageError
from digest.feedback import read_vote_file
from digest.ingest import store_missing
from digest.pipeline import Run
from digest.relevance.embed import embed_papers
from digest.store import ANY, Vote
from digest.text import split_id


def known_topics(run: Run) -> list[str]:
    return list(dict.fromkeys([*run.providers.model.topics, *run.providers.topics.ids]))


def add_vote(run: Run, paper: str, vote: str, topic: str | None, who: str = "") -> Vote:
    """``digest feedback add``: one vote on a paper (fetched from arXiv by id if not in the store)."""
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


def import_votes(run: Run, path: Path) -> int:
    """``digest feedback import``: all lines or nothing (a bad line names its number)."""
    votes = read_vote_file(path, known_topics(run))
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

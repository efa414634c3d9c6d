"""Assemble a day's :class:`Digest` from the store: relevant papers, their scores and best summaries."""

from __future__ import annotations

import datetime as dt

from digest.models import DaySource, Digest, DigestEntry, Paper, Relevance, Summary, SummaryStatus
from digest.store import Store


def display_summary(candidates: list[Summary]) -> Summary | None:
    """The summary to show: best tier first, then a completed one, then the newest (candidates come newest first)."""
    return min(candidates, key=lambda s: (s.tier.rank, s.status != SummaryStatus.ok), default=None)


def entries_for(papers: list[Paper], store: Store) -> list[DigestEntry]:
    """Numbered entries for the relevant ones of ``papers``, sorted by relevance (highest first, then id)."""
    rel = store.get_relevance([(p.id, p.version) for p in papers])
    kept: list[tuple[Paper, Relevance]] = [
        (p, r) for p in papers if (r := rel.get((p.id, p.version))) is not None and r.relevant
    ]
    kept.sort(key=lambda pr: (-pr[1].score, pr[0].id))
    sums = store.summaries_of([(p.id, p.version) for p, _ in kept])
    return [
        DigestEntry(n=i, paper=p, relevance=r, summary=display_summary(sums[(p.id, p.version)]))
        for i, (p, r) in enumerate(kept, start=1)
    ]


def entries_for_ids(ids: list[str], store: Store) -> list[DigestEntry]:
    """Entries for papers chosen by id (a reader's model), whatever the topic decision; numbered in order."""
    papers = store.get_papers(ids)
    rel = store.get_relevance([(p.id, p.version) for p in papers])
    sums = store.summaries_of([(p.id, p.version) for p in papers])
    return [
        DigestEntry(n=i, paper=p, relevance=rel.get(k), summary=display_summary(sums[k]))
        for i, p in enumerate(papers, start=1)
        if (k := (p.id, p.version))
    ]


def build_digest(day: dt.date, store: Store, topic_names: dict[str, str]) -> Digest:
    papers = store.papers_of_day(day)
    info = store.day_info(day)
    return Digest(
        date=day,
        entries=entries_for(papers, store),
        fetched=len(papers),
        approximate=bool(info and info.source == DaySource.api),
        topic_names=topic_names,
    )

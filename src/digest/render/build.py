"""Assemble a day's :class:`Digest` from the store: relevant papers, their scores and best summaries."""

from __future__ import annotations

import datetime as dt

from digest.models import Digest, DigestEntry
from digest.store import Store


def build_digest(day: dt.date, store: Store) -> Digest:
    """The relevant papers of ``day`` sorted by relevance (highest first, then id), numbered from 1."""
    papers = store.papers_of_day(day)
    rel = store.get_relevance([(p.id, p.version) for p in papers])
    kept = [(p, r) for p in papers if (r := rel.get((p.id, p.version))) is not None and r.relevant]
    kept.sort(key=lambda pr: (-pr[1].score, pr[0].id))
    entries = [
        DigestEntry(n=i, paper=p, relevance=r, summary=store.latest_summary(p.id, p.version))
        for i, (p, r) in enumerate(kept, start=1)
    ]
    state = store.day_state(day)
    return Digest(date=day, entries=entries, fetched=len(papers), approximate=bool(state and state[1] == "api"))

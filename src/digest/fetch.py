"""The fetch stage: sources → store. Plain functions; the CLI and the flows call these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from digest.config import Settings
from digest.models import Paper
from digest.sources import api, rss
from digest.sources.calendar import submission_days, submission_window
from digest.store import Store, UpsertCounts


def fetch_rss(settings: Settings, store: Store) -> tuple[dt.date | None, UpsertCounts]:
    """Fetch today's announcement; record a day with no announcement as such (not an error)."""
    ann = rss.fetch_announcement(settings)
    counts = UpsertCounts()
    if ann.date is None or (not ann.papers and ann.skipped == 0):
        if ann.date is not None:
            store.record_day(ann.date, "no_announcement", "rss", 0)
        return ann.date, counts
    counts = store.upsert_papers(ann.papers, source="rss", announced=ann.date)
    counts.skipped = ann.skipped
    store.record_day(ann.date, "announced", "rss", len(ann.papers))
    return ann.date, counts


def fetch_api_range(
    start: dt.date,
    end: dt.date,
    settings: Settings,
    store: Store,
    progress: Callable[[dt.date], None] | None = None,
    client: api.PoliteClient | None = None,
) -> UpsertCounts:
    """Every paper submitted on the UTC days ``start``…``end`` (one query per day, paged).

    Each paper is stored under the announcement day its submission time maps to.
    """
    client = client or api.PoliteClient(settings)
    total = UpsertCounts()
    for day in api.iter_days(start, end):
        got = api.fetch_submission_day(day, settings, client)
        total.add(store.upsert_papers(got, source="api"))
        if progress:
            progress(day)
    return total


def fetch_announcement_via_api(
    day: dt.date,
    settings: Settings,
    store: Store,
    client: api.PoliteClient | None = None,
) -> tuple[list[Paper], UpsertCounts]:
    """Reconstruct announcement ``day`` from the API: the submissions of its window (approximate)."""
    client = client or api.PoliteClient(settings)
    start, end = submission_window(day)
    got: list[Paper] = []
    for sday in submission_days(day):
        got.extend(api.fetch_submission_day(sday, settings, client))
    in_window = [
        p for p in got if p.published is not None and start <= p.published < end and p.announce_type in ("new", "cross")
    ]
    counts = store.upsert_papers(in_window, source="api")  # the day's own papers: what the report counts
    keep = {p.id for p in in_window}
    store.upsert_papers([p for p in got if p.id not in keep], source="api")  # neighbours' papers, stored too
    store.record_day(day, "announced" if in_window else "no_announcement", "api", len(in_window))
    return in_window, counts

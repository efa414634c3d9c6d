"""The daily job's use cases: run, fetch, classify, summarise, render; and reading runs and papers back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from digest.errors import DigestError, UsageError
from digest.models import ClassifyResult, DayFetch, DeliveryResult, Paper, RenderResult, RunReport, SummaryStats
from digest.pipeline import (
    Run,
    build_stage,
    classify_stage,
    deliver_stage,
    missed_days,
    render_stage,
    run_day,
    run_range,
)
from digest.sources.calendar import weekdays
from digest.text import split_id


def check_days(run: Run, day: dt.date | None, start: dt.date | None, end: dt.date | None) -> None:
    """Usage errors (exit 2) before anything is fetched or recorded: half a range, a reversed one, the future."""
    if (start is None) != (end is None):
        raise UsageError("give both --from and --to (or --date)")
    if day is not None and start is not None:
        raise UsageError("give --date or --from/--to, not both")
    if start is not None and end is not None and end < start:
        raise UsageError(f"--to {end} is before --from {start}: swap them")
    latest = dt.datetime.now(ZoneInfo(run.providers.settings.timezone)).date() + dt.timedelta(days=1)
    for name, d in (("--date", day), ("--to", end), ("--from", start)):
        if d is not None and d > latest:
            raise UsageError(f"{name} {d} is in the future: arXiv has announced nothing for it yet (latest {latest})")


def run_days(
    run: Run,
    day: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    catch_up: bool = True,
) -> list[RunReport]:
    """``digest run``: today (then any missed weekdays), one day, or a range."""
    check_days(run, day, start, end)
    if start is not None and end is not None:
        return run_range(start, end, run)
    reports = [run_day(day, run)]
    if day is None and catch_up and reports[0].date is not None:
        for missed in missed_days(run, reports[0].date):
            reports.append(run_day(missed, run))
    return reports


def fetch_days(
    run: Run, day: dt.date | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> list[DayFetch]:
    """``digest fetch``: the same ingestion policy as ``digest run``, without the later stages."""
    check_days(run, day, start, end)
    if start is not None and end is not None:
        return [run.ingestor.day(d) for d in weekdays(start, end)]
    return [run.ingestor.today() if day is None else run.ingestor.day(day)]


def relevant_of_day(run: Run, day: dt.date, tick: Callable[[int], None] | None = None) -> list[Paper]:
    """The day's relevant papers, classifying first where the store has no decision yet."""
    store = run.providers.store
    papers = store.papers_of_day(day)
    if not papers:
        raise DigestError(f"no papers announced on {day} in the store: run `digest fetch --date {day}` first")
    known = store.get_relevance([(p.id, p.version) for p in papers])
    if len(known) < len(papers):
        res = classify_stage(papers, run)
        known = {(r.id, r.version): r for r in res.relevance}
    return [p for p in papers if (r := known.get((p.id, p.version))) is not None and r.relevant]


def classify_day(run: Run, day: dt.date) -> ClassifyResult:
    papers = run.providers.store.papers_of_day(day)
    if not papers:
        raise DigestError(f"no papers announced on {day} in the store: run `digest fetch --date {day}` first")
    return classify_stage(papers, run)


def parse_ids(raw: list[str]) -> list[str]:
    try:
        return [split_id(i.strip())[0] for x in raw for i in x.split(",") if i.strip()]
    except ValueError as exc:
        raise UsageError(f"--ids: {exc}") from None


def summarise(run: Run, day: dt.date | None, ids: list[str] | None, force: bool) -> tuple[int, SummaryStats | None]:
    """``digest summarize``: a day's relevant papers or given ids; (papers, stats or None when nothing to do)."""
    from digest.pipeline import summarise_stage

    store = run.providers.store
    if ids:
        wanted = parse_ids(ids)
        items = store.get_papers(wanted)
        missing = sorted(set(wanted) - {p.id for p in items})
        if missing:
            raise DigestError(f"not in the store: {', '.join(missing)} (fetch them first with `digest fetch`)")
    elif day is not None:
        items = relevant_of_day(run, day)
    else:
        raise UsageError("give --date D or --ids ID[,ID…]")
    if not items:
        return 0, None
    if force:
        from digest.llm.summarize import Summariser

        p = run.providers
        stats = Summariser(p.settings, p.store, p.prompts, p.chat, p.translator, p.owner).run(
            items, tick=lambda _s: run.tick("summarise", 1, len(items)), force=True
        )
        return len(items), stats
    return len(items), summarise_stage(items, run)


@dataclass
class RenderOutcome:
    render: RenderResult
    delivery: DeliveryResult | None


def render_and_deliver(run: Run, day: dt.date, email: bool) -> RenderOutcome:
    """``digest render``: rebuild a day's files, the index and the feeds from the store; email it once."""
    store = run.providers.store
    papers = store.papers_of_day(day)
    if not papers:
        raise DigestError(f"no papers announced on {day} in the store: run `digest run --date {day}` first")
    if not store.get_relevance([(p.id, p.version) for p in papers]):
        raise DigestError(f"the papers of {day} are not classified yet: run `digest classify --date {day}` first")
    d = build_stage(day, run)
    res = render_stage(d, run)
    delivery = deliver_stage(d, run) if email and res.published and res.entries else None
    return RenderOutcome(res, delivery)


def recent_runs(run: Run, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``digest runs``: the last ``n`` runs (a run killed without cleanup shows as crashed) and emails in doubt."""
    p = run.providers
    rows = p.store.last_runs(n, stale_after=p.settings.lease_seconds * 2)
    doubtful = [d for d in p.store.deliveries() if d["status"] in ("unknown", "failed", "sending")]
    return rows, doubtful


def papers_of_day(run: Run, day: dt.date) -> list[Paper]:
    """``digest papers``: the papers of an announcement day, as stored."""
    return run.providers.store.papers_of_day(day)

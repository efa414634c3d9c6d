"""The pipeline: fetch → classify → summarise → render → deliver, as plain functions returning a RunReport.

Idempotent by construction: every stage persists its results in the store and reads them back first, so a
re-run of a finished day makes no paid call, sends no email and rewrites no file, and a re-run after a
crash finishes what is left. The CLI (``digest run``) and the Prefect flows (``flows/``) both call this.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from digest import fetch
from digest.config import Settings
from digest.deliver import deliver_day
from digest.errors import AlarmError, DigestError, FetchError
from digest.llm.summarize import SummaryStats, summarise
from digest.models import Paper, RunReport, RunStatus
from digest.relevance.embed import embed_papers, make_embedder
from digest.relevance.stage import classify_day
from digest.render import RenderResult, render_day
from digest.sources.calendar import is_announcement_weekday, weekdays
from digest.store import Store, UpsertCounts

log = logging.getLogger(__name__)

#: progress callback: (stage name, items just finished, stage total) — the CLI draws bars from it
Progress = Callable[[str, int, int], None]


@dataclass
class RunContext:
    settings: Settings
    store: Store
    progress: Progress | None = None
    resend: bool = False
    rss_checked: set[str] = field(default_factory=set)  # RSS fetched once per run, not once per day

    def tick(self, stage: str, advance: int, total: int) -> None:
        if self.progress:
            self.progress(stage, advance, total)


@contextmanager
def _timed(report: RunReport, stage: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        report.stage_seconds[stage] = round(report.stage_seconds.get(stage, 0.0) + time.perf_counter() - t, 3)


def _add_counts(report: RunReport, c: UpsertCounts) -> None:
    report.new += c.new
    report.duplicate += c.duplicate
    report.replaced += c.replaced
    report.skipped += c.skipped


def ingest_day(day: dt.date, ctx: RunContext, report: RunReport) -> list[Paper]:
    """The papers of announcement ``day``: from the store if already ingested, else RSS, else the API."""
    settings, store = ctx.settings, ctx.store
    state = store.day_state(day)
    if state is None and "rss" not in ctx.rss_checked:
        ctx.rss_checked.add("rss")
        try:
            got, counts = fetch.fetch_rss(settings, store)  # stores whatever day the feed carries
            if got == day:
                _add_counts(report, counts)
        except FetchError as exc:
            log.warning("RSS unavailable (%s); using the API for %s", exc, day)
        state = store.day_state(day)
    if state is None:
        _papers, counts = fetch.fetch_announcement_via_api(day, settings, store)
        _add_counts(report, counts)
        state = store.day_state(day)
    papers = store.papers_of_day(day)
    if state is not None and state[0] == "no_announcement" and not papers:
        return []
    return papers


@dataclass(frozen=True)
class Stages:
    """The stage functions a day runs through; the Prefect flow passes task-wrapped versions of the same."""

    fetch: Callable[[dt.date | None, RunContext, RunReport], list[Paper]]
    classify: Callable[[list[Paper], RunContext, RunReport], list[Paper]]
    summarise: Callable[[list[Paper], RunContext, RunReport], SummaryStats]
    render: Callable[[RunContext, RunReport], RenderResult]
    deliver: Callable[[RenderResult, SummaryStats, RunContext, RunReport], None]


def run_day(day: dt.date | None, ctx: RunContext, stages: Stages | None = None) -> RunReport:
    """One announcement day end to end (``None`` = today's RSS announcement). Never raises: the report says."""
    st = stages or PLAIN
    t0 = time.perf_counter()
    report = RunReport(date=day)
    run_id = ctx.store.start_run("day", day)
    try:
        papers = st.fetch(day, ctx, report)
        if papers:
            relevant = st.classify(papers, ctx, report)
            stats = st.summarise(relevant, ctx, report)
            res = st.render(ctx, report)
            st.deliver(res, stats, ctx, report)
    except Exception as exc:
        fail(report, exc)
    report.duration_s = round(time.perf_counter() - t0, 3)
    ctx.store.finish_run(run_id, report)
    return report


# --- the stages, each callable alone (the Prefect flow wraps each one in a task) ------------------
def fail(report: RunReport, exc: BaseException) -> None:
    """Record why the run failed (alarms and known errors in one line; anything else with its type)."""
    if isinstance(exc, DigestError):
        report.status, report.reason = RunStatus.failed, str(exc)
    else:  # a bug or an OS error (disk full, permissions): record it, do not lose the report
        log.error("run of %s crashed", report.date, exc_info=exc)
        report.status, report.reason = RunStatus.failed, f"{exc.__class__.__name__}: {exc}"


def stage_fetch(day: dt.date | None, ctx: RunContext, report: RunReport) -> list[Paper]:
    """The day's papers ([] when there is nothing to do; the report says why)."""
    settings, store = ctx.settings, ctx.store
    with _timed(report, "fetch"):
        if day is None:
            ctx.rss_checked.add("rss")
            got, counts = fetch.fetch_rss(settings, store)
            _add_counts(report, counts)
            report.date = day = got
            if got is None:
                report.status, report.reason = RunStatus.no_announcement, "the RSS feed has no announcement today"
                return []
            papers = store.papers_of_day(got)
        elif not is_announcement_weekday(day):
            report.status, report.reason = RunStatus.no_announcement, f"{day:%A}: arXiv announces Monday–Friday"
            return []
        else:
            papers = ingest_day(day, ctx, report)
    report.fetched = len(papers)
    if not papers:
        report.status, report.reason = RunStatus.no_announcement, f"no announcement for {day} (holiday?)"
        stage_render(ctx, report)  # DIGEST_EMPTY_DAY: skip, or a short note (never over an existing digest)
    return papers


def stage_classify(papers: list[Paper], ctx: RunContext, report: RunReport) -> list[Paper]:
    embedder = make_embedder(ctx.settings)
    with _timed(report, "embed"):  # only papers not yet in the store's cache are embedded
        emb = embed_papers(papers, embedder, ctx.store, progress=lambda n: ctx.tick("embed", n, len(papers)))
    with _timed(report, "classify"):
        rel = classify_day(papers, ctx.settings, ctx.store, embedder=embedder, emb=emb)
    relevant = [p for p, r in zip(papers, rel, strict=True) if r.relevant]
    report.relevant = len(relevant)
    return relevant


def stage_summarise(relevant: list[Paper], ctx: RunContext, report: RunReport) -> SummaryStats:
    with _timed(report, "summarise"):
        _summaries, stats = summarise(
            relevant, ctx.settings, ctx.store, tick=lambda _s: ctx.tick("summarise", 1, len(relevant))
        )
    _add_stats(report, stats)
    return stats


def stage_render(ctx: RunContext, report: RunReport) -> RenderResult:
    assert report.date is not None
    with _timed(report, "render"):
        res = render_day(report.date, ctx.settings, ctx.store)
    report.files = sorted(set(report.files) | set(res.written))
    report.empty_day = res.empty_day
    return res


def stage_deliver(res: RenderResult, stats: SummaryStats, ctx: RunContext, report: RunReport) -> None:
    """Email (unless the day is in alarm), then raise :class:`AlarmError` if the day must count as failed."""
    settings = ctx.settings
    alarm = _alarm(report, stats, bool(settings.llm_base_url))
    with _timed(report, "deliver"):
        if res.digest is not None and not alarm:
            dres = deliver_day(res.digest, settings, ctx.store, resend=ctx.resend)
            report.emails_sent = len(dres.sent)
            report.email_status = dres.status
            if dres.failed:
                report.status = RunStatus.partial
                report.reason = "email failed: " + "; ".join(f"{k}: {v}" for k, v in sorted(dres.failed.items()))[:400]
    if alarm:
        raise AlarmError(alarm)
    if not report.relevant and not report.reason:
        report.reason = f"no relevant papers among {report.fetched} (DIGEST_EMPTY_DAY={settings.empty_day})"
    if not settings.llm_base_url and report.relevant and not report.reason:
        report.reason = "no LLM endpoint (DIGEST_LLM_BASE_URL): offline fallback summaries"


def _add_stats(report: RunReport, stats: SummaryStats) -> None:
    report.summarised = stats.ok + stats.fallback
    report.cached = stats.cached
    report.called = stats.called
    report.fallback = stats.fallback
    report.failed = stats.failed
    report.tokens_in = stats.tokens_in
    report.tokens_out = stats.tokens_out
    report.cost = stats.cost
    report.backends = dict(stats.backends)


def _alarm(report: RunReport, stats: SummaryStats, llm: bool) -> str:
    """Why this day must count as failed, or ''."""
    if llm and stats.called and stats.called_ok == 0:
        return f"every LLM call failed ({stats.called} papers; see `digest runs`)"
    if report.relevant and report.summarised == 0:
        return f"{report.fetched} papers fetched, {report.relevant} relevant, none summarised ({stats.failed} failed)"
    return ""


PLAIN = Stages(stage_fetch, stage_classify, stage_summarise, stage_render, stage_deliver)


def run_range(start: dt.date, end: dt.date, ctx: RunContext) -> list[RunReport]:
    """Every announcement weekday in ``start``…``end``; one day failing does not stop the others."""
    if end < start:
        raise DigestError(f"the range ends ({end}) before it starts ({start})")
    return [run_day(day, ctx) for day in weekdays(start, end)]

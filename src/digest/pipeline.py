"""The pipeline: fetch → classify → enrich → summarise → render → deliver, as functions returning records.

Each stage takes plain values and returns a typed record (:class:`~digest.models.DayFetch`,
:class:`~digest.models.ClassifyResult`, :class:`~digest.models.SummaryStats`,
:class:`~digest.models.RenderResult`, :class:`~digest.models.DeliveryResult`); :func:`run_day` assembles the
:class:`~digest.models.RunReport` once from them and :func:`judge_day` — a pure function of the day's
*stored* state — decides ok / no announcement / partial / failed. A run holds the day's lease in the
store (renewed by a heartbeat) so a second run of the same day waits or steps aside; every paid result
is in the store first, so a re-run redoes nothing. The CLI (``digest run``) and the Prefect flows run
the same :class:`Stages` — the flow with each stage wrapped as a task.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from digest.deliver import deliver
from digest.errors import BusyError, DigestError, mask_secrets
from digest.ingest import Ingestor
from digest.llm.summarize import Summariser
from digest.models import (
    ClassifyResult,
    ClassifySummary,
    DayFetch,
    DayProgress,
    DayState,
    DeliveryResult,
    Digest,
    EmptyDayOutcome,
    FetchSummary,
    Paper,
    RenderResult,
    RunReport,
    RunStatus,
    SummaryStats,
    SummaryStatus,
)
from digest.notify import notify_channels
from digest.personalise import extra_papers, load_profiles, with_reader_parts
from digest.providers import Providers
from digest.relevance.classify import classify
from digest.relevance.personal import Profiles
from digest.render import build, render_day
from digest.render.formats import day_path
from digest.sources import api
from digest.sources.calendar import weekdays

log = logging.getLogger(__name__)

#: progress callback: (stage name, items just finished, stage total) — the CLI draws bars from it
Progress = Callable[[str, int, int], None]


@dataclass
class Run:
    """One invocation: the providers plus per-run options. The stage functions below take it last."""

    providers: Providers
    progress: Progress | None = None
    resend: bool | frozenset[str] = False  # True: every reader again; a set: just those readers
    flow_run_id: str | None = None
    _ingestor: Ingestor | None = None
    _profiles: Profiles | None = None

    @property
    def profiles(self) -> Profiles:
        """Every reader's personal model, refit from the store's votes on first use (the start of the run)."""
        if self._profiles is None:
            self._profiles = load_profiles(self.providers)
        return self._profiles

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            p = self.providers
            self._ingestor = Ingestor(p.settings, p.store, p.arxiv)
        return self._ingestor

    def tick(self, stage: str, advance: int, total: int) -> None:
        if self.progress:
            self.progress(stage, advance, total)


# --- the stages: plain values in, records out ---------------------------------------------------------
def fetch_stage(day: dt.date | None, run: Run) -> DayFetch:
    """The papers of announcement ``day`` (``None``: today's feed), by the one ingestion policy."""
    return run.ingestor.today() if day is None else run.ingestor.day(day)


def classify_stage(papers: list[Paper], run: Run) -> ClassifyResult:
    """The topic decision for every paper, then the papers readers' personal models add (summarised too)."""
    p = run.providers
    c = classify(
        papers,
        p.model,
        p.embedder,
        p.store,
        p.settings.relevance_threshold,
        lambda n: run.tick("embed", n, len(papers)),
    )
    c.extra_ids = [x.id for x in extra_papers(papers, run.profiles, p)]
    return c


def enrich_stage(ids: list[str], run: Run) -> int:
    """Comments / venue / DOI from the API for relevant papers the RSS feed described without them (one request)."""
    p = run.providers
    papers = [x for x in p.store.get_papers(ids) if x.comment is None]
    if not papers:
        return 0
    try:
        got = {x.id: x for x in api.fetch_ids([x.id for x in papers], p.settings, p.arxiv)}
    except DigestError as exc:  # metadata is a nicety: never fail a day for it
        log.warning("could not fetch comments / venue from the arXiv API: %s", exc)
        return 0
    updated = [
        x.model_copy(
            update={"comment": got[x.id].comment or "", "journal_ref": got[x.id].journal_ref, "doi": got[x.id].doi}
        )
        for x in papers
        if x.id in got
    ]
    p.store.update_metadata(updated)
    return len(updated)


def summarise_stage(papers: list[Paper], run: Run) -> SummaryStats:
    p = run.providers
    s = Summariser(p.settings, p.store, p.prompts, p.chat, p.translator, p.owner)
    return s.run(papers, tick=lambda _s: run.tick("summarise", 1, len(papers)))


def build_stage(day: dt.date, run: Run) -> Digest:
    """The day's digest from the store, built once per run and handed to progress, render and deliver."""
    p = run.providers
    return with_reader_parts(build.build_digest(day, p.store, p.topic_names), run.profiles, p)


def progress_of(d: Digest) -> DayProgress:
    """The day's stored state: relevant papers and how many have a complete / fallback / no summary (pure)."""
    prog = DayProgress(relevant=len(d.entries))
    for e in d.entries:
        s = e.summary
        if s is None:
            prog.missing += 1
        elif s.status == SummaryStatus.ok:
            prog.complete += 1
        else:
            prog.fallback += 1
    return prog


def render_stage(d: Digest, run: Run) -> RenderResult:
    p = run.providers
    return render_day(d, p.edition, p.settings, p.store)


def deliver_stage(d: Digest, run: Run) -> DeliveryResult:
    """Email, then the chat channels (never in the email's way); each once per edition and recipient."""
    p = run.providers
    daily = [s for s in p.subscribers if s.edition == "daily"]
    page = p.edition.url(day_path(d.date, "html"))
    edition = f"daily:{d.date.isoformat()}"
    res = deliver(d, edition, daily, p.mailer, p.store, p.settings, p.owner, page, run.resend)
    return push_chat(run, d, edition, "daily", page, res)


def push_chat(run: Run, d: Digest, edition: str, cadence: str, page: str, res: DeliveryResult) -> DeliveryResult:
    """The chat channels of this cadence (daily, or ``URL:weekly``) get ``edition``, after the email: ``res`` with
    their outcome."""
    p, s = run.providers, run.providers.settings
    channels = [c for c in p.channels if c.edition == cadence]
    if not channels or p.notifier is None:
        return res
    chat = notify_channels(d, edition, channels, p.notifier, p.store, p.owner, page, s.lease_seconds,
                           s.email_max_tries, s.email_backoff_seconds)  # fmt: skip
    return res.model_copy(update={"channels_sent": chat.sent + chat.already, "channels_failed": chat.failed,
                                  "channels_unknown": chat.unknown})  # fmt: skip


@dataclass(frozen=True)
class Stages:
    """The stage functions a day runs through; the Prefect flow passes task-wrapped versions of the same."""

    fetch: Callable[[dt.date | None], DayFetch]
    classify: Callable[[list[Paper]], ClassifyResult]
    enrich: Callable[[list[str]], int]
    summarise: Callable[[list[Paper]], SummaryStats]
    build: Callable[[dt.date], Digest]
    render: Callable[[Digest], RenderResult]
    deliver: Callable[[Digest], DeliveryResult]


def plain_stages(run: Run) -> Stages:
    return Stages(
        fetch=lambda d: fetch_stage(d, run),
        classify=lambda ps: classify_stage(ps, run),
        enrich=lambda ids: enrich_stage(ids, run),
        summarise=lambda ps: summarise_stage(ps, run),
        build=lambda d: build_stage(d, run),
        render=lambda d: render_stage(d, run),
        deliver=lambda d: deliver_stage(d, run),
    )


# --- judging a day -------------------------------------------------------------------------------------
def judge_day(
    fetch: DayFetch,
    progress: DayProgress | None,
    delivery: DeliveryResult | None,
    llm: bool,
    fetched: int = 0,
) -> tuple[RunStatus, str]:
    """ok / no announcement / partial / failed, from the day's stored state (not this run's calls)."""
    if fetch.state != DayState.announced:
        return RunStatus.no_announcement, fetch.reason or "no announcement"
    if progress is None or progress.relevant == 0:
        return RunStatus.ok, f"no relevant papers among {fetched}"
    n = progress.relevant
    if progress.complete == 0 and (llm or progress.missing == n):
        return RunStatus.failed, f"{n} relevant papers, none summarised" + (" by the LLM" if llm else "")
    if delivery is not None and delivery.failed:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(delivery.failed.items()))
        return RunStatus.partial, f"email failed: {why}"[:400]
    if delivery is not None and delivery.channels_failed:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(delivery.channels_failed.items()))
        return RunStatus.partial, f"chat channel failed (a re-run sends it): {why}"[:400]
    if progress.fallback or progress.missing:
        return RunStatus.partial, (
            f"{progress.fallback + progress.missing} of {n} summaries are fallbacks (marked in the digest); "
            "a re-run retries those the LLM could not be reached for"
        )
    return RunStatus.ok, ""


# --- one day, end to end --------------------------------------------------------------------------------
class Lease:
    """The day leases this run holds (renewed by the heartbeat, released when the run closes)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.names: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.names)

    def take(self, day: dt.date) -> None:
        """Take the day's lease, or wait for it (``DIGEST_ON_BUSY=wait``), or raise :class:`BusyError`."""
        p = self.run.providers
        name = f"day:{day.isoformat()}"
        deadline = time.monotonic() + (p.settings.busy_wait_seconds if p.settings.on_busy == "wait" else 0)
        while True:
            if p.store.acquire_lease(name, p.owner, p.settings.lease_seconds):
                self.names.append(name)
                return
            if time.monotonic() >= deadline:
                holder = p.store.lease_holder(name)
                who = holder.owner if holder else "another run"
                raise BusyError(
                    f"{day} is being processed by {who}: it will finish the day (DIGEST_ON_BUSY=wait to wait)"
                )
            time.sleep(1.0)

    def renew(self) -> None:
        p = self.run.providers
        for name in self.names:
            p.store.renew_lease(name, p.owner, p.settings.lease_seconds)

    def release(self) -> None:
        p = self.run.providers
        for name in self.names:
            p.store.release_lease(name, p.owner)
        self.names = []


@contextmanager
def _heartbeat(run: Run, run_id: int, lease: Lease) -> Iterator[None]:
    """Renew the day's lease and the run's heartbeat while the run works."""
    p = run.providers
    stop = threading.Event()
    every = max(1.0, p.settings.lease_seconds / 3)

    def beat() -> None:
        while not stop.wait(every):
            try:
                p.store.heartbeat(run_id)
                lease.renew()
            except Exception as exc:  # a missed beat is not fatal; the lease is long enough for a few
                log.warning("heartbeat failed: %s", exc)

    t = threading.Thread(target=beat, name="heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)


@dataclass
class DayRecords:
    """What the stages returned for one day, as they returned it (the report is composed from these once)."""

    date: dt.date | None = None
    fetch: FetchSummary | None = None
    classify: ClassifySummary | None = None
    summary: SummaryStats | None = None
    render: RenderResult | None = None
    delivery: DeliveryResult | None = None
    status: RunStatus = RunStatus.ok
    reason: str = ""

    def report(self, run_id: int, seconds: float) -> RunReport:
        return RunReport(
            date=self.date,
            status=self.status,
            reason=self.reason,
            run_id=run_id,
            duration_s=round(seconds, 3),
            fetch=self.fetch or FetchSummary(),
            classify=self.classify or ClassifySummary(),
            summary=self.summary or SummaryStats(),
            render=self.render,
            delivery=self.delivery,
        )


def run_day(day: dt.date | None, run: Run, stages: Stages | None = None) -> RunReport:
    """One announcement day end to end (``None`` = today's RSS announcement). Never raises: the report says."""
    st = stages or plain_stages(run)
    p = run.providers
    t0 = time.perf_counter()
    rec = DayRecords(date=day)
    run_id = p.store.start_run("day", None, p.owner, run.flow_run_id)
    lease = Lease(run)
    try:
        with _heartbeat(run, run_id, lease):
            if day is not None:
                lease.take(day)
                p.store.heartbeat(run_id, day)  # the run's day is recorded once it holds the day's lease
            f = st.fetch(day)
            rec.date, rec.fetch = f.date, f.summary()
            if f.date is not None and not lease:
                lease.take(f.date)
                p.store.heartbeat(run_id, f.date)
            _day_body(f, run, st, rec)
    except BusyError as exc:
        rec.status, rec.reason = RunStatus.busy, str(exc)
    except Exception as exc:
        rec.status, rec.reason = failure(rec.date, exc)
    except BaseException as exc:  # SIGTERM / SIGINT: record it, free the day, let the caller stop
        rec.status = RunStatus.cancelled
        rec.reason = f"interrupted ({exc.__class__.__name__}); the day's lease is released: re-run the day"
        _close(run, lease, rec.report(run_id, time.perf_counter() - t0))
        raise
    report = rec.report(run_id, time.perf_counter() - t0)
    _close(run, lease, report)
    log.info("%s", report.line())
    return report


def _close(run: Run, lease: Lease, report: RunReport) -> None:
    lease.release()
    if report.run_id is not None:
        run.providers.store.finish_run(report.run_id, report)


def _day_body(f: DayFetch, run: Run, st: Stages, rec: DayRecords) -> None:
    p = run.providers
    llm = p.chat is not None
    if f.state != DayState.announced or f.date is None:
        rec.status, rec.reason = judge_day(f, None, None, llm)
        return
    day = f.date
    c = st.classify(f.papers)
    rec.classify = c.summary()
    relevant_ids = set(c.relevant_ids)
    relevant = [x for x in f.papers if x.id in relevant_ids]
    chosen = relevant + [x for x in f.papers if x.id in set(c.extra_ids) - relevant_ids]  # + readers' own picks
    if chosen:
        st.enrich([x.id for x in chosen])
        rec.summary = st.summarise(chosen)
    digest = st.build(day)
    progress = progress_of(digest)
    status, reason = judge_day(f, progress, None, llm, len(f.papers))
    if status == RunStatus.failed:  # a day in alarm publishes nothing new: previous files untouched
        cause = f" (first error: {rec.summary.first_error})" if rec.summary and rec.summary.first_error else ""
        rec.status, rec.reason = status, reason + cause + "; nothing published (fix the cause and re-run)"
        return
    rec.render = r = st.render(digest)
    if r.published and chosen:
        rec.delivery = st.deliver(digest)
    rec.status, rec.reason = judge_day(f, progress, rec.delivery, llm, len(f.papers))
    if rec.status == RunStatus.ok and not relevant:
        rec.reason = f"no relevant papers among {len(f.papers)} (DIGEST_EMPTY_DAY={p.settings.empty_day.value})"
        if r.empty_day == EmptyDayOutcome.kept_existing:
            rec.reason += "; the existing digest is kept"
    elif rec.status == RunStatus.ok and not llm:
        rec.reason = "no LLM endpoint (DIGEST_LLM_BASE_URL): offline summaries"


def failure(day: dt.date | None, exc: BaseException) -> tuple[RunStatus, str]:
    """Why the run failed (known errors in one line; anything else with its type)."""
    if isinstance(exc, DigestError):
        return RunStatus.failed, str(exc)
    # a bug or an OS error (disk full, permissions): record it, do not lose the report
    log.error("run of %s crashed", day, exc_info=exc)
    return RunStatus.failed, mask_secrets(f"{exc.__class__.__name__}: {exc}")


# --- ranges and catch-up --------------------------------------------------------------------------------
def run_range(start: dt.date, end: dt.date, run: Run, stages: Stages | None = None) -> list[RunReport]:
    """Every announcement weekday in ``start``…``end``; one day failing does not stop the others."""
    if end < start:
        raise DigestError(f"the range ends ({end}) before it starts ({start})")
    return [run_day(day, run, stages) for day in weekdays(start, end)]


def missed_days(run: Run, today: dt.date) -> list[dt.date]:
    """Announcement weekdays before ``today`` (at most ``DIGEST_CATCH_UP_DAYS`` back, and only after the last
    finished day) that no run has finished: what a daily run catches up after downtime."""
    p = run.providers
    n = p.settings.catch_up_days
    if n == 0:
        return []
    start = today - dt.timedelta(days=n + (n // 5) * 2 + 2)
    window = [d for d in weekdays(start, today - dt.timedelta(days=1))][-n:]
    if not window:
        return []
    runs = p.store.runs_of_days(window[0] - dt.timedelta(days=10), today)
    finished = {r["date"] for r in runs if RunStatus(r["status"]).finished}
    finished |= {d for d, _ in p.store.digest_days()}
    before = [d for d in finished if d is not None and d < today]
    if not before:
        return []  # nothing ever finished: a fresh install does not backfill on its own
    last = max(before)
    return [d for d in window if d > last]

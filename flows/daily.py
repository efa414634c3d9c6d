"""Prefect 3 flows: ``daily-digest`` (today, one day, or a range), ``backfill``, ``weekly`` and ``retrain``.

Thin: each task wraps one stage function of :mod:`digest.pipeline`, with plain serialisable values in and
out (dates, papers, records), so a task can run in another process. Each process builds its providers
once (:func:`current_run`). All state lives in our store — it is the cache, so tasks use ``NO_CACHE`` on
purpose — and a retried or re-run flow never redoes paid work. No task retries: the arXiv, LLM and SMTP
clients retry inside with backoff (stacking Prefect retries on them multiplied the wait).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from functools import cache
from zoneinfo import ZoneInfo

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "digest")  # our log records in the run's logs
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # tests and the CLI import the flows

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Cancelled

from digest import pipeline
from digest.config import load_settings
from digest.errors import AlarmError
from digest.models import (
    ClassifyResult,
    DayFetch,
    DeliveryResult,
    Digest,
    Paper,
    RenderResult,
    RunReport,
    RunStatus,
    SummaryStats,
)
from digest.sources.calendar import weekdays
from digest.usecases import status
from flows import runtime

log = logging.getLogger("digest.flows")
logging.getLogger("digest").setLevel(logging.INFO)  # the report lines reach the flow run's logs


@cache
def current_run() -> pipeline.Run:
    """This process's providers, built once from the environment (the deployment's job variables)."""
    from digest.providers import Providers

    runtime.die_with_parent()
    runtime.check_deployed_environment()
    settings = load_settings()
    run = pipeline.Run(Providers.from_settings(settings), flow_run_id=str(flow_run.get_id() or "") or None)
    if os.environ.get("PREFECT_API_URL"):
        try:
            runtime.reap_zombies(run.providers.store, settings.lease_seconds * 2)  # runs an earlier process left behind
        except Exception as exc:
            log.warning("could not check Prefect for zombie runs: %s", exc)
    return run


@task(name="fetch", cache_policy=NO_CACHE)
def fetch_task(day: dt.date | None) -> DayFetch:
    return pipeline.fetch_stage(day, current_run())


@task(name="classify", cache_policy=NO_CACHE)
def classify_task(papers: list[Paper]) -> ClassifyResult:
    return pipeline.classify_stage(papers, current_run())


@task(name="enrich", cache_policy=NO_CACHE)
def enrich_task(ids: list[str]) -> int:
    return pipeline.enrich_stage(ids, current_run())


@task(name="summarise", cache_policy=NO_CACHE)
def summarise_task(papers: list[Paper]) -> SummaryStats:
    return pipeline.summarise_stage(papers, current_run())


@task(name="build", cache_policy=NO_CACHE)
def build_task(day: dt.date) -> Digest:
    return pipeline.build_stage(day, current_run())


@task(name="render", cache_policy=NO_CACHE)
def render_task(d: Digest) -> RenderResult:
    return pipeline.render_stage(d, current_run())


@task(name="deliver", cache_policy=NO_CACHE)
def deliver_task(d: Digest) -> DeliveryResult:
    return pipeline.deliver_stage(d, current_run())


TASKS = pipeline.Stages(
    fetch=fetch_task,
    classify=classify_task,
    enrich=enrich_task,
    summarise=summarise_task,
    build=build_task,
    render=render_task,
    deliver=deliver_task,
)


def _day_run_name() -> str:
    day = flow_run.parameters.get("day")
    return f"digest-{day}" if day else "digest-today"


@flow(name="digest-day", flow_run_name=_day_run_name, log_prints=True)
def digest_day(day: dt.date | None = None) -> RunReport:
    """One announcement day: fetch → classify → summarise → render → deliver. Fails on an alarm."""
    run = current_run()
    try:
        report = pipeline.run_day(day, run, TASKS)
    except (KeyboardInterrupt, TerminationSignal) as exc:  # SIGTERM/SIGINT: run_day recorded it and freed the day
        get_run_logger().warning("run of %s interrupted by %s", day or "today", exc.__class__.__name__)
        return Cancelled(message=f"interrupted by {exc.__class__.__name__}; the day's lease is released")  # type: ignore[return-value]
    get_run_logger().info(report.line())
    status.after_day(run, report)
    create_markdown_artifact(
        key=f"digest-{report.date.isoformat() if report.date else 'today'}",
        markdown=status.report_markdown(run.providers.settings, report),
        description=f"arxiv-digest report for {report.date or 'today'}",
    )
    if report.status == RunStatus.failed:
        raise AlarmError(report.line())
    return report


@flow(name="backfill", flow_run_name="backfill-{start}-{end}", log_prints=True)
def backfill(start: dt.date, end: dt.date) -> list[RunReport]:
    """Every announcement weekday from ``start`` to ``end``; a failed day does not stop the others."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return _days(weekdays(start, end))


def _days(days: list[dt.date]) -> list[RunReport]:
    reports: list[RunReport] = []
    failed: list[str] = []
    for day in days:
        state = digest_day.with_options(flow_run_name=f"digest-{day.isoformat()}")(day, return_state=True)
        if state.is_cancelled():  # interrupted: stop here, the remaining days wait for the next run
            return Cancelled(message=f"interrupted during {day}: {state.message}")  # type: ignore[return-value]
        if state.is_completed():
            reports.append(state.result())
        else:
            failed.append(f"{day}: {state.message}")
            get_run_logger().error("day %s failed: %s", day, state.message)
    if failed:
        raise AlarmError(f"{len(failed)} of {len(failed) + len(reports)} days failed: " + " | ".join(failed))
    return reports


def scheduled_day(tz: str) -> dt.date | None:
    """The announcement day a scheduled run stands for: its scheduled start time, in the deployment's timezone."""
    from prefect.runtime import deployment

    start = flow_run.get_scheduled_start_time()
    if start is None or not deployment.get_id():
        return None
    return start.astimezone(ZoneInfo(tz)).date()


@flow(name="daily-digest", log_prints=True)
def daily_digest(
    date: dt.date | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> list[RunReport]:
    """Today's announcement (no parameters; a scheduled run knows its day), one day (``date``), or a range
    (``start``/``end``). A daily run then catches up announcement weekdays missed since the last finished one."""
    if start is not None or end is not None:
        return backfill(start or end, end or start)  # type: ignore[arg-type]
    run = current_run()
    day = date or scheduled_day(run.providers.settings.timezone)
    if day is not None and day.weekday() >= 5:
        get_run_logger().info("%s is a %s: arXiv announces nothing", day, f"{day:%A}")
        return []
    days = [day] if day is not None else []
    if day is None:
        state = digest_day.with_options(flow_run_name="digest-today")(None, return_state=True)
        if not state.is_completed():
            return state  # type: ignore[return-value]
        reports = [state.result()]
        day = reports[0].date
    else:
        reports = []
    if day is not None and date is None:
        days += pipeline.missed_days(run, day)
    return reports + _days(days)


@flow(name="weekly", log_prints=True)
def weekly(week: str | None = None) -> str:
    """The weekly edition (default: the last complete week), from the store; emailed to weekly subscribers."""
    from digest.usecases.weekly import weekly_edition

    res = weekly_edition(current_run(), week, email=True)
    get_run_logger().info(res.line())
    return res.line()


@flow(name="retrain", log_prints=True)
def retrain() -> list[str]:
    """Rebuild the reader's relevance model from the base data, the topics' seeds and every vote."""
    from digest.usecases.train import retrain

    run = current_run()
    lines = retrain(run.providers, None, get_run_logger().info)
    for line in lines:
        get_run_logger().info(line)
    current_run.cache_clear()  # the next run loads the new model
    return lines


@flow(name="watchdog", log_prints=True)
def watchdog() -> list[str]:
    """Tell the operator about weekdays with no finished daily run by the deadline, and crashed runs."""
    if runtime.zombie_check not in status.STATUS_CHECKS:
        status.STATUS_CHECKS.append(runtime.zombie_check)
    return status.watchdog(current_run())

"""Prefect 3 flows: ``daily-digest`` (today, one day, or a range) and ``backfill`` (a range, one subflow per day).

Thin: each task wraps one stage function of :mod:`digest.pipeline`; all state lives in our store, so a
retried or re-run flow never redoes paid work. Retries only where they can help: fetching (network).
The LLM fan-out is bounded inside the summarise stage (``DIGEST_LLM_CONCURRENCY`` threads), not one
Prefect task per paper: a task run costs API round trips, and a day has hundreds of papers.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import cast

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment
from prefect.runtime import flow_run

from digest import pipeline
from digest.config import Settings, load_settings
from digest.errors import AlarmError
from digest.llm.summarize import SummaryStats
from digest.models import Paper, RunReport, RunStatus
from digest.render import RenderResult
from digest.sources.calendar import weekdays
from digest.store import Store


@task(name="fetch", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def fetch_task(day: dt.date | None, ctx: pipeline.RunContext, report: RunReport) -> list[Paper]:
    return pipeline.stage_fetch(day, ctx, report)


@task(name="classify", cache_policy=NO_CACHE)
def classify_task(papers: list[Paper], ctx: pipeline.RunContext, report: RunReport) -> list[Paper]:
    return pipeline.stage_classify(papers, ctx, report)


@task(name="summarise", cache_policy=NO_CACHE)
def summarise_task(relevant: list[Paper], ctx: pipeline.RunContext, report: RunReport) -> SummaryStats:
    return pipeline.stage_summarise(relevant, ctx, report)


@task(name="render", cache_policy=NO_CACHE)
def render_task(ctx: pipeline.RunContext, report: RunReport) -> RenderResult:
    return pipeline.stage_render(ctx, report)


@task(name="deliver", cache_policy=NO_CACHE)  # SMTP retries with backoff happen inside, per recipient
def deliver_task(res: RenderResult, stats: SummaryStats, ctx: pipeline.RunContext, report: RunReport) -> None:
    pipeline.stage_deliver(res, stats, ctx, report)


TASKS = pipeline.Stages(fetch_task, classify_task, summarise_task, render_task, deliver_task)


def _context(settings: Settings | None = None) -> pipeline.RunContext:
    s = settings or load_settings()
    return pipeline.RunContext(s, Store(s.db_url))


def _day_run_name() -> str:
    return f"digest-{flow_run.parameters.get('day') or 'today'}"


@flow(name="digest-day", flow_run_name=_day_run_name, log_prints=True)
def digest_day(day: dt.date | None = None) -> RunReport:
    """One announcement day: fetch → classify → summarise → render → deliver. Fails on an alarm."""
    log = get_run_logger()
    ctx = _context()
    report = pipeline.run_day(day, ctx, TASKS)
    ctx.store.close()
    log.info(report.line())
    if report.status == RunStatus.failed:
        raise AlarmError(report.line())
    return report


@flow(name="backfill", flow_run_name="backfill-{start}-{end}", log_prints=True)
def backfill(start: dt.date, end: dt.date) -> list[RunReport]:
    """Every announcement weekday from ``start`` to ``end``; a failed day does not stop the others."""
    log = get_run_logger()
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    reports: list[RunReport] = []
    failed: list[str] = []
    for day in weekdays(start, end):
        state = digest_day(day, return_state=True)
        if state.is_completed():
            reports.append(state.result())
        else:
            failed.append(f"{day}: {state.message}")
            log.error("day %s failed: %s", day, state.message)
    if failed:
        raise AlarmError(f"{len(failed)} of {len(failed) + len(reports)} days failed: " + " | ".join(failed))
    return reports


@flow(name="daily-digest", log_prints=True)
def daily_digest(
    date: dt.date | None = None, start: dt.date | None = None, end: dt.date | None = None
) -> list[RunReport]:
    """Today's announcement (no parameters), one day (``date``), or a re-run of a range (``start``/``end``)."""
    if start is not None or end is not None:
        return backfill(start or end, end or start)  # type: ignore[arg-type]
    return [digest_day(date)]


def deployments(settings: Settings | None = None) -> list[RunnerDeployment]:
    """The daily deployment with its cron schedule, and an unscheduled backfill deployment."""
    from prefect.schedules import Cron

    s = settings or load_settings()
    deps = [
        daily_digest.to_deployment(
            name="daily",
            schedules=[Cron(s.schedule_cron, timezone=s.timezone)],
            description="Today's arXiv announcement → digest, after the RSS update (Mon–Fri).",
            tags=["arxiv-digest"],
        ),
        backfill.to_deployment(name="backfill", description="Re-run a date range.", tags=["arxiv-digest"]),
    ]
    return [cast(RunnerDeployment, d) for d in deps]  # sync context: to_deployment returns the object

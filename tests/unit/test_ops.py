"""Operations without a server: prefect.yaml matches the deployments, deadlines, alerts once, status lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from digest.config import Settings
from digest.models import RunReport, RunStatus
from digest.ops import after_day, deadline, job_env, overdue, report_markdown
from digest.pipeline import Run
from digest.store import Store
from tests.fakes import FakeMailer, providers

REPO = Path(__file__).resolve().parents[2]


def test_prefect_yaml_declares_the_same_deployments(settings: Settings) -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    declared = {(d["entrypoint"].split(":")[1], d["name"]) for d in spec["deployments"]}
    assert declared == {("daily_digest", "daily"), ("backfill", "backfill"), ("weekly", "weekly"),
                        ("retrain", "retrain"), ("watchdog", "watchdog")}  # fmt: skip
    daily = next(d for d in spec["deployments"] if d["name"] == "daily")
    assert daily["schedules"][0] == {"cron": settings.schedule_cron, "timezone": settings.timezone}
    assert daily["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}


def test_job_env_makes_paths_absolute_and_carries_no_secret(settings: Settings) -> None:
    from pydantic import SecretStr

    s = settings.model_copy(update={"db_url": "sqlite:///data/x.db", "llm_api_key": SecretStr("sk-top-secret-123456")})
    env = job_env(s)
    assert env["DIGEST_DB_URL"].startswith("sqlite:////") and Path(env["DIGEST_OUTPUT_DIR"]).is_absolute()
    assert "sk-top-secret" not in str(env)


def test_failed_day_alerts_once_and_holiday_asks_to_confirm(settings: Settings, store: Store) -> None:
    mailer = FakeMailer()
    s = settings.model_copy(update={"alert_email": "ops@x.org"})
    run = Run(providers(s, store, mailer=mailer))
    failed = RunReport(date=dt.date(2026, 6, 2), status=RunStatus.failed, reason="boom")
    after_day(run, failed)
    after_day(run, failed)
    after_day(run, RunReport(date=dt.date(2026, 6, 3), status=RunStatus.no_announcement, reason="empty"))
    subjects = [m["Subject"] for m in mailer.sent]
    assert subjects == [
        "[arxiv-digest] 2026-06-02 failed",
        "[arxiv-digest] 2026-06-03: no announcement — was it an arXiv holiday?",
    ]


def test_overdue_weekdays_and_artifact(settings: Settings, store: Store) -> None:
    now = dt.datetime(2026, 6, 3, 12, 0, tzinfo=dt.UTC)  # Wednesday 08:00 ET: Tuesday and Wednesday are overdue
    assert deadline(settings, dt.date(2026, 6, 3)).hour == 6
    found = overdue(settings, store, now)
    assert "stale:2026-06-03" in found and "stale:2026-06-02" in found
    rid = store.start_run("day", dt.date(2026, 6, 3))
    store.finish_run(rid, RunReport(date=dt.date(2026, 6, 3), status=RunStatus.ok))
    assert "stale:2026-06-03" not in overdue(settings, store, now)
    md = report_markdown(settings, RunReport(date=dt.date(2026, 6, 3), status=RunStatus.ok, relevant=4))
    assert "| relevant | 4 |" in md and "2026/06/2026-06-03.html" in md

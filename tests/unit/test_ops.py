"""Operations without a server: the one deployment definition, deadlines, alerts once, status lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flows.deployments import job_env, specs

from digest.config import Settings
from digest.models import ClassifySummary, RunReport, RunStatus
from digest.pipeline import Run
from digest.store import Store
from digest.usecases.status import after_day, deadline, overdue, report_markdown
from tests.fakes import FakeMailer, providers

REPO = Path(__file__).resolve().parents[2]


def test_one_deployment_definition_whose_entrypoints_resolve(settings: Settings) -> None:
    import importlib

    from flows.deployments import CODE_ROOT

    assert not (REPO / "prefect.yaml").exists()  # no second, hand-kept copy
    declared = {(s.flow, s.name) for s in specs(settings)}
    assert declared == {("daily_digest", "daily"), ("backfill", "backfill"), ("weekly", "weekly"),
                        ("retrain", "retrain"), ("watchdog", "watchdog")}  # fmt: skip
    for s in specs(settings):
        path, _, func = s.entrypoint.partition(":")
        assert (CODE_ROOT / path).is_file()  # found from the package's own location, not the working directory
        assert callable(getattr(importlib.import_module("flows.daily"), func))
    daily = next(s for s in specs(settings) if s.name == "daily")
    assert daily.cron == settings.schedule_cron and daily.one_at_a_time


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
    assert overdue(settings, store, now) == []  # a store that never ran: never scheduled, nothing overdue
    from sqlalchemy import update

    from digest.store.schema import runs

    first = store.start_run("day", dt.date(2026, 5, 29))
    with store.engine.begin() as conn:  # this store has been running since the end of May
        conn.execute(update(runs).where(runs.c.run_id == first).values(started=dt.datetime(2026, 5, 29, 5)))
    store.finish_run(first, RunReport(date=dt.date(2026, 5, 29), status=RunStatus.ok))
    found = overdue(settings, store, now)
    assert "stale:2026-06-03" in found and "stale:2026-06-02" in found
    rid = store.start_run("day", dt.date(2026, 6, 3))
    store.finish_run(rid, RunReport(date=dt.date(2026, 6, 3), status=RunStatus.ok))
    assert "stale:2026-06-03" not in overdue(settings, store, now)
    md = report_markdown(settings, RunReport(date=dt.date(2026, 6, 3), status=RunStatus.ok, classify=ClassifySummary(relevant=4)))
    assert "| relevant | 4 |" in md and "2026/06/2026-06-03.html" in md


def test_credentials_in_urls_never_become_job_variables(settings: Settings) -> None:
    from flows.deployments import split_credentials

    s = settings.model_copy(update={
        "db_url": "postgresql+psycopg://digest:S3cretPGpass@db:5432/digest",
        "llm_base_url": "https://gw.example.org/v1?api-key=k-123456789abcdef",
        "embed_base_url": "https://user:pw0rd@emb.example.org/v1",
    })  # fmt: skip
    env, secret = split_credentials(job_env(s))
    assert "S3cretPGpass" not in str(env) and "k-123456789abcdef" not in str(env) and "pw0rd" not in str(env)
    assert set(secret) == {"DIGEST_DB_URL", "DIGEST_LLM_BASE_URL", "DIGEST_EMBED_BASE_URL"}
    assert secret["DIGEST_DB_URL"].endswith("@db:5432/digest") and "DIGEST_OUTPUT_DIR" in env

"""Prefect flows under prefect_test_harness: a day as tasks with plain values, artifacts, alerts, backfill."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.replay import ArxivState, LLMState, serve_llm
from digest.replay.smtp import Mailbox, serve_smtp
from digest.store import Store
from tests.conftest import SMALL_DAY
from tests.shared import corpus_by_day


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def local(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, arxiv_state: ArxivState
) -> Iterator[tuple[LLMState, Mailbox, Path]]:
    from flows.daily import current_run

    arxiv_state.day = dt.date(2026, 7, 1)  # the feed carries another day: runs use the API
    llm = LLMState()
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {
            "DIGEST_LLM_BASE_URL": url,
            "DIGEST_LLM_MAX_TRIES": "1",
            "DIGEST_RELEVANCE_THRESHOLD": "0",  # every paper relevant: the few papers of SMALL_DAY all go through
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_EMAIL_TO": "reader@example.org",
            "DIGEST_ALERT_EMAIL": "ops@example.org",
        }.items():
            monkeypatch.setenv(k, v)
        current_run.cache_clear()
        yield llm, box, Path(env["DIGEST_OUTPUT_DIR"])
        current_run.cache_clear()


def test_daily_flow_runs_a_day_with_an_artifact(prefect_harness: None, local: tuple[LLMState, Mailbox, Path]) -> None:
    from flows.daily import daily_digest
    from prefect.client.orchestration import get_client

    llm, box, out = local
    reports = daily_digest(date=dt.date.fromisoformat(SMALL_DAY))
    assert len(reports) == 1 and reports[0].status.value == "ok"
    n = len(corpus_by_day()[SMALL_DAY])
    assert reports[0].summarised == n and llm.requests == n and len(box.messages) == 1
    assert (out / "2026/06/2026-06-25.md").is_file() and (out / "feed.xml").is_file()
    again = daily_digest(date=dt.date.fromisoformat(SMALL_DAY))
    assert again[0].cached == n and llm.requests == n and len(box.messages) == 1
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts()
    mine = [a for a in arts if a.key == f"digest-{SMALL_DAY}"]
    assert mine and f"{SMALL_DAY} ok" in str(mine[0].data) and "| relevant |" in str(mine[0].data)


def test_backfill_one_failed_day_alerts_once_and_does_not_stop_the_others(
    prefect_harness: None, local: tuple[LLMState, Mailbox, Path], env: dict[str, str]
) -> None:
    from flows.daily import backfill
    from prefect.states import State

    llm, box, out = local
    for p in corpus_by_day()[SMALL_DAY]:  # every LLM call for Thursday's papers fails
        llm.per_paper[p["title"][:40]] = ["500"] * 5
    state = backfill(dt.date(2026, 6, 25), dt.date(2026, 6, 28), return_state=True)
    assert isinstance(state, State) and state.is_failed()
    assert "1 of 2 days failed" in (state.message or "") and "none summarised" in (state.message or "")
    assert (out / "2026/06/2026-06-26.md").is_file() and not (out / "2026/06/2026-06-25.md").exists()
    alerts = [m for m in box.messages if m["To"] == "ops@example.org"]
    assert len(alerts) == 1 and "2026-06-25 failed" in alerts[0]["Subject"]
    state2 = backfill(dt.date(2026, 6, 25), dt.date(2026, 6, 25), return_state=True)  # still failing: no 2nd alert
    assert state2.is_failed() and len([m for m in box.messages if m["To"] == "ops@example.org"]) == 1
    assert Store(env["DIGEST_DB_URL"]).deliveries("alert:failed:2026-06-25")[0]["status"] == "sent"

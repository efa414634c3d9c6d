"""Prefect flows under prefect_test_harness, alarms, crash + resume, and a real `prefect server` deployment."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.store import Store
from tests.arxiv_server import ArxivState
from tests.conftest import run_cli
from tests.llm_server import LLMState, serve_llm
from tests.shared import corpus_by_day
from tests.smtp_server import Mailbox, free_port, serve_smtp

SMALL_DAY = "2026-06-25"  # a real Thursday with 4 cs.CV papers: cheap to run end to end


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def local(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, arxiv_state: ArxivState
) -> Iterator[tuple[LLMState, Mailbox, Path]]:
    arxiv_state.day = dt.date(2026, 7, 1)  # the feed carries another day: runs use the API
    llm = LLMState()
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {
            "DIGEST_LLM_BASE_URL": url,
            "DIGEST_LLM_BACKOFF_SECONDS": "0.01",
            "DIGEST_LLM_MAX_TRIES": "1",
            "DIGEST_RELEVANCE_THRESHOLD": "0",  # every paper relevant: the few papers of SMALL_DAY all go through
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_EMAIL_TO": "reader@example.org",
            "DIGEST_EMAIL_BACKOFF_SECONDS": "0.01",
        }.items():
            monkeypatch.setenv(k, v)
        yield llm, box, Path(env["DIGEST_OUTPUT_DIR"])


def test_daily_flow_runs_a_day(prefect_harness: None, local: tuple[LLMState, Mailbox, Path]) -> None:
    from flows.daily import daily_digest

    llm, box, out = local
    reports = daily_digest(date=dt.date.fromisoformat(SMALL_DAY))
    assert len(reports) == 1 and reports[0].status.value == "ok"
    n = len(corpus_by_day()[SMALL_DAY])
    assert reports[0].summarised == n and llm.requests == n and len(box.messages) == 1
    assert (out / "2026/06/2026-06-25.md").is_file() and (out / "feed.xml").is_file()
    again = daily_digest(date=dt.date.fromisoformat(SMALL_DAY))
    assert again[0].cached == n and llm.requests == n and len(box.messages) == 1


def test_backfill_flow_one_failed_day_does_not_stop_the_others(
    prefect_harness: None, local: tuple[LLMState, Mailbox, Path]
) -> None:
    from flows.daily import backfill
    from prefect.states import State

    llm, _box, out = local
    for p in corpus_by_day()[SMALL_DAY]:  # every LLM call for Thursday's papers fails
        llm.per_paper[p["title"][:40]] = ["500"] * 5
    state = backfill(dt.date(2026, 6, 25), dt.date(2026, 6, 28), return_state=True)
    assert isinstance(state, State) and state.is_failed()
    assert "1 of 2 days failed" in (state.message or "") and "every LLM call failed" in (state.message or "")
    assert (out / "2026/06/2026-06-26.md").is_file()  # Friday still done; no weekend digests
    assert not list(out.glob("2026/06/2026-06-2[78].*"))


def test_alarm_exit_code_and_stored_report(local: tuple[LLMState, Mailbox, Path], env: dict[str, str]) -> None:
    llm, box, _out = local
    llm.always = {"500"}
    code, stdout, stderr = run_cli("run", "--date", SMALL_DAY)
    assert code == 1
    assert "every LLM call failed" in stdout and "failed" in stderr and len(box.messages) == 0
    last = Store(env["DIGEST_DB_URL"]).last_runs(1)[0]
    assert last["status"] == "failed" and "every LLM call failed" in last["report"]["reason"]


def test_crash_after_llm_stage_then_rerun_finishes_without_new_calls(
    local: tuple[LLMState, Mailbox, Path], env: dict[str, str]
) -> None:
    llm, box, out = local
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("not a directory")  # the render stage will crash on it, after the LLM stage
    code, stdout, _ = run_cli("run", "--date", SMALL_DAY)
    n = len(corpus_by_day()[SMALL_DAY])
    assert code == 1 and llm.requests == n and len(box.messages) == 0
    assert "Error" in stdout  # the OS error is in the report line
    out.unlink()
    code, stdout, _ = run_cli("run", "--date", SMALL_DAY)
    assert code == 0, stdout
    assert llm.requests == n, "the re-run must reuse the stored summaries"
    assert f"cached {n}" in stdout and len(box.messages) == 1
    assert (out / "2026/06/2026-06-25.md").read_text(encoding="utf-8").count("\n[^") == n


def test_real_prefect_server_accepts_the_scheduled_deployment(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DIGEST_SCHEDULE_CRON": "45 0 * * 1-5",
    }
    prefect = Path(sys.executable).with_name("prefect")
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log = server.stdout.read().decode(errors="replace")[-500:] if server.stdout else ""
                pytest.skip(f"`prefect server start` did not become healthy here: {log}")
            time.sleep(1)
        digest = Path(sys.executable).with_name("digest")
        res = subprocess.run([str(digest), "serve", "--register-only"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        dep = httpx.get(f"http://127.0.0.1:{port}/api/deployments/name/daily-digest/daily", timeout=10).json()
        sched = dep["schedules"][0]["schedule"]
        assert sched["cron"] == "45 0 * * 1-5" and sched["timezone"] == "America/New_York"
        assert set(dep["parameter_openapi_schema"]["properties"]) == {"date", "start", "end"}
        back = httpx.get(f"http://127.0.0.1:{port}/api/deployments/name/backfill/backfill", timeout=10)
        assert back.status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_smtp_outage_is_partial_then_rerun_delivers(
    local: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    llm, box, out = local
    good_port = os.environ["DIGEST_SMTP_PORT"]
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(free_port()))  # nobody listens: the SMTP server is "down"
    code, stdout, stderr = run_cli("run", "--date", SMALL_DAY)
    n = len(corpus_by_day()[SMALL_DAY])
    assert code == 3, stdout + stderr
    assert "partial" in stdout and "email failed" in stdout and llm.requests == n
    assert (out / "2026/06/2026-06-25.md").is_file()  # the digest is written regardless
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setenv("DIGEST_SMTP_PORT", good_port)
    code, stdout, _ = run_cli("run", "--date", SMALL_DAY)
    assert code == 0 and "emails 1" in stdout and len(box.messages) == 1 and llm.requests == n
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files

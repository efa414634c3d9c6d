"""The fault suite (docs/RELIABILITY.md): what an operator meets — overlapping runs, hostile LLM answers,
arXiv pages that are not feeds, empty weekday channels, a dead LLM endpoint, secrets in errors."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.replay import ArxivState, LLMState, serve_llm
from digest.replay.smtp import Mailbox, free_port, serve_smtp
from digest.store import Store
from tests.conftest import run_cli
from tests.fakes import snapshot

DAY = "2025-11-06"  # a real Thursday of the corpus, 43 cs.CV papers
DIGEST = str(Path(sys.executable).with_name("digest"))


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}, **env}
    return subprocess.Popen([DIGEST, *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("on_busy", ["exit", "wait"])
def test_two_runs_of_one_day_at_once_pay_once_and_email_once(
    backend: str, on_busy: str, arxiv_state: ArxivState, env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        env = {**env, "DIGEST_DB_URL": request.getfixturevalue("pg_db")}
    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState(latency=0.3)
    with serve_llm(llm) as url, serve_smtp(delay=4.0) as (box, port):
        e = {**env, "DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
             "DIGEST_EMAIL_TO": "reader@example.org", "DIGEST_ON_BUSY": on_busy, "DIGEST_LEASE_SECONDS": "20"}  # fmt: skip
        procs = [_spawn(e, "run", "--date", DAY) for _ in range(2)]
        outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0, 0], outs
    for out, err in outs:
        assert "Traceback" not in out + err and len(out.strip().splitlines()) == 1, (out, err)
    store = Store(e["DIGEST_DB_URL"])
    relevant = store.last_runs(5)
    n = max(r["report"].get("relevant", 0) for r in relevant if r["report"])
    assert n > 0 and llm.requests == n, (llm.requests, n)  # each relevant paper sent to the LLM once
    assert len(box.messages) == 1 and box.envelopes[0][1] == ["reader@example.org"]
    statuses = sorted(r["status"] for r in relevant)
    assert statuses == (["busy", "ok"] if on_busy == "exit" else ["ok", "ok"])


def test_hostile_llm_answers_never_reach_an_output_live(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState()
    llm.always = {"html"}
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_EMAIL_TO": "r@example.org", "DIGEST_RELEVANCE_THRESHOLD": "0.2"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        # control characters and bidi overrides on some papers, live HTML on every answer
        for i, p in enumerate(arxiv_state.day_papers(arxiv_state.day)):
            llm.per_paper[p["title"][:30]] = ["control", "control"] if i % 3 == 0 else ["bidi"] if i % 3 == 1 else []
        code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    out = Path(env["DIGEST_OUTPUT_DIR"])
    files = snapshot(out)
    assert {"2025/11/2025-11-06.md", "2025/11/2025-11-06.html", "feed.xml", "atom.xml"} <= set(files)
    msg = box.messages[0]
    docs = {name: data.decode() for name, data in files.items()}
    docs["email.html"] = msg.get_body(("html",)).get_content()
    docs["email.txt"] = msg.get_body(("plain",)).get_content()
    for name, text in docs.items():
        assert "\u0008" not in text and "\u202e" not in text, name
        assert "<script" not in text and "onerror=" not in text.replace("onerror=&", ""), name
    for name in ("2025/11/2025-11-06.html", "email.html"):
        soup = BeautifulSoup(docs[name], "html.parser")
        assert soup.find("script") is None and soup.find("img") is None
        assert not [a for a in soup.find_all("a") if not a["href"].startswith(("https://", "#", "../"))], name


def test_an_html_maintenance_page_is_a_failure_with_one_line(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    arxiv_state.script = ["html"]
    code, _out, err = run_cli("run")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "text/html, not an RSS feed" in err
    assert Store(env["DIGEST_DB_URL"]).day_info(arxiv_state.day) is None


def test_an_empty_weekday_channel_is_fetched_once_the_feed_is_back(
    arxiv_state: ArxivState, env: dict[str, str]
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    arxiv_state.script = ["empty"]
    code, out, _ = run_cli("run")
    assert code == 0 and "no_announcement" in out and "checked again" in out
    code, out, err = run_cli("run", "--date", DAY)  # the feed is back
    assert code == 0, out + err
    assert f"{DAY} ok: fetched 43" in out and (Path(env["DIGEST_OUTPUT_DIR"]) / "2025/11/2025-11-06.md").is_file()


@pytest.mark.parametrize("failure", ["refused", "hanging"])
def test_a_dead_llm_endpoint_gives_up_fast_publishes_nothing_then_the_rerun_completes(
    failure: str, arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    out = Path(env["DIGEST_OUTPUT_DIR"])
    out.mkdir(parents=True)
    (out / "index.html").write_text("yesterday")
    with serve_smtp() as (box, port):
        monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("DIGEST_SMTP_PORT", str(port))
        monkeypatch.setenv("DIGEST_EMAIL_TO", "r@example.org")
        monkeypatch.setenv("DIGEST_RELEVANCE_THRESHOLD", "0.05")  # many papers: the breaker must save the time
        llm = LLMState()
        with serve_llm(llm) as url:
            if failure == "refused":
                monkeypatch.setenv("DIGEST_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
            else:
                llm.always = {"hang"}
                llm.hang_seconds = 15
                monkeypatch.setenv("DIGEST_LLM_BASE_URL", url)
                monkeypatch.setenv("DIGEST_LLM_TIMEOUT", "5")
            t0 = time.monotonic()
            code, stdout, stderr = run_cli("run", "--date", DAY)
            took = time.monotonic() - t0
            assert code == 1 and took < 120, (took, stdout, stderr)
            assert "nothing published" in stdout and snapshot(out) == {"index.html": b"yesterday"}
            # the failure line names the cause without -v
            cause = "cannot connect to http://127.0.0.1:" if failure == "refused" else "timed out after 5s"
            assert "first error: LLM answer unavailable" in stdout and cause in stdout, stdout
            assert not box.messages
            llm.always = set()
            monkeypatch.setenv("DIGEST_LLM_BASE_URL", url)
            monkeypatch.delenv("DIGEST_LLM_TIMEOUT", raising=False)
            code, stdout, stderr = run_cli("run", "--date", DAY)
    assert code == 0, stdout + stderr
    assert len(box.messages) == 1 and (out / "2025/11/2025-11-06.html").is_file()


def test_a_killed_run_shows_as_crashed(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState(latency=5)
    with serve_llm(llm) as url:
        e = {**env, "DIGEST_LLM_BASE_URL": url, "DIGEST_LEASE_SECONDS": "5"}
        p = _spawn(e, "run", "--date", DAY)
        deadline = time.monotonic() + 120
        while llm.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    time.sleep(11)  # two lease periods without a heartbeat
    code, out, _ = run_cli("runs", "1", "--format", "jsonl")
    assert code == 0 and '"status": "crashed"' in out
    assert Store(e["DIGEST_DB_URL"]).lease_holder(f"day:{DAY}") is None  # the lease expired with it


def test_a_password_never_appears_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DB_URL", f"postgresql+psycopg://digest:hunter2-pw@127.0.0.1:{free_port()}/digest")
    code, out, err = run_cli("runs")
    assert code == 1 and "hunter2" not in out + err and "digest:***@" in err and len(err.strip().splitlines()) == 1


def test_unwritable_sqlite_path_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "file").write_text("x")
    monkeypatch.setenv("DIGEST_DB_URL", f"sqlite:///{tmp_path}/ro/file/digest.db")
    code, _out, err = run_cli("runs")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "DIGEST_DB_URL" in err
    _ = Mailbox


def test_sigterm_on_digest_run_records_cancelled_and_frees_the_day(
    arxiv_state: ArxivState, env: dict[str, str]
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState(latency=5)
    with serve_llm(llm) as url:
        e = {**env, "DIGEST_LLM_BASE_URL": url}
        p = _spawn(e, "run", "--date", DAY)
        deadline = time.monotonic() + 120
        while llm.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err
    store = Store(e["DIGEST_DB_URL"])
    run = store.last_runs(1)[0]
    assert run["status"] == "cancelled" and "interrupted" in run["report"]["reason"]
    assert store.lease_holder(f"day:{DAY}") is None

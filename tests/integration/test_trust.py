"""Trusted in the open (docs/RELIABILITY.md): a relay that answers after the client's timeout gets each edition at
most once per reader, and the doubt is shown with how to resend."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time

import pytest

from digest.replay import ArxivState, LLMState, serve_llm
from digest.replay.smtp import serve_smtp
from digest.store import Store
from tests.conftest import run_cli

DAY = "2025-11-06"  # a real Thursday of the corpus, 43 cs.CV papers


def test_a_slow_relay_gets_each_edition_at_most_once(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    readers = ["ana@example.org", "bo@example.org"]
    with serve_llm(LLMState()) as url, serve_smtp(delay=2.5) as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_SMTP_TIMEOUT": "1", "DIGEST_EMAIL_TO": ",".join(readers)}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        first = run_cli("run", "--date", DAY)
        second = run_cli("run", "--date", DAY)
        time.sleep(3)  # the relay accepts what it was handed, after the client gave up waiting
    assert "Traceback" not in first[1] + first[2] + second[1] + second[2]
    got = sorted(rcpt for _frm, rcpts in box.envelopes for rcpt in rcpts)
    assert got == readers, got  # one copy each over two runs: a timeout after DATA is never retried
    rows = {d["recipient"]: d["status"] for d in Store(env["DIGEST_DB_URL"]).deliveries()}
    assert rows == dict.fromkeys(readers, "unknown")
    code, out, _err = run_cli("runs")
    assert code == 0 and "ana@example.org: unknown" in out and "--resend" in out


def test_a_gateway_that_quotes_the_key_back_publishes_no_secret(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path

    key = "sk-proj-QUOTEDBACK0123456789abcdef"

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a 422 whose body quotes the request's credentials
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"error": {"message": f"bad request from {self.headers.get('authorization')}",
                                         "type": "invalid_request_error"}}).encode()  # fmt: skip
            self.send_response(422)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    arxiv_state.day = dt.date.fromisoformat(DAY)
    try:
        for k, v in {"DIGEST_LLM_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
                     "DIGEST_LLM_API_KEY": key}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("-v", "run", "--date", DAY)
    finally:
        server.shutdown()
    assert code != 0  # the configured LLM never answered: the day fails
    secret = key.removeprefix("sk-proj-")
    assert secret not in out + err
    db = Path(env["DIGEST_DB_URL"].removeprefix("sqlite:///"))
    assert db.stat().st_size > 0 and secret.encode() not in db.read_bytes()
    for f in Path(env["DIGEST_OUTPUT_DIR"]).rglob("*") if Path(env["DIGEST_OUTPUT_DIR"]).exists() else []:
        assert not f.is_file() or secret.encode() not in f.read_bytes(), f
    code, out, err = run_cli("runs")
    assert secret not in out + err


def test_a_feed_outage_fails_a_dated_day_and_the_feed_decides_once_back(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    day = dt.date.fromisoformat(DAY)
    arxiv_state.day = day
    arxiv_state.rss_raw = b"<!DOCTYPE html><html><body><h1>arXiv is down for maintenance</h1></body></html>"
    page = Path(env["DIGEST_OUTPUT_DIR"]) / "2025/11/2025-11-06.html"
    with serve_llm(LLMState()) as url, serve_smtp() as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_EMAIL_TO": "r@example.org"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", DAY)
        assert code == 1 and "failed" in out, out + err  # nothing rebuilt from the API, nothing published
        assert not page.exists() and box.messages == []
        arxiv_state.rss_raw = None  # the feed is back: the next run does the day from the announcement
        code, out, err = run_cli("run", "--date", DAY)
        assert code == 0, out + err
    feed = {p["id"] for p in arxiv_state.day_papers(day)}
    assert f"fetched {len(feed)}" in out and "approximate" not in page.read_text(encoding="utf-8")
    assert len(box.messages) == 1
    store = Store(env["DIGEST_DB_URL"])
    assert {p.id for p in store.papers_of_day(day)} == feed


def test_an_approximate_day_is_replaced_by_the_feeds_list(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date.fromisoformat(DAY)
    arxiv_state.day = day + dt.timedelta(days=1)  # the feed has moved on: the day is rebuilt from the API
    monkeypatch.setenv("DIGEST_TRANSLATE_FALLBACK", "none")
    code, out, err = run_cli("fetch", "--date", DAY)
    assert code == 0 and "approximate" in out, out + err
    store = Store(env["DIGEST_DB_URL"])
    assert store.day_info(day).source.value == "api"  # type: ignore[union-attr]
    arxiv_state.day = day  # the feed carries the day (a late fetch, or a replayed feed): its list wins
    code, out, err = run_cli("fetch", "--date", DAY)
    assert code == 0 and "approximate" not in out, out + err
    assert store.day_info(day).source.value == "rss"  # type: ignore[union-attr]
    assert {p.id for p in store.papers_of_day(day)} == {p["id"] for p in arxiv_state.day_papers(day)}


def test_a_rerun_after_a_sigkill_in_the_llm_stage_finishes_the_day_at_once(
    arxiv_state: ArxivState, env: dict[str, str]
) -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState(latency=2.0)
    digest = str(Path(sys.executable).with_name("digest"))
    with serve_llm(llm) as url:
        e = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}, **env,
             "DIGEST_LLM_BASE_URL": url, "DIGEST_LEASE_SECONDS": "600"}  # fmt: skip
        p = subprocess.Popen([digest, "run", "--date", DAY], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while llm.requests == 0:
            assert time.monotonic() < deadline and p.poll() is None, "the run never reached the LLM"
            time.sleep(0.2)
        p.send_signal(signal.SIGKILL)  # mid-call: its lease and LLM claims stay in the store for 10 minutes
        p.wait(timeout=30)
        llm.latency = 0.0
        t0 = time.monotonic()
        res = subprocess.run([digest, "run", "--date", DAY], env=e, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
    assert res.returncode == 0 and f"{DAY} ok" in res.stdout, res.stdout + res.stderr
    assert took < 120, took  # not the 10 minutes of the dead process's lease and claims
    runs = Store(env["DIGEST_DB_URL"]).last_runs(5)
    assert [r["status"] for r in runs] == ["ok", "crashed"], runs


def _trickle_server(bytes_every: float = 1.0, limit: int = 90) -> tuple[object, int]:
    """An HTTP server that sends its headers, then one byte every ``bytes_every`` s (at most ``limit`` bytes)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Trickle(BaseHTTPRequestHandler):
        def _trickle(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(limit))
            self.end_headers()
            try:
                for _ in range(limit):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(bytes_every)
            except OSError:
                pass

        def do_GET(self) -> None:
            self._trickle()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self._trickle()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_endpoints_that_trickle_never_hang_a_run(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    server, port = _trickle_server()
    try:
        # an LLM endpoint that trickles: each call ends at DIGEST_LLM_TIMEOUT, the breaker stops the rest
        monkeypatch.setenv("DIGEST_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("DIGEST_LLM_TIMEOUT", "2")
        monkeypatch.setenv("DIGEST_LLM_MAX_TRIES", "2")
        code, out, err = run_cli("run", "--date", DAY)  # before: never returned
        assert code == 1 and "none summarised" in out + err, out + err
        # an RSS feed that trickles: the fetch ends at DIGEST_ARXIV_TIMEOUT, the day fails with one line
        monkeypatch.setenv("DIGEST_ARXIV_RSS_URL", f"http://127.0.0.1:{port}/rss/")
        monkeypatch.setenv("DIGEST_ARXIV_TIMEOUT", "2")
        monkeypatch.setenv("DIGEST_ARXIV_MAX_TRIES", "2")
        code, out, err = run_cli("run", "--date", "2025-11-07")
        assert code == 1 and "timed out" in out + err, out + err
    finally:
        server.shutdown()  # type: ignore[attr-defined]


def test_sigterm_ends_a_run_stuck_on_the_llm_within_seconds(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState(latency=90.0)  # every call hangs (the per-read timeout would not fire either)
    digest = str(Path(sys.executable).with_name("digest"))
    with serve_llm(llm) as url:
        e = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}, **env,
             "DIGEST_LLM_BASE_URL": url}  # fmt: skip
        p = subprocess.Popen([digest, "run", "--date", DAY], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while llm.requests == 0:
            assert time.monotonic() < deadline and p.poll() is None, "the run never reached the LLM"
            time.sleep(0.2)
        time.sleep(1.0)  # several calls in flight on worker threads
        p.send_signal(signal.SIGTERM)
        _out, err = p.communicate(timeout=30)  # before: alive for minutes with stuck threads
    assert p.returncode == 130 and b"interrupted" in err
    runs = Store(env["DIGEST_DB_URL"]).last_runs(1)
    assert runs[0]["status"] == "cancelled" and Store(env["DIGEST_DB_URL"]).lease_holder(f"day:{DAY}") is None


def test_a_looping_model_and_a_huge_abstract_are_bounded(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    day = dt.date.fromisoformat(DAY)
    arxiv_state.day = day
    papers = [dict(p) for p in arxiv_state.day_papers(day)]
    papers[0]["abstract"] = (papers[0]["abstract"] + " ") * (1_000_000 // len(papers[0]["abstract"]))  # ~1 MB
    arxiv_state.rss_papers = papers
    llm = LLMState()
    for p in papers[1:4]:
        llm.per_paper[p["title"][:30]] = ["loop", "loop"]  # the call and the repair: 225 KB titles
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_EMAIL_TO": "r@example.org", "DIGEST_RELEVANCE_THRESHOLD": "0"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", DAY)
    assert code in (0, 3), out + err
    assert llm.max_prompt_chars < 20_000, llm.max_prompt_chars  # the abstract was capped before the prompt
    out_dir = Path(env["DIGEST_OUTPUT_DIR"])
    for f in ("2025/11/2025-11-06.html", "feed.xml"):
        text = (out_dir / f).read_text(encoding="utf-8")
        assert "重复的标题重复的标题重复的标题" not in text, f  # the looping answers were rejected
    assert len(box.messages) == 1 and len(box.messages[0].as_bytes()) < 400_000


def test_a_flaky_provider_heals_on_the_rerun_and_a_dead_one_fails_fast(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 on every 3rd request, 500 on every 7th, truncated JSON on every 5th, English on every 4th: the first run
    keeps what it can, the re-run asks the rejected papers again (quoting their problems) and completes the day."""
    arxiv_state.day = dt.date.fromisoformat(DAY)
    llm = LLMState()
    llm.every = {3: "429", 7: "500", 5: "truncated", 4: "english"}
    with serve_llm(llm) as url:
        monkeypatch.setenv("DIGEST_LLM_BASE_URL", url)
        monkeypatch.setenv("DIGEST_RELEVANCE_THRESHOLD", "0")  # all 43 papers of the day
        first = run_cli("run", "--date", DAY)
        second = run_cli("run", "--date", DAY)
    assert "Traceback" not in first[1] + first[2]
    assert second[0] == 0 and "fallback 0" in second[1] and "failed 0" in second[1], second
    m = re.search(r"relevant (\d+)", second[1])
    assert m is not None and int(m.group(1)) == 43
    assert "breaker" not in first[1] + first[2]  # 429/500 from a live endpoint never open the breaker


def test_three_processes_share_one_arxiv_clock(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    """arXiv's rule is per user: three processes fetching overlapping ranges from one store never send two
    requests closer than DIGEST_ARXIV_DELAY_SECONDS apart."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    arxiv_state.day = dt.date(2025, 11, 14)  # the feed has moved on: the days are rebuilt from the API
    digest = str(Path(sys.executable).with_name("digest"))
    e = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}, **env,
         "DIGEST_ARXIV_DELAY_SECONDS": "3", "DIGEST_ON_BUSY": "wait"}  # fmt: skip
    Store(e["DIGEST_DB_URL"]).close()  # the store exists before they start
    ranges = [("2025-11-04", "2025-11-05"), ("2025-11-05", "2025-11-06"), ("2025-11-04", "2025-11-06")]
    procs = [subprocess.Popen([digest, "fetch", "--from", a, "--to", b], env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a, b in ranges]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    times = sorted(arxiv_state.request_times)
    assert len(times) >= 4, arxiv_state.requests
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 2.9, (gaps, arxiv_state.requests)  # the server's clock; the turns are 3 s apart

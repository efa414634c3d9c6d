"""Chat channels through Apprise's real json:// webhook path to a local receiver: one edition reaches each
configured URL exactly once (also when two runs overlap), per topic; a receiver that fails is retried by the next
run and never blocks the email."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from digest.replay import ArxivState, LLMState, serve_llm
from digest.replay.smtp import serve_smtp
from tests.conftest import run_cli

DAY = "2025-11-06"  # a real Thursday, 43 cs.CV papers
DIGEST = str(Path(sys.executable).with_name("digest"))


@contextmanager
def receiver() -> Iterator[tuple[int, dict[str, list[dict[str, Any]]], set[str]]]:
    """A webhook receiver: path → JSON bodies received; paths in ``failing`` answer 500; paths ending in
    ``/slow`` take the message, then trickle their answer (a byte a second for two minutes)."""
    got: dict[str, list[dict[str, Any]]] = {}
    failing: set[str] = set()
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with lock:
                if self.path in failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                got.setdefault(self.path, []).append(body)
            self.send_response(200)
            if self.path.endswith("/slow"):
                self.send_header("content-length", "120")
                self.end_headers()
                try:
                    for _ in range(120):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(1.0)
                except OSError:
                    pass
                return
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], got, failing
    finally:
        server.shutdown()


def test_each_edition_reaches_each_channel_once_and_a_failing_one_is_retried(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arxiv_state.day = dt.date.fromisoformat(DAY)
    with receiver() as (port, got, failing), serve_llm(LLMState()) as url, serve_smtp() as (box, sport):
        hooks = f"json://127.0.0.1:{port}/all, json://127.0.0.1:{port}/clip:clip json://127.0.0.1:{port}/down"
        failing.add("/down")
        e = {**env, "DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(sport),
             "DIGEST_EMAIL_TO": "r@example.org", "DIGEST_NOTIFY_URLS": hooks, "DIGEST_EMAIL_BACKOFF_SECONDS": "0.01",
             "DIGEST_ON_BUSY": "wait"}  # fmt: skip
        full = {**{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}, **e}
        procs = [subprocess.Popen([DIGEST, "run", "--date", DAY], env=full, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
        outs = [p.communicate(timeout=600) for p in procs]
        assert sorted(p.returncode for p in procs) == [3, 3], outs  # partial: one channel did not take it
        assert len(box.messages) == 1  # the failing channel never blocked the email
        assert len(got["/all"]) == 1 and len(got["/clip"]) == 1 and "/down" not in got
        first = got["/all"][0]
        assert DAY in first["title"] and "arxiv.org/abs/" in first["message"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in first["message"])  # Chinese title and TL;DR
        assert len(first["message"]) <= 1800
        failing.clear()  # the receiver is back: the next run sends it there, and only there
        for k, v in e.items():
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", DAY)
        assert code == 0, out + err
    assert len(got["/down"]) == 1 and len(got["/all"]) == 1 and len(got["/clip"]) == 1 and len(box.messages) == 1
    clip_only = got["/clip"][0]["message"]
    assert clip_only.count("arxiv.org/abs/") <= first["message"].count("arxiv.org/abs/")


def test_operator_alerts_reach_the_alert_channels_once(
    arxiv_state: ArxivState, base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver() as (port, got, _failing):
        monkeypatch.setenv("DIGEST_ALERT_NOTIFY_URLS", f"json://127.0.0.1:{port}/ops")
        from digest.config import load_settings
        from digest.models import RunReport, RunStatus
        from digest.pipeline import Run
        from digest.providers import Providers
        from digest.usecases.status import after_day

        run = Run(Providers.from_settings(load_settings(), need_llm=False))
        failed = RunReport(date=dt.date(2026, 6, 2), status=RunStatus.failed, reason="the LLM is down")
        after_day(run, failed)
        after_day(run, failed)  # noticed twice (two processes, the watchdog): told once
    assert len(got["/ops"]) == 1 and "2026-06-02 failed" in got["/ops"][0]["title"]


def test_a_webhook_that_trickles_never_holds_the_run(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that takes the message but trickles its answer: before, the run waited for ever (Apprise's
    timeouts are per read). Now the message is in doubt after DIGEST_NOTIFY_TIMEOUT, never sent again; the
    other channel and the email are not held up."""
    arxiv_state.day = dt.date.fromisoformat(DAY)
    with receiver() as (port, got, _failing), serve_llm(LLMState()) as url, serve_smtp() as (box, sport):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(sport),
                     "DIGEST_EMAIL_TO": "r@example.org", "DIGEST_NOTIFY_TIMEOUT": "2",
                     "DIGEST_NOTIFY_URLS": f"json://127.0.0.1:{port}/slow json://127.0.0.1:{port}/all"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", DAY)
        assert code == 0 and "chat 1" in out and "chat in doubt 1" in out, out + err
        assert len(got["/slow"]) == 1 and len(got["/all"]) == 1 and len(box.messages) == 1
        code, out, err = run_cli("run", "--date", DAY)  # the next run: nothing sent again, to anyone
        assert code == 0, out + err
    assert len(got["/slow"]) == 1 and len(got["/all"]) == 1 and len(box.messages) == 1

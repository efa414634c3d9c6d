"""Trusted in the open (docs/RELIABILITY.md): a relay that answers after the client's timeout gets each edition at
most once per reader, and the doubt is shown with how to resend."""

from __future__ import annotations

import datetime as dt
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

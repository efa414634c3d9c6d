"""The whole pipeline through ``digest run`` against local arXiv, LLM and SMTP servers (real day from ../shared)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from digest.store import Store
from tests.arxiv_server import ArxivState
from tests.conftest import REAL_DAY, run_cli
from tests.llm_server import LLMState, serve_llm
from tests.shared import corpus_by_day
from tests.smtp_server import Mailbox, serve_smtp

SECRET = "sk-e2e-SECRET-4242424242"


@pytest.fixture
def servers(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[LLMState, Mailbox, Path]]:
    llm = LLMState()
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {
            "DIGEST_LLM_BASE_URL": url,
            "DIGEST_LLM_API_KEY": SECRET,
            "DIGEST_LLM_BACKOFF_SECONDS": "0.01",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_SMTP_PASSWORD": "smtp-SECRET-pw",
            "DIGEST_EMAIL_TO": "reader1@example.org,reader2@example.org",
            "DIGEST_EMAIL_BACKOFF_SECONDS": "0.01",
        }.items():
            monkeypatch.setenv(k, v)
        yield llm, box, Path(env["DIGEST_OUTPUT_DIR"])


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_run_real_day_end_to_end_then_rerun_is_free(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], env: dict[str, str]
) -> None:
    llm, box, out = servers
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    code, stdout, stderr = run_cli("run", "--date", REAL_DAY)
    assert code == 0, stdout + stderr
    assert f"{REAL_DAY} ok: fetched {len(corpus_by_day()[REAL_DAY])}" in stdout
    files = snapshot(out)
    assert {"2026/06/2026-06-02.md", "2026/06/2026-06-02.html", "index.html", "feed.xml", "atom.xml"} <= set(files)
    md = files["2026/06/2026-06-02.md"].decode()
    n = md.count("\n[^")
    assert n >= 5 and md.count("| [^") == n  # a real day has relevant papers; table rows = footnotes
    assert llm.requests >= n and len(box.messages) == 2
    assert feedparser.parse(files["feed.xml"]).bozo == 0
    store = Store(env["DIGEST_DB_URL"])
    report = store.last_runs(1)[0]["report"]
    assert report["relevant"] == n and report["summarised"] == n and report["emails_sent"] == 2
    assert report["status"] == "ok" and report["tokens_in"] > 0 and report["cost"] > 0
    assert set(report["stage_seconds"]) == {"fetch", "embed", "classify", "summarise", "render", "deliver"}
    for blob in [*files.values(), json.dumps(store.last_runs(5), default=str).encode(), stdout.encode()]:
        assert SECRET.encode() not in blob and b"smtp-SECRET-pw" not in blob
    # second run: no LLM request, no email, byte-identical files
    before = llm.requests
    code, stdout2, _ = run_cli("run", "--date", REAL_DAY)
    assert code == 0 and f"cached {n}" in stdout2 and "emails 0" in stdout2
    assert llm.requests == before and len(box.messages) == 2
    assert snapshot(out) == files


def test_backfill_with_weekend(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], env: dict[str, str]
) -> None:
    _llm, box, out = servers
    arxiv_state.day = dt.date(2026, 7, 1)  # the feed carries another day: the range comes from the API
    code, stdout, stderr = run_cli("run", "--from", "2026-06-04", "--to", "2026-06-08")
    assert code == 0, stdout + stderr
    assert "2026-06-06" not in stdout and "2026-06-07" not in stdout and "3 days: ok 3" in stdout
    mds = sorted(str(p.relative_to(out)) for p in out.rglob("*.md"))
    assert mds == ["2026/06/2026-06-04.md", "2026/06/2026-06-05.md", "2026/06/2026-06-08.md"]
    assert "approximate" in (out / "2026/06/2026-06-04.md").read_text(encoding="utf-8")
    assert len(box.messages) == 2 * 3
    store = Store(env["DIGEST_DB_URL"])
    for day in ("2026-06-04", "2026-06-05", "2026-06-08"):
        expected = {p["id"] for p in corpus_by_day()[day]}
        got = {p.id for p in store.papers_of_day(dt.date.fromisoformat(day))}
        assert len(got & expected) >= 0.9 * len(expected), day


def test_run_on_weekend_feed_is_no_announcement(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.day = dt.date(2026, 6, 6)  # Saturday: an empty channel
    code, stdout, _ = run_cli("run")
    assert code == 0 and "no_announcement" in stdout
    assert not list(Path(env["DIGEST_OUTPUT_DIR"]).rglob("*.md"))


def test_run_with_malformed_feed_fails_with_one_line(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_ARXIV_TIMEOUT", "30")  # the server's first answer loads the corpus: no timeout retry
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.script = ["malformed"]
    code, _stdout, stderr = run_cli("run")
    assert code == 1
    assert len(stderr.strip().splitlines()) == 1 and stderr.strip().startswith("failed: today:")
    assert Store(env["DIGEST_DB_URL"]).count_papers() == 0  # nothing half-written
    assert Store(env["DIGEST_DB_URL"]).last_runs(1)[0]["status"] == "failed"

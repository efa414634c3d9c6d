"""The whole job through `digest run`: real HTTP arXiv replay, the LLM stand-in through the openai SDK, real SMTP."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import feedparser
import pytest

from digest.replay import ArxivState, LLMState
from digest.replay.smtp import Mailbox
from digest.store import Store
from tests.conftest import REAL_DAY, SMALL_DAY, run_cli
from tests.fakes import snapshot
from tests.integration.conftest import SECRET, SMTP_PW
from tests.shared import corpus_by_day


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
    assert n >= 5 and md.count("| [^") == n
    assert llm.requests >= n and len(box.messages) == 2
    assert feedparser.parse(files["feed.xml"]).bozo == 0
    store = Store(env["DIGEST_DB_URL"])
    report = store.last_runs(1)[0]["report"]
    assert report["relevant"] == n and report["summarised"] == n and report["emails_sent"] == 2
    assert report["status"] == "ok" and report["tokens_in"] > 0 and report["cost"] > 0
    assert {"fetch", "embed", "classify", "summarise", "render", "deliver"} <= set(report["stage_seconds"])
    msg = box.messages[0]
    assert msg["List-Unsubscribe"] and len(msg.get_body(("html",)).get_content().encode()) < 100_000
    page = files["2026/06/2026-06-02.html"].decode()
    assert 'class="venue"' in page and 'class="code"' in page  # comments from the API (enrich), code links
    db = Path(env["DIGEST_DB_URL"].removeprefix("sqlite:///")).read_bytes()
    for blob in [*files.values(), json.dumps(store.last_runs(5), default=str).encode(), stdout.encode(), db]:
        assert SECRET.encode() not in blob and SMTP_PW.encode() not in blob
    before = llm.requests
    code, stdout2, _ = run_cli("run", "--date", REAL_DAY)
    assert code == 0 and f"cached {n}" in stdout2 and "emails 0" in stdout2
    assert llm.requests == before and len(box.messages) == 2
    assert snapshot(out) == files


def test_backfill_over_a_weekend(
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


def test_weekend_feed_is_no_announcement(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.day = dt.date(2026, 6, 6)  # Saturday: an empty channel
    code, stdout, _ = run_cli("run")
    assert code == 0 and "no_announcement" in stdout
    assert not list(Path(env["DIGEST_OUTPUT_DIR"]).rglob("*.md"))


def test_malformed_feed_fails_with_one_line_and_writes_nothing(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.script = ["malformed"]
    code, _stdout, stderr = run_cli("run")
    assert code == 1
    assert len(stderr.strip().splitlines()) == 1 and stderr.strip().startswith("failed: today:")
    store = Store(env["DIGEST_DB_URL"])
    assert store.count_papers() == 0 and store.last_runs(1)[0]["status"] == "failed"


def test_smtp_outage_is_partial_then_the_rerun_delivers(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.replay.smtp import free_port

    llm, box, out = servers
    arxiv_state.day = dt.date(2026, 7, 1)
    monkeypatch.setenv("DIGEST_RELEVANCE_THRESHOLD", "0")  # every paper of the small day goes through
    good = monkeypatch.setenv  # keep the real port aside
    port = str(box and __import__("os").environ["DIGEST_SMTP_PORT"])
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(free_port()))  # nobody listens: SMTP is "down"
    code, stdout, stderr = run_cli("run", "--date", SMALL_DAY)
    n = len(corpus_by_day()[SMALL_DAY])
    assert code == 3, stdout + stderr
    assert "partial" in stdout and "email failed" in stdout and llm.requests == n
    files = snapshot(out)
    assert "2026/06/2026-06-25.md" in files
    good("DIGEST_SMTP_PORT", port)
    code, stdout, _ = run_cli("run", "--date", SMALL_DAY)
    assert code == 0 and "emails 2" in stdout and len(box.messages) == 2 and llm.requests == n
    assert snapshot(out) == files


def test_summarize_cli_by_ids_then_cached(arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path]) -> None:
    llm, _box, _out = servers
    arxiv_state.day = dt.date(2026, 7, 1)
    code, stdout, stderr = run_cli("fetch", "--date", SMALL_DAY)
    assert code == 0, stderr
    ids = [p["id"] for p in corpus_by_day()[SMALL_DAY]][:3]
    code, stdout, _ = run_cli("summarize", "--ids", ",".join(ids))
    assert code == 0 and "papers 3, cached 0, called 3, fallback 0" in stdout and SECRET not in stdout
    code, stdout, _ = run_cli("summarize", "--ids", ids[0], "--ids", ids[1])
    assert code == 0 and "papers 2, cached 2, called 0" in stdout and llm.requests == 3

"""The weekly edition from the store alone, and the day page in a real headless browser (math rendered)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.replay import ArxivState, LLMState
from digest.replay.smtp import Mailbox
from tests.conftest import run_cli

WEEK_DAYS = ("2025-11-03", "2025-11-04", "2025-11-05", "2025-11-06", "2025-11-07")


def test_weekly_edition_from_the_store_makes_no_call(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.test_chat import receiver

    llm, box, out = servers
    arxiv_state.day = dt.date(2026, 7, 1)
    monkeypatch.setenv(
        "DIGEST_EMAIL_TO", "daily@example.org, weekly@example.org:weekly, clipweekly@example.org:clip:weekly"
    )
    hooks = receiver()
    port, got, _failing = hooks.__enter__()
    monkeypatch.setenv("DIGEST_NOTIFY_URLS", f"json://127.0.0.1:{port}/day json://127.0.0.1:{port}/week:weekly")
    code, stdout, stderr = run_cli("run", "--from", WEEK_DAYS[0], "--to", WEEK_DAYS[-1])
    assert code == 0, stdout + stderr
    daily = len(box.messages)
    assert all(m["To"] == "daily@example.org" for m in box.messages)
    calls, requests = llm.requests, len(arxiv_state.requests)
    code, stdout, stderr = run_cli("weekly", "--week", "2025-W45")
    assert code == 0, stdout + stderr
    assert llm.requests == calls and len(arxiv_state.requests) == requests  # 0 LLM calls, 0 arXiv requests
    assert (out / "weekly/2025-W45.md").is_file() and (out / "weekly/2025-W45.html").is_file()
    weekly = box.messages[daily:]
    assert sorted(m["To"] for m in weekly) == ["clipweekly@example.org", "weekly@example.org"]
    md = (out / "weekly/2025-W45.md").read_text(encoding="utf-8")
    assert "week 2025-W45" in md and md.count("| [^") == md.count("\n[^") > 0
    clip_only = next(m for m in weekly if m["To"] == "clipweekly@example.org").get_body(("plain",)).get_content()
    assert "== image editing ==" not in clip_only
    assert "weekly/2025-W45.html" in (out / "index.html").read_text(encoding="utf-8")
    code, stdout, _ = run_cli("weekly", "--week", "2025-W45")  # again: nothing re-sent
    assert code == 0 and len(box.messages) == daily + 2
    hooks.__exit__(None, None, None)
    # chat: the daily channel got each day once, the URL:weekly channel only the week, once
    assert len(got["/day"]) == daily and len(got["/week"]) == 1  # a day with a digest has an email and a message
    assert "week 2025-W45" in got["/week"][0]["title"] and "arxiv.org/abs/" in got["/week"][0]["message"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_a_real_abstracts_formula_renders_as_math_in_chromium(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], tmp_path: Path
) -> None:
    from bs4 import BeautifulSoup

    _llm, _box, out = servers
    arxiv_state.day = dt.date.fromisoformat("2026-06-02")
    code, stdout, stderr = run_cli("run", "--date", "2026-06-02")
    assert code == 0, stdout + stderr
    page = out / "2026/06/2026-06-02.html"
    src = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    with_math = [a for a in src.select("article") if a.select("math")]
    assert with_math, "a real day has abstracts with formulas"
    res = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    dom = BeautifulSoup(res.stdout, "html.parser")
    rendered = [p for p in dom.select("article p.abstract[lang=en]") if p.select("math")]
    assert rendered, res.stderr[-500:]
    # a real abstract's formulas are rendered math in the browser, and no $ delimiter is left in its text
    clean = [p for p in rendered if "$" not in p.get_text()]
    assert clean, [p.get_text()[:200] for p in rendered[:3]]
    total = sum(len(p.select("math")) for p in rendered)
    raw = sum(p.get_text().count("$") // 2 for p in rendered)
    assert raw <= 0.1 * total, (raw, total)  # only spans with macros MathML cannot express stay as source
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chrome2'}", "--window-size=1280,1600",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)  # fmt: skip
    assert shot.is_file() and shot.stat().st_size > 10_000

"""Every reader their own digest, through the real paths: votes cast by following the signed links of real emails
(SMTP) on a real `digest web`, then the next day's run — no manual command in between."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup

from digest.config import load_settings
from digest.replay import ArxivState, LLMState
from digest.replay.smtp import Mailbox, free_port
from tests.conftest import run_cli
from tests.integration.test_web import serve_web

DAY1, DAY2 = "2025-11-06", "2025-11-07"
ANA, BO, CY = "ana@example.org", "bo@example.org", "cy@example.org"


def mail_to(box: Mailbox, address: str) -> BeautifulSoup:
    msgs: list[EmailMessage] = [m for m in box.messages if m["To"] == address]
    assert msgs, f"no email to {address}"
    body = msgs[-1].get_body(("html",))
    assert body is not None
    return BeautifulSoup(body.get_content(), "html.parser")


def edition(html: BeautifulSoup) -> list[str]:
    """The papers of an email's edition (not its "help me learn" papers), in order."""
    return [a["data-arxiv-id"] for a in html.select('a[data-vote="up"]') if not a.find_parent(attrs={"data-learn": True})]


def follow(url: str) -> None:
    r = httpx.get(url)
    assert r.status_code == 303, (r.status_code, r.text[:300])


@pytest.fixture
def readers(servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, int]]:
    _llm, box, _out = servers
    port = free_port()
    monkeypatch.setenv("DIGEST_EMAIL_TO", f"{ANA},{BO},{CY}")
    monkeypatch.setenv("DIGEST_FEEDBACK_SECRET", "a-long-random-secret-for-the-test-0123")
    monkeypatch.setenv("DIGEST_WEB_URL", f"http://127.0.0.1:{port}")
    yield box, port


def test_two_readers_with_opposite_votes_get_different_editions_the_next_day(
    arxiv_state: ArxivState, readers: tuple[Mailbox, int]
) -> None:
    box, port = readers
    arxiv_state.day = dt.date.fromisoformat(DAY1)
    code, out, err = run_cli("run", "--date", DAY1)
    assert code == 0, out + err
    day1 = {r: edition(mail_to(box, r)) for r in (ANA, BO, CY)}
    assert day1[ANA] == day1[BO] == day1[CY] and len(day1[ANA]) >= 4  # nobody has voted: one shared edition
    ana_mail = mail_to(box, ANA)
    learn = ana_mail.select("[data-learn]")
    assert 0 < len(learn) <= 5 and all(x.select('a[data-vote="up"]') and x.select('a[data-vote="down"]') for x in learn)
    assert all(a.get("data-arxiv-id") and a.get("data-vote") for a in ana_mail.select('a[href*="/vote?"]'))
    with serve_web(port) as base:
        # ana: 👎 on half the papers of her edition, from her email's signed links
        downs = [a for a in ana_mail.select('a[data-vote="down"]') if not a.find_parent(attrs={"data-learn": True})]
        for a in downs[: len(downs) // 2]:
            follow(a["href"])
        ana_down = {a["data-arxiv-id"] for a in downs[: len(downs) // 2]}
        # bo: 👍 on his edition, and 👍 on the closest papers of the "rest of the day", from the page of his email
        bo_mail = mail_to(box, BO)
        for a in bo_mail.select('a[data-vote="up"]'):
            follow(a["href"])
        page_link = next(a["href"] for a in bo_mail.select("a") if f"/{DAY1}.html?" in a.get("href", ""))
        page = BeautifulSoup(httpx.get(page_link).text, "html.parser")
        rest = page.select("details.rest li[data-arxiv-id]")[:8]
        for li in rest:
            up = li.select_one('a[data-vote="up"]')
            assert up is not None
            follow(base + up["href"])
        # bo's page now shows his votes; a tampered reader token gets 403
        page = BeautifulSoup(httpx.get(page_link).text, "html.parser")
        assert len(page.select('[data-voted="up"]')) >= len(rest)
        assert httpx.get(page_link.replace("t=", "t=x")).status_code == 403
        assert httpx.get(page_link.replace(urllib.parse.quote(BO), urllib.parse.quote(ANA))).status_code == 403
    code, out, _ = run_cli("feedback", "list", "--format", "jsonl")
    assert code == 0 and f'"reader": "{ANA}"' in out and f'"reader": "{BO}"' in out and CY not in out

    arxiv_state.day = dt.date.fromisoformat(DAY2)
    box.messages.clear()
    code, out, err = run_cli("run", "--date", DAY2)  # no `digest train`, nothing manual: the run refits
    assert code == 0, out + err
    day2 = {r: edition(mail_to(box, r)) if any(m["To"] == r for m in box.messages) else [] for r in (ANA, BO, CY)}
    public = BeautifulSoup(
        (Path(load_settings().output_dir) / f"2025/11/{DAY2}.html").read_text(encoding="utf-8"), "html.parser"
    )
    shared = [a["data-arxiv-id"] for a in public.select("article[data-arxiv-id]")]
    assert sorted(day2[CY]) == sorted(shared)  # the reader who never voted gets what everybody got before
    assert day2[ANA] != day2[BO], day2
    assert set(day2[ANA]) < set(shared) < set(day2[BO]), (day2, shared)  # like her 👎 out, like his 👍 in
    summary = mail_to(box, BO).select_one("[data-feedback-summary]")
    assert summary is not None and "came in" in summary.get_text(), summary
    assert mail_to(box, CY).select_one("[data-feedback-summary]") is None
    # a 👎 paper never returns to that reader: day 1 sent again
    box.messages.clear()
    code, out, err = run_cli("run", "--date", DAY1, "--resend")
    assert code == 0, out + err
    again = edition(mail_to(box, ANA))
    assert not set(again) & ana_down and set(again) < set(day1[ANA]), (again, ana_down)
    assert sorted(edition(mail_to(box, CY))) == sorted(day1[CY])


def test_cli_votes_of_a_reader_the_weekly_and_a_reset(
    arxiv_state: ArxivState, servers: tuple[LLMState, Mailbox, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`feedback add/import --reader`, `list --format jsonl`, `stats`, the weekly without the reader's 👎 paper, and
    `feedback reset`."""
    _llm, box, _out = servers
    monkeypatch.setenv("DIGEST_EMAIL_TO", "dee@example.org:weekly,eve@example.org:weekly")
    arxiv_state.day = dt.date.fromisoformat(DAY1)
    code, out, err = run_cli("run", "--date", DAY1)
    assert code == 0, out + err
    code, out, err = run_cli("weekly", "--week", "2025-W45", "--no-email")
    assert code == 0, out + err
    page = BeautifulSoup((Path(load_settings().output_dir) / "weekly/2025-W45.html").read_text("utf-8"), "html.parser")
    ids = [a["data-arxiv-id"] for a in page.select("article[data-arxiv-id]")]
    assert len(ids) >= 3
    assert run_cli("feedback", "add", ids[0], "--vote", "down", "--reader", "dee@example.org")[0] == 0
    assert run_cli("feedback", "add", ids[1], "--vote", "down", "--reader", "not an address")[0] == 2
    votes = tmp_path / "votes.jsonl"
    votes.write_text(f'{{"id": "{ids[1]}", "vote": "up"}}\n{{"id": "{ids[2]}", "vote": "down"}}\n', encoding="utf-8")
    assert run_cli("feedback", "import", str(votes), "--reader", "dee@example.org")[0] == 0
    assert run_cli("feedback", "add", ids[2], "--vote", "up")[0] == 0  # the operator's
    code, out, _ = run_cli("feedback", "list", "--format", "jsonl")
    readers = [line.split('"reader": ')[1].split(",")[0] for line in out.splitlines()]
    assert readers == ['"dee@example.org"'] * 3 + ["null"], out
    code, out, _ = run_cli("feedback", "stats", "--format", "jsonl")
    assert code == 0 and '"reader": "dee@example.org"' in out and '"votes": 3' in out, out
    code, out, err = run_cli("weekly", "--week", "2025-W45")
    assert code == 0, out + err

    def week_ids(address: str) -> list[str]:  # no vote links without a secret: the entries' arXiv links
        return [a["href"].rsplit("/", 1)[-1] for a in mail_to(box, address).select("div.entry p.title a")]

    assert ids[0] not in week_ids("dee@example.org") and ids[2] not in week_ids("dee@example.org")
    assert ids[0] in week_ids("eve@example.org") and ids[2] in week_ids("eve@example.org")
    code, out, _ = run_cli("feedback", "reset", "--reader", "dee@example.org")
    assert code == 0 and "3 votes" in out and "--yes" in out
    assert run_cli("feedback", "reset", "--reader", "dee@example.org", "--yes")[0] == 0
    code, out, _ = run_cli("feedback", "list", "--format", "jsonl")
    assert "dee@example.org" not in out and out.count("\n") == 1

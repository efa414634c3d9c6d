"""The text a reader sees (issue: text-mode LaTeX): real replayed days whose abstracts carry ``\\textbf``,
``\\emph``, ``\\href``, ``\\url``, ``\\cite`` and ``~`` show none of them in the page (as a browser shows its
text), the Markdown, the feeds or either email part; every ``\\href``/``\\url`` target is a link on the page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.replay import ArxivState, LLMState, serve_llm
from digest.replay.smtp import serve_smtp
from tests.conftest import run_cli

#: a text command, a ~ gluing two words, an accent command (``Fr\\'echet``)
RAW = re.compile(r"\\(textbf|textit|emph|href|url|cite[a-z]*|textcolor)\b|[A-Za-z]~[A-Za-z0-9]|\\['`^\"~=.]\{?[A-Za-z]")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)


def visible(text: str) -> str:
    return MATH.sub(" ", text)


def check_json_feed(feed: dict[str, object]) -> None:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1): what a reader of the format may rely on."""
    assert feed["version"] == "https://jsonfeed.org/version/1.1" and isinstance(feed["title"], str)
    items = feed["items"]
    assert isinstance(items, list) and items
    for it in items:
        assert isinstance(it["id"], str) and it["id"]
        assert isinstance(it.get("content_text") or it.get("content_html"), str)
        assert str(it["url"]).startswith("https://arxiv.org/abs/")
        dt.datetime.fromisoformat(it["date_published"])  # RFC 3339
        assert all(isinstance(a["name"], str) for a in it["authors"]) and all(isinstance(t, str) for t in it["tags"])
        ext = it["_arxiv_digest"]  # extensions start with an underscore
        for k in ("title_zh", "tldr_en", "tldr_zh", "topic", "score", "links", "venue"):
            assert k in ext
        assert re.search(r"[\u4e00-\u9fff]", ext["title_zh"] + ext["tldr_zh"])  # the Chinese fields


#: 2026-01-26: \\emph, \\href, \\cite; 2025-03-25: accents, \\url in comments (the venue line), \\href inside $…$;
#: 2026-05-12: math nested in a \\textbf argument ($\\textbf{$\\textit{80$\\times$ lower}$}$)
@pytest.mark.parametrize("day", ["2026-01-26", "2025-03-25", "2026-05-12"])
def test_no_raw_text_mode_latex_reaches_a_reader(
    day: str, arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = dt.date.fromisoformat(day)
    arxiv_state.day = d
    papers = arxiv_state.day_papers(d)
    targets = {m.group(2) for p in papers for m in re.finditer(r"\\(href|url)\{([^}]+)\}", p["abstract"])}
    assert any(RAW.search(visible(p["abstract"])) for p in papers) and targets  # the day is a real test of it
    with serve_llm(LLMState()) as url, serve_smtp() as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_EMAIL_TO": "r@example.org", "DIGEST_RELEVANCE_THRESHOLD": "0",
                     "DIGEST_EMAIL_MAX_KB": "2000"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", day)
    assert code in (0, 3), out + err
    root = Path(env["DIGEST_OUTPUT_DIR"])
    page = BeautifulSoup((root / f"{d:%Y}/{d:%m}/{day}.html").read_text(encoding="utf-8"), "html.parser")
    for m in page.select("math, .math, pre, details.bibtex"):
        m.decompose()  # formulas keep their TeX source in a title attribute, BibTeX is TeX on purpose
    shown = {
        "page": page.get_text(" "),
        "markdown": (root / f"{d:%Y}/{d:%m}/{day}.md").read_text(encoding="utf-8"),
        "rss": BeautifulSoup((root / "feed.xml").read_text(encoding="utf-8"), "xml").get_text(" "),
        "email.txt": box.messages[0].get_body(("plain",)).get_content(),
        "email.html": BeautifulSoup(box.messages[0].get_body(("html",)).get_content(), "html.parser").get_text(" "),
    }
    for name, text in shown.items():
        left = RAW.search(visible(text))
        assert left is None, (name, visible(text)[max(0, left.start() - 80) : left.end() + 40])
    import json

    for name in ("feed.json", "feeds/clip.json", "feeds/editing.json"):
        check_json_feed(json.loads((root / name).read_text(encoding="utf-8")))
    shown["json"] = (root / "feed.json").read_text(encoding="utf-8")
    def strings(x: object) -> list[str]:
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)]
        return [s for v in x for s in strings(v)] if isinstance(x, list) else [x] if isinstance(x, str) else []

    left = RAW.search(visible(" | ".join(strings(json.loads(shown["json"])["items"]))))
    assert left is None, left
    hrefs = {a["href"] for a in BeautifulSoup((root / f"{d:%Y}/{d:%m}/{day}.html").read_text(encoding="utf-8"),
                                              "html.parser").select("a[href]")}  # fmt: skip
    assert {t.strip() for t in targets if t.strip().startswith("http")} <= hrefs


def test_the_email_of_a_50_paper_day_arrives_whole(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import email
    import email.policy

    day = "2026-06-02"  # a real 313-paper day: ~50 relevant papers
    arxiv_state.day = dt.date.fromisoformat(day)
    with serve_llm(LLMState()) as url, serve_smtp() as (box, port):
        for k, v in {"DIGEST_LLM_BASE_URL": url, "DIGEST_SMTP_HOST": "127.0.0.1", "DIGEST_SMTP_PORT": str(port),
                     "DIGEST_EMAIL_TO": "r@example.org"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        code, out, err = run_cli("run", "--date", day)
    m = re.search(r"relevant (\d+)", out)
    assert code in (0, 3) and m is not None and int(m.group(1)) >= 40, out + err
    raw = box.raw[0]
    sent = email.message_from_bytes(raw, policy=email.policy.SMTP)
    html = next(p for p in sent.walk() if p.get_content_type() == "text/html")
    assert html["Content-Transfer-Encoding"] == "base64"  # never quoted-printable for CJK
    as_sent = sum(len(line) + 2 for line in html.get_payload().splitlines())  # base64 lines + CRLF, as sent
    assert as_sent < 102_000, as_sent  # Gmail clips past ~102 KB: the footer (unsubscribe) must arrive
    text = html.get_content()
    assert "You receive the daily arXiv digest" in text

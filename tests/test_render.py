"""Render and deliver: the reference Markdown structure, HTML escaping, feeds, email over a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import feedparser
import pytest
from bs4 import BeautifulSoup
from lxml import etree
from markdown_it import MarkdownIt

from digest.config import Settings
from digest.deliver import deliver_day
from digest.models import Paper, Relevance, Summary, SummaryStatus
from digest.render import render_day
from digest.render.build import build_digest
from digest.store import Store
from tests.conftest import REAL_DAY, run_cli
from tests.llm_server import translate
from tests.shared import corpus_by_day, shared_path
from tests.smtp_server import free_port, serve_smtp

DAY = dt.date.fromisoformat(REAL_DAY)
HOSTILE = [
    "Pipes | in | titles: A|B testing for CLIP",
    "<script>alert('x')</script> Editing & <b>bold</b> images",
    r"Bounds on $\|x\|_2$ and $a|b$ for contrastive [learning](http://evil) *stars* `code`",
    "🚀 Emoji titles 🎨 for image editing ✨",
    "A very long title " + "that keeps going " * 30,
]


def populate(store: Store, n: int = 12, hostile: bool = True, failed: int = 1) -> list[Paper]:
    """n real papers of the real day, all relevant, with deterministic summaries; ``failed`` of them failed."""
    raw = corpus_by_day()[REAL_DAY][:n]
    papers = []
    for i, p in enumerate(raw):
        title = HOSTILE[i] if hostile and i < len(HOSTILE) else p["title"]
        papers.append(Paper(id=p["id"], version=1, title=title, abstract=p["abstract"], announce_type="new"))
    store.upsert_papers(papers, source="rss", announced=DAY)
    store.record_day(DAY, "announced", "rss", len(papers))
    store.save_relevance(
        Relevance(id=p.id, version=1, score=round(0.9 - i * 0.03, 3), relevant=True,
                  topics={"clip": round(0.9 - i * 0.03, 3), "editing": 0.2})
        for i, p in enumerate(reversed(papers))  # scores increase along the feed order: rendering must sort
    )
    for i, p in enumerate(papers):
        if i < failed:
            store.save_summary(Summary(id=p.id, version=1, tldr_en="First sentence.", status=SummaryStatus.failed,
                                       backend="extractive", reason="LLM answer rejected: wrong language"))
            continue
        f = translate(p.title, p.abstract, set())
        store.save_summary(Summary(id=p.id, version=1, status=SummaryStatus.ok, backend="llm:gpt-4o-mini",
                                   model="gpt-4o-mini", prompt_hash="h", **f))
    return papers


def entries_of(md: str) -> tuple[list[str], dict[int, list[str]]]:
    """(table rows, footnote number → its lines) of a digest in the reference format."""
    head, _, body = md.partition("\n# 详细\n")
    rows = [line for line in head.splitlines() if line.startswith("| [^")]
    notes: dict[int, list[str]] = {}
    cur: list[str] | None = None
    for line in body.splitlines():
        m = re.match(r"\[\^(\d+)\]: ", line)
        if m:
            cur = notes.setdefault(int(m.group(1)), [])
        if cur is not None:
            cur.append(line)
    for lines in notes.values():
        while lines and lines[-1] == "":
            lines.pop()
    return rows, notes


def paragraphs(lines: list[str]) -> list[str]:
    """The 4-space-indented paragraphs of one footnote (blank-only lines separate them)."""
    return [line[4:] for line in lines[1:] if line.startswith("    ") and line.strip()]


def shape(lines: list[str]) -> list[str]:
    """title / blank ("") / para (4-space indented, possibly only the indent, like the reference's empty TL;DR)."""
    return ["title" if re.match(r"\[\^\d+\]: \S", ln) else "para" if ln.startswith("    ") else "blank" for ln in lines]


@pytest.fixture
def rendered(settings: Settings, store: Store) -> Iterator[tuple[Settings, Store, list[Paper]]]:
    papers = populate(store)
    render_day(DAY, settings, store)
    yield settings, store, papers


def test_markdown_matches_reference_structure(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, papers = rendered
    md = (settings.output_dir / "2026/06/2026-06-02.md").read_text(encoding="utf-8")
    ref = shared_path("reference", "digest-format.md").read_text(encoding="utf-8")
    assert md.splitlines()[2:6] == ["# 摘要", "", "| Ref | Title | Summary |", "| --- | --- | --- |"]
    rows, notes = entries_of(md)
    _ref_rows, ref_notes = entries_of(ref)
    assert len(rows) == len(notes) == len(papers)
    assert list(notes) == list(range(1, len(papers) + 1))
    ref_shape = shape(ref_notes[1])  # title, blank, 6 paragraphs separated by blanks, the closing "    " line
    for _n, lines in notes.items():
        # line for line as the reference, plus one meta paragraph (topics, score, backend) before the close
        assert shape(lines)[: len(ref_shape) - 1] == ref_shape[:-1]
        assert lines[-1] == "    " and shape(lines)[-3:] == ["blank", "para", "para"]
        assert len(lines) == len(ref_notes[1]) + 2
    d = build_digest(DAY, store)
    assert [e.relevance.score for e in d.entries if e.relevance] == sorted(
        [e.relevance.score for e in d.entries if e.relevance], reverse=True)
    for e in d.entries:
        p, s = e.paper, e.summary
        assert s is not None
        row = rows[e.n - 1]
        assert row.startswith(f"| [^{e.n}] | [") and f"](https://arxiv.org/abs/{p.id}) | " in row
        paras = paragraphs(notes[e.n])
        assert paras[1] == f"[https://arxiv.org/abs/{p.id}](https://arxiv.org/abs/{p.id})"
        assert paras[5].replace("&lt;", "<") == " ".join(p.abstract.split())
        if s.status == SummaryStatus.ok:
            assert notes[e.n][0] == f"[^{e.n}]: {s.title_zh.replace('<', '&lt;')}"
            assert paras[2] == s.tldr_zh and paras[3] == s.tldr_en and paras[4] == s.abstract_zh
            assert row.endswith(f" | {s.tldr_zh} |")
        else:  # failed: still listed, English abstract present, a visible note in place of the Chinese text
            assert "⚠" in paras[2] and "wrong language" in paras[2] and "⚠" in row
            assert paras[3] == "First sentence."


def test_hostile_titles_do_not_break_table_or_html(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, _store, papers = rendered
    md = (settings.output_dir / "2026/06/2026-06-02.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    cells_per_row: list[int] = []
    for t in tokens:
        if t.type == "tr_open":
            cells_per_row.append(0)
        elif t.type in ("td_open", "th_open"):
            cells_per_row[-1] += 1
    assert cells_per_row == [3] * (len(papers) + 1)
    html_md = MarkdownIt("commonmark").enable("table").render(md)
    assert "<script>" not in html_md and "<b>bold</b>" not in html_md
    page = (settings.output_dir / "2026/06/2026-06-02.html").read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    assert soup.find("script") is None and soup.find("b") is None
    h3 = [h.get_text() for h in soup.select("article h3")]
    for title in HOSTILE:
        assert " ".join(title.split()) in h3
    assert soup.find("meta", attrs={"name": "viewport"}) is not None
    for a in soup.select("article .links a"):
        assert re.fullmatch(r"https://arxiv\.org/(abs|pdf)/\d{4}\.\d{4,5}", a["href"])
    assert "⚠" in soup.get_text()  # the failed paper's note is visible


def test_index_and_feeds(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, _store, papers = rendered
    out = settings.output_dir
    index = BeautifulSoup((out / "index.html").read_text(encoding="utf-8"), "html.parser")
    links = [(a["href"], a.get_text()) for a in index.select("tbody a")]
    assert links == [("2026/06/2026-06-02.html", "2026-06-02")]
    assert str(len(papers)) in index.select("tbody tr")[0].get_text()
    for name in ("feed.xml", "atom.xml"):
        raw = (out / name).read_bytes()
        etree.fromstring(raw)  # well-formed XML
        f = feedparser.parse(raw)
        assert f.bozo == 0, f.get("bozo_exception")
        assert len(f.entries) == len(papers)
        assert {e.id for e in f.entries} == {p.id for p in papers}  # GUID = arXiv id, stable across versions
        for e in f.entries:
            assert e.link.startswith("https://arxiv.org/abs/")
            assert e.published_parsed[:3] == (2026, 6, 2)
        assert any("本文" in (e.get("summary") or "") for e in f.entries)


def test_rerender_is_byte_identical_and_atomic(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, _ = rendered
    out = settings.output_dir
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = render_day(DAY, settings, store)
    assert res.written == []
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    code, stdout, _ = run_cli("render", "--date", REAL_DAY)
    assert code == 0 and "already up to date" in stdout


@pytest.mark.parametrize("mode", ["skip", "note"])
def test_empty_day_never_overwrites(mode: str, settings: Settings, store: Store) -> None:
    s = settings.model_copy(update={"empty_day": mode})
    day = dt.date(2026, 6, 3)
    p = Paper(id="2606.99999", version=1, title="Unrelated", abstract="Nothing relevant here at all.")
    store.upsert_papers([p], source="rss", announced=day)
    store.save_relevance([Relevance(id=p.id, version=1, score=0.01, relevant=False, topics={"clip": 0.01})])
    res = render_day(day, s, store)
    md = s.output_dir / "2026/06/2026-06-03.md"
    assert res.empty_day == mode and md.exists() == (mode == "note")
    if mode == "note":
        assert "No relevant papers today" in md.read_text(encoding="utf-8")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("an earlier digest\n", encoding="utf-8")
    res = render_day(day, s, store)
    assert res.empty_day == "kept-existing" and md.read_text(encoding="utf-8") == "an earlier digest\n"


def smtp_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": port, "email_to": ["a@example.org", "张三 <b@example.org>"],
        "email_from": "digest@example.org", "email_backoff_seconds": 0.01, "smtp_timeout": 5.0,
    })


def test_email_to_each_subscriber_once(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, papers = rendered
    with serve_smtp() as (box, port):
        s = smtp_settings(settings, port)
        assert s.smtp_tls_mode == "none"
        d = build_digest(DAY, store)
        res = deliver_day(d, s, store)
        assert sorted(res.sent) == sorted(s.email_to) and not res.failed
        assert len(box.messages) == 2
        msg = box.messages[0]
        assert msg["Subject"] == f"arXiv cs.CV 摘要 2026-06-02: {len(papers)} 篇相关论文"
        assert msg.get_content_type() == "multipart/alternative"
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert plain is not None and html is not None
        text, page = plain.get_content(), html.get_content()
        assert "# 摘要" in text and "# 详细" in text
        soup = BeautifulSoup(page, "html.parser")
        hrefs = {a["href"] for a in soup.find_all("a")}
        assert all(f"https://arxiv.org/abs/{p.id}" in hrefs for p in papers)
        assert sorted(r for _f, rs in box.envelopes for r in rs) == ["a@example.org", "b@example.org"]
        again = deliver_day(d, s, store)
        assert again.sent == [] and len(again.already) == 2 and len(box.messages) == 2
        forced = deliver_day(d, s, store, resend=True)
        assert len(forced.sent) == 2 and len(box.messages) == 4


def test_smtp_refused_is_recorded_and_files_intact(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, _ = rendered
    out = settings.output_dir
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    s = smtp_settings(settings, free_port())  # nothing listens there
    res = deliver_day(build_digest(DAY, store), s, store)
    assert res.sent == [] and set(res.failed) == set(s.email_to)
    assert "ConnectionRefusedError" in next(iter(res.failed.values()))
    assert store.delivered(DAY) == set()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with serve_smtp() as (box, port):  # the server is back: the next run delivers
        res = deliver_day(build_digest(DAY, store), smtp_settings(settings, port), store)
        assert len(res.sent) == 2 and len(box.messages) == 2


def test_no_smtp_host_skips_email(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, _ = rendered
    res = deliver_day(build_digest(DAY, store), settings, store)
    assert res.status == "skipped: no DIGEST_SMTP_HOST"


def test_tls_mode_defaults_by_port(settings: Settings) -> None:
    assert [settings.model_copy(update={"smtp_port": p}).smtp_tls_mode for p in (465, 587, 25, 2525)] == [
        "ssl", "starttls", "none", "none"]
    assert settings.model_copy(update={"smtp_port": 465, "smtp_tls": "none"}).smtp_tls_mode == "none"




def test_render_cli_emails_once_and_is_idempotent(
    rendered: tuple[Settings, Store, list[Paper]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _store, _ = rendered
    out = settings.output_dir
    with serve_smtp() as (box, port):
        monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("DIGEST_SMTP_PORT", str(port))
        monkeypatch.setenv("DIGEST_EMAIL_TO", "x@example.org,y@example.org")
        code, stdout, _ = run_cli("render", "--date", REAL_DAY)
        assert code == 0 and "email: sent 2" in stdout and len(box.messages) == 2
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        code, stdout, _ = run_cli("render", "--date", REAL_DAY)
        assert code == 0 and "already sent 2" in stdout and len(box.messages) == 2
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        code, _, msg = run_cli("render", "--date", "2026-06-09")
        assert code == 1 and "no papers announced on 2026-06-09" in msg


def test_feed_covers_only_the_last_feed_days(settings: Settings, store: Store) -> None:
    papers = populate(store, n=3, hostile=False, failed=0)
    old_day = DAY - dt.timedelta(days=20)
    old = Paper(id="2605.00001", version=1, title="An old CLIP paper", abstract="CLIP, twenty days earlier.")
    store.upsert_papers([old], source="rss", announced=old_day)
    store.save_relevance([Relevance(id=old.id, version=1, score=0.9, relevant=True, topics={"clip": 0.9})])
    s = settings.model_copy(update={"feed_days": 14})
    render_day(old_day, s, store)
    render_day(DAY, s, store)
    ids = {e.id for e in feedparser.parse((s.output_dir / "feed.xml").read_bytes()).entries}
    assert ids == {p.id for p in papers}
    index = (s.output_dir / "index.html").read_text(encoding="utf-8")
    assert index.index("2026-06-02") < index.index(old_day.isoformat())  # newest first, both listed

"""The day page: grouped by topic, badges, links, venue, BibTeX, rendered math; hostile text inert."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from bs4 import BeautifulSoup

from digest.config import Settings
from digest.models import DaySource, DayState, EmptyDayMode, EmptyDayOutcome, Paper, Relevance
from digest.render.math import to_html
from digest.store import Store
from tests.conftest import run_cli
from tests.unit.render.conftest import DAY, HOSTILE, NAMES
from tests.unit.render.stored import render_day


def page(settings: Settings) -> BeautifulSoup:
    return BeautifulSoup((settings.output_dir / "2026/06/2026-06-02.html").read_text(encoding="utf-8"), "html.parser")


def test_grouped_by_topic_once_each_with_badges_and_links(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, _store, papers = rendered
    soup = page(settings)
    sections = soup.select("section.topic")
    assert [s["data-topic"] for s in sections] == ["clip", "editing"]
    ids = [a["data-arxiv-id"] for a in soup.select("article")]
    assert sorted(ids) == sorted(p.id for p in papers)  # each paper once
    both = [a for a in soup.select("article") if len(a.select(".badge.topic")) == 2]
    assert both, "a paper relevant to both topics shows both badges"
    for art in soup.select("article"):
        hrefs = [a["href"] for a in art.select(".links a")]
        pid = art["data-arxiv-id"]
        assert hrefs[:3] == [
            f"https://arxiv.org/abs/{pid}",
            f"https://arxiv.org/pdf/{pid}",
            f"https://arxiv.org/html/{pid}",
        ]
        assert (
            art.select_one("pre.bibtex") is not None
            and f"eprint = {{{pid}}}" in art.select_one("pre.bibtex").get_text()
        )
    venue = [a for a in soup.select("article") if a.select_one(".venue")]
    assert venue and "CVPR 2026" in venue[0].select_one(".venue").get_text()
    assert venue[0].select_one("a.code")["href"] == "https://github.com/acme/tool"
    assert soup.select_one("nav.toc") is not None and soup.find("meta", attrs={"name": "viewport"})
    assert "prefers-color-scheme: dark" in soup.select_one("style").get_text()


def test_hostile_text_is_inert(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, _store, _ = rendered
    soup = page(settings)
    assert soup.find("script") is None and soup.find("b") is None and soup.find("img") is None
    for tag in soup.find_all(True):
        assert not any(k.startswith("on") for k in tag.attrs), tag.name
        assert not str(tag.get("href", "")).startswith("javascript:")
    titles = [h.get_text() for h in soup.select("article h4")]
    assert any("<script>alert('x')</script>" in t for t in titles)
    assert "\u202e" not in soup.get_text() and "⚠" in soup.get_text()
    assert any(HOSTILE[3] in t for t in titles)


def test_math_renders_as_mathml_and_a_bad_macro_keeps_its_source() -> None:
    html = str(
        to_html(r"We get $\mathcal{O}(n^2)$ and $\undefinedmacro{x}$ and $\href{javascript:alert(1)}{y}$ for \$5.")
    )
    soup = BeautifulSoup(html, "html.parser")
    maths = soup.find_all("math")
    assert len(maths) == 2 and "𝒪" in maths[0].get_text()
    assert r"$\undefinedmacro{x}$" in soup.get_text()
    assert "javascript" not in str(maths[1]) and "href" not in str(maths[1])


def test_index_and_feeds_per_topic(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    import feedparser
    from lxml import etree

    settings, _store, papers = rendered
    out = settings.output_dir
    index = BeautifulSoup((out / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert [(a["href"], a.get_text()) for a in index.select("tbody a")] == [("2026/06/2026-06-02.html", "2026-06-02")]
    for name in ("feed.xml", "atom.xml", "feeds/clip.xml", "feeds/editing.xml"):
        raw = (out / name).read_bytes()
        etree.fromstring(raw)
        f = feedparser.parse(raw)
        assert f.bozo == 0, f.get("bozo_exception")
        if name in ("feed.xml", "atom.xml"):
            assert {e.id for e in f.entries} == {p.id for p in papers}
        assert all(e.published_parsed[:3] == (2026, 6, 2) for e in f.entries)
    descs = [d.text or "" for d in etree.fromstring((out / "feed.xml").read_bytes()).iter("description")][1:]
    # RSS readers render <description> as HTML: untrusted text must be HTML-escaped inside it
    assert descs and not any("<script>" in d or "<img" in d for d in descs)
    assert any("&lt;script&gt;" in d for d in descs)
    for e in feedparser.parse(out / "feed.xml").entries:
        soup = BeautifulSoup(e.summary, "html.parser")  # what a feed reader renders
        assert soup.find("script") is None and soup.find("img") is None
        assert all(a["href"].startswith("https://") for a in soup.find_all("a"))


def test_rerender_is_byte_identical_and_atomic(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    settings, store, _ = rendered
    out = settings.output_dir
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = render_day(DAY, settings, store, NAMES)
    assert res.written == []
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", [EmptyDayMode.skip, EmptyDayMode.note])
def test_empty_day_never_overwrites(mode: EmptyDayMode, settings: Settings, store: Store) -> None:
    s = settings.model_copy(update={"empty_day": mode})
    day = dt.date(2026, 6, 3)
    p = Paper(id="2606.99999", version=1, title="Unrelated", abstract="Nothing relevant here at all.")
    store.upsert_papers([p], DaySource.rss, day)
    store.record_day(day, DayState.announced, DaySource.rss, 1)
    store.save_relevance([Relevance(id=p.id, version=1, score=0.01, relevant=False, topics={"clip": 0.01})])
    res = render_day(day, s, store, NAMES)
    md = s.output_dir / "2026/06/2026-06-03.md"
    expected = EmptyDayOutcome.note if mode == EmptyDayMode.note else EmptyDayOutcome.skipped
    assert res.empty_day == expected and md.exists() == (mode == EmptyDayMode.note)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("an earlier digest\n", encoding="utf-8")
    res = render_day(day, s, store, NAMES)
    assert res.empty_day == EmptyDayOutcome.kept_existing and md.read_text(encoding="utf-8") == "an earlier digest\n"


def test_render_cli_refuses_an_unknown_day(rendered: tuple[Settings, Store, list[Paper]]) -> None:
    code, _, msg = run_cli("render", "--date", "2026-06-09", "--no-email")
    assert code == 1 and "no papers announced on 2026-06-09" in msg
    _ = re


def test_unclosed_math_delimiters_cost_a_bounded_look_ahead() -> None:
    """12,000 unclosed ``\\(`` rendered quadratically (31 s); each span's look-ahead is now bounded, so the text
    comes back whole and a span longer than the bound is left as text."""
    from digest.llm.mask import SPAN
    from digest.render.math import MATH_SPAN, MAX_SPAN, to_html

    text = "\\(x " * 12_000
    assert str(to_html(text)).count("\\(") == 12_000 and not SPAN.search(text)
    assert MATH_SPAN.search("\\(" + "y" * (MAX_SPAN + 10) + "\\)") is None
    assert MATH_SPAN.search("a $x^2$ b") is not None

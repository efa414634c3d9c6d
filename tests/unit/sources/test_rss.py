"""The RSS source on real recorded feeds; what is not a feed is never "no announcement"."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from digest.errors import FeedParseError
from digest.replay.arxiv import MAINTENANCE, rss_feed
from digest.sources import rss
from tests.shared import shared_path

RSS_FILES = sorted(p.name for p in shared_path("feeds", "rss").glob("*.xml") if "atom" not in p.name)
NS = {"dc": "http://purl.org/dc/elements/1.1/", "arxiv": "http://arxiv.org/schemas/atom"}


@pytest.mark.parametrize("name", RSS_FILES)
def test_recorded_rss_parse_fidelity(name: str) -> None:
    raw = shared_path("feeds", "rss", name).read_bytes()
    ann = rss.parse_feed(raw, include_replacements=True)
    items = ET.fromstring(raw).findall("./channel/item")
    assert len(ann.papers) == len(items) > 0
    for item, p in zip(items, ann.papers, strict=True):
        guid = item.findtext("guid") or ""
        assert f"{p.id}v{p.version}" == guid.rsplit(":", 1)[1]
        assert p.announce_type == item.findtext("arxiv:announce_type", namespaces=NS)
        assert p.authors == [a.strip() for a in (item.findtext("dc:creator", namespaces=NS) or "").split(",")]
        assert p.categories == [c.text for c in item.findall("category")]
        desc = item.findtext("description") or ""
        assert "Announce Type" not in p.abstract and not p.abstract.startswith("Abstract")
        assert p.abstract == " ".join(desc.split("Abstract:", 1)[1].split())
    pub = ET.fromstring(raw).findtext("./channel/pubDate") or ""
    assert ann.date is not None and ann.date.strftime("%d %b %Y") in pub


def test_replacements_excluded_by_default() -> None:
    raw = shared_path("feeds", "rss", "msudars__laya-reader__arxiv_rss.xml").read_bytes()
    ann = rss.parse_feed(raw)
    assert {p.announce_type for p in ann.papers} <= {"new", "cross"}
    assert ann.skipped == 1


@pytest.mark.parametrize(
    ("body", "ctype", "why"),
    [
        (MAINTENANCE, "text/html; charset=utf-8", "text/html"),
        (MAINTENANCE, "application/xml", "HTML page"),
        (b"<?xml version='1.0'?><foo><bar/></foo>", "application/xml", "no RSS channel"),
        (b"<rss><channel><title>x</title><item><title>a", "application/rss+xml", "not a valid RSS feed"),
    ],
)
def test_what_is_not_a_feed_is_a_failed_fetch(body: bytes, ctype: str, why: str) -> None:
    with pytest.raises(FeedParseError, match=why):
        rss.parse_feed(body, "http://x/rss/cs.CV", content_type=ctype)


def test_entities_decoded_once_and_unsafe_characters_stripped() -> None:
    import datetime as dt

    p = {"id": "2606.00001", "title": "H&E staining \u202eevil", "abstract": "Tissue H&E & more \u2066.",
         "authors": ["A & B"], "date": "2026-06-02"}  # fmt: skip
    ann = rss.parse_feed(rss_feed(dt.date(2026, 6, 2), ["cs.CV"], [p]).encode())
    [paper] = ann.papers
    assert paper.title == "H&E staining evil" and paper.abstract == "Tissue H&E & more ."
    assert paper.authors == ["A & B"]


@pytest.mark.parametrize("name", RSS_FILES)
def test_one_invalid_byte_spoils_only_its_own_item(name: str) -> None:
    raw = shared_path("feeds", "rss", name).read_bytes()
    clean = rss.parse_feed(raw, include_replacements=True)
    i = raw.index(b"<title>", raw.index(b"<item>")) + len(b"<title>")  # the first item's title
    poisoned = rss.parse_feed(raw[:i] + b"\xff\xfe" + raw[i:], include_replacements=True)
    assert len(poisoned.papers) == len(clean.papers)
    assert "\ufffd" in poisoned.papers[0].title or poisoned.papers[0].title.startswith(clean.papers[0].title[:1])
    for a, b in zip(clean.papers[1:], poisoned.papers[1:], strict=True):
        assert (a.title, a.authors, a.abstract) == (b.title, b.authors, b.abstract)  # never re-decoded as cp1252

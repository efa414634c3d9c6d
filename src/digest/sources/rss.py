"""The daily announcement: arXiv's RSS 2.0 feed, fetched by :class:`~digest.sources.http.ArxivClient` and
parsed with feedparser.

A response that is not a feed — an HTML maintenance page served with status 200, another content type,
XML without a channel — is a :class:`~digest.errors.FeedParseError`, never "no announcement". Text is
HTML-entity-decoded once (the feed carries ``&amp;`` inside plain text) and cleaned of unsafe characters.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

from digest.config import Settings
from digest.errors import FeedParseError
from digest.models import Announcement, Paper
from digest.sources.http import ArxivClient, Page
from digest.text import clean_abstract, decode_entities, split_id

_ANNOUNCE_TYPES = {"new", "cross", "replace", "replace-cross"}
_FEED_TYPES = ("xml", "rss", "atom")


def feed_url(settings: Settings) -> str:
    return settings.arxiv_rss_url + "+".join(settings.categories)


def _announced(feed: Any) -> dt.date | None:
    raw = feed.feed.get("published") or feed.feed.get("updated")
    if raw:
        try:
            return parsedate_to_datetime(raw).date()  # the feed's own (US Eastern) date
        except (TypeError, ValueError):
            pass
    parsed = feed.feed.get("published_parsed") or feed.feed.get("updated_parsed")
    if parsed:
        return dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC).date()
    return None


def _entry_to_paper(entry: Any, announced: dt.date | None) -> Paper:
    guid = entry.get("id") or entry.get("guid") or ""
    desc = decode_entities(entry.get("summary", "") or entry.get("description", ""))
    arxiv_id, version = split_id(guid) if guid else (None, None)
    if arxiv_id is None:
        arxiv_id, version = split_id(entry.get("link", ""))
    if version is None and desc.startswith("arXiv:"):
        _, version = split_id(desc.split()[0])
    announce_type = (entry.get("arxiv_announce_type") or "").strip() or None
    if announce_type is None and "Announce Type:" in desc:
        announce_type = desc.split("Announce Type:", 1)[1].split()[0].strip()
    if announce_type not in _ANNOUNCE_TYPES:
        announce_type = None
    creators = decode_entities(entry.get("author") or "")
    authors = [a.strip() for a in creators.split(",") if a.strip()] if creators else []
    categories = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    published = None
    if entry.get("published_parsed"):
        published = dt.datetime.fromtimestamp(calendar.timegm(entry.published_parsed), dt.UTC)
    return Paper(
        id=arxiv_id,
        version=version or 1,
        title=decode_entities(entry.get("title", "")),
        abstract=clean_abstract(desc),
        authors=authors,
        categories=categories,
        primary_category=categories[0] if categories else None,
        announce_type=announce_type,
        announced=announced,
        published=published,
    )


def parse_feed(
    content: bytes, url: str = "", include_replacements: bool = False, content_type: str = ""
) -> Announcement:
    """Parse RSS bytes into an :class:`Announcement`; :class:`FeedParseError` when it is not an arXiv feed."""
    where = url or "(bytes)"
    ctype = content_type.lower()
    if ctype and not any(t in ctype for t in _FEED_TYPES):
        raise FeedParseError(
            f"{where} answered {content_type.split(';')[0]}, not an RSS feed (arXiv maintenance?)", url
        )
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise FeedParseError(f"{where} answered an HTML page, not an RSS feed (arXiv maintenance?)", url)
    # decoded here, item by item in effect: one invalid byte becomes U+FFFD in its own item instead of making
    # feedparser re-decode the whole feed in a legacy codepage (every name of the day garbled)
    declared = re.search(rb"<\?xml[^>]*encoding=[\"']([\w.-]+)", content[:200])
    if declared is None or declared.group(1).lower() in (b"utf-8", b"utf8"):
        text = content.decode("utf-8", errors="replace")
        feed = feedparser.parse(re.sub(r"^\s*<\?xml[^>]*\?>", '<?xml version="1.0"?>', text, count=1))
    else:
        feed = feedparser.parse(content)
    exc = feed.get("bozo_exception")
    if (
        feed.get("bozo")
        and isinstance(exc, Exception)
        and ("not well-formed" in str(exc) or exc.__class__.__name__ == "SAXParseException" or not feed.entries)
    ):
        # malformed XML is fatal: half a feed would silently drop papers
        raise FeedParseError(f"{where} is not a valid RSS feed ({str(exc).splitlines()[0][:120]})", url)
    if (
        feed.get("version", "") not in ("rss20", "rss10", "rss091u", "rss092", "rss093", "rss094", "rss")
        or not feed.feed
    ):
        raise FeedParseError(f"{where} has no RSS channel (got {feed.get('version') or 'no feed'})", url)
    announced = _announced(feed)
    papers: list[Paper] = []
    skipped = 0
    seen: set[str] = set()
    for entry in feed.entries:
        try:
            paper = _entry_to_paper(entry, announced)
        except ValueError as e:
            raise FeedParseError(f"an item of {where} has no arXiv id ({e})", url) from None
        if paper.announce_type in {"replace", "replace-cross"} and not include_replacements:
            skipped += 1
            continue
        if paper.id in seen:
            continue
        seen.add(paper.id)
        papers.append(paper)
    return Announcement(date=announced, papers=papers, skipped=skipped, source_url=url)


def fetch_announcement(settings: Settings, client: ArxivClient) -> Announcement:
    """Today's announcement of the configured categories (an empty channel on weekends and holidays)."""
    page: Page = client.get(feed_url(settings), "arXiv feed")
    return parse_feed(page.content, page.url, settings.include_replacements, page.content_type)

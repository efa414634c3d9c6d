"""The daily announcement: arXiv's RSS 2.0 feed, fetched with httpx and parsed with feedparser.

``feedparser.parse(url)`` has no timeout, so the bytes are fetched here (with timeouts and a bounded
backoff) and handed to feedparser.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
import httpx

from digest.config import Settings
from digest.errors import FeedParseError, FetchError
from digest.models import Announcement, Paper
from digest.text import clean_abstract, split_id

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
_ANNOUNCE_TYPES = {"new", "cross", "replace", "replace-cross"}


def feed_url(settings: Settings) -> str:
    return settings.arxiv_rss_url + "+".join(settings.categories)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def http_get(url: str, settings: Settings, client: httpx.Client | None = None) -> bytes:
    """GET with timeout and exponential backoff on 429/5xx/timeouts; raises :class:`FetchError`."""
    own = client is None
    client = client or httpx.Client(
        timeout=settings.arxiv_timeout,
        follow_redirects=True,
        headers={"User-Agent": "arxiv-digest/0.1 (+https://github.com/)"},
    )
    try:
        delay = settings.arxiv_backoff_seconds
        last = ""
        for attempt in range(1, settings.arxiv_max_tries + 1):
            wait = delay
            try:
                resp = client.get(url)
                if resp.status_code == 200:
                    return resp.content
                last = f"HTTP {resp.status_code}"
                if resp.status_code not in RETRY_STATUS:
                    break
                wait = _retry_after(resp) or delay
            except httpx.TimeoutException:
                last = f"timed out after {settings.arxiv_timeout:g}s"
            except httpx.TransportError as exc:
                last = f"cannot connect ({exc.__class__.__name__}: {exc})"
                if _unresolvable(exc):  # no DNS (offline machine, typo in the URL): retrying cannot help
                    raise FetchError(
                        f"arXiv feed {url}: cannot resolve the host ({exc}); offline? point DIGEST_ARXIV_RSS_URL "
                        "at a mirror or the replay server (see README)",
                        url=url,
                    ) from None
            if attempt < settings.arxiv_max_tries:
                log.warning(
                    "GET %s: %s; retrying in %.1fs (try %d/%d)", url, last, wait, attempt, settings.arxiv_max_tries
                )
                time.sleep(wait)
                delay *= 2
        raise FetchError(
            f"arXiv feed {url} failed after {settings.arxiv_max_tries} tries ({last}); "
            "check the network or point DIGEST_ARXIV_RSS_URL at a mirror",
            url=url,
        )
    finally:
        if own:
            client.close()


def _unresolvable(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in ("Name or service not known", "nodename nor servname", "No address associated"))


def _announced(feed: Any) -> dt.date | None:
    parsed = feed.feed.get("published_parsed") or feed.feed.get("updated_parsed")
    raw = feed.feed.get("published") or feed.feed.get("updated")
    if raw:
        try:
            return parsedate_to_datetime(raw).date()  # the feed's own (US Eastern) date
        except (TypeError, ValueError):
            pass
    if parsed:
        return dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC).date()
    return None


def _entry_to_paper(entry: Any, announced: dt.date | None) -> Paper:
    guid = entry.get("id") or entry.get("guid") or ""
    desc = entry.get("summary", "") or entry.get("description", "")
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
    creators = entry.get("author") or ""
    authors = [a.strip() for a in creators.split(",") if a.strip()] if creators else []
    categories = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
    published = None
    if entry.get("published_parsed"):
        published = dt.datetime.fromtimestamp(calendar.timegm(entry.published_parsed), dt.UTC)
    return Paper(
        id=arxiv_id,
        version=version or 1,
        title=entry.get("title", ""),
        abstract=clean_abstract(desc),
        authors=authors,
        categories=categories,
        primary_category=categories[0] if categories else None,
        announce_type=announce_type,
        announced=announced,
        published=published,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=f"https://arxiv.org/pdf/{arxiv_id}v{version or 1}",
    )


def parse_feed(content: bytes, url: str = "", include_replacements: bool = False) -> Announcement:
    """Parse RSS bytes into an :class:`Announcement`. Raises :class:`FeedParseError` on bad XML."""
    feed = feedparser.parse(content)
    if feed.get("bozo") and not feed.entries and not feed.feed.get("title"):
        exc = feed.get("bozo_exception")
        raise FeedParseError(f"the feed at {url or '(bytes)'} is not valid RSS: {exc}", url=url)
    if feed.get("bozo") and isinstance(feed.get("bozo_exception"), Exception):
        exc = feed.bozo_exception
        # feedparser recovers from some things (encoding overrides); malformed XML is fatal for us:
        # half a feed would silently drop papers.
        if "not well-formed" in str(exc) or exc.__class__.__name__ in {"SAXParseException"}:
            raise FeedParseError(f"the feed at {url or '(bytes)'} is malformed XML: {exc}", url=url)
    announced = _announced(feed)
    papers: list[Paper] = []
    skipped = 0
    seen: set[str] = set()
    for entry in feed.entries:
        try:
            paper = _entry_to_paper(entry, announced)
        except ValueError as exc:
            raise FeedParseError(f"an item of {url or 'the feed'} has no arXiv id: {exc}", url=url) from None
        if paper.announce_type in {"replace", "replace-cross"} and not include_replacements:
            skipped += 1
            continue
        if paper.id in seen:
            continue
        seen.add(paper.id)
        papers.append(paper)
    return Announcement(date=announced, papers=papers, skipped=skipped, source_url=url)


def fetch_announcement(settings: Settings, client: httpx.Client | None = None) -> Announcement:
    """Today's announcement of the configured categories (empty on weekends and holidays)."""
    url = feed_url(settings)
    content = http_get(url, settings, client)
    return parse_feed(content, url=url, include_replacements=settings.include_replacements)


def ids_of(papers: Iterable[Paper]) -> list[str]:
    return [p.id for p in papers]

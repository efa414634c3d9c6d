"""Date ranges and id batches through the arXiv API (Atom pages, parsed with feedparser).

Pages are fetched by the same :class:`~digest.sources.http.ArxivClient` as the RSS feed, so one
politeness clock (≥ 3 s between requests) covers both. arXiv sometimes answers a later page empty
although more results exist: that page is retried under the same retry policy.
"""

from __future__ import annotations

import calendar
import datetime as dt
import urllib.parse
from collections.abc import Iterable
from typing import Any

import feedparser

from digest.config import Settings
from digest.errors import FeedParseError, FetchError
from digest.models import Paper
from digest.retry import GaveUp, Transient
from digest.sources.calendar import announcement_day
from digest.sources.http import ArxivClient
from digest.text import decode_entities, split_id


def _ts(parsed: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC) if parsed else None


def entry_to_paper(e: Any, categories: Iterable[str]) -> Paper:
    arxiv_id, version = split_id(e.get("id", ""))
    wanted = set(categories)
    primary = (e.get("arxiv_primary_category") or {}).get("term")
    tags = [t.get("term") for t in e.get("tags", []) if t.get("term")]
    published = _ts(e.get("published_parsed"))
    return Paper(
        id=arxiv_id,
        version=version or 1,
        title=decode_entities(e.get("title", "")),
        abstract=decode_entities(e.get("summary", "")),
        authors=[decode_entities(a.get("name", "")) for a in e.get("authors", []) if a.get("name")],
        categories=tags,
        primary_category=primary or (tags[0] if tags else None),
        # a submittedDate query finds a paper by its first submission: it was announced as new/cross then
        announce_type="new" if primary in wanted else "cross",
        announced=announcement_day(published) if published else None,
        published=published,
        updated=_ts(e.get("updated_parsed")),
        comment=e.get("arxiv_comment"),
        journal_ref=e.get("arxiv_journal_ref"),
        doi=e.get("arxiv_doi"),
    )


def parse_page(content: bytes, url: str, categories: Iterable[str]) -> tuple[list[Paper], int]:
    """(papers, total results) of one API page; :class:`FeedParseError` when it is not an API answer."""
    if content[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        raise FeedParseError(f"{url} answered an HTML page, not an arXiv API feed (maintenance?)", url)
    feed = feedparser.parse(content)
    exc = feed.get("bozo_exception")
    if feed.get("bozo") and isinstance(exc, Exception) and ("not well-formed" in str(exc) or not feed.entries):
        raise FeedParseError(f"{url} is not a valid arXiv API feed ({str(exc).splitlines()[0][:120]})", url)
    if not feed.get("version", "").startswith("atom"):
        raise FeedParseError(f"{url} is not an Atom feed (got {feed.get('version') or 'no feed'})", url)
    papers = []
    for e in feed.entries:
        if "/api/errors" in e.get("id", ""):
            raise FetchError(f"arXiv API refused the query: {e.get('summary', '').strip()[:200]}", url)
        papers.append(entry_to_paper(e, categories))
    try:
        total = int(feed.feed.get("opensearch_totalresults", len(papers)))
    except (TypeError, ValueError):
        total = len(papers)
    return papers, total


def query_url(settings: Settings, start: int, size: int, query: str = "", ids: list[str] | None = None) -> str:
    args: dict[str, str] = {"start": str(start), "max_results": str(size)}
    if query:
        args.update(search_query=query, sortBy="submittedDate", sortOrder="ascending")
    if ids:
        args["id_list"] = ",".join(ids)
    return settings.arxiv_api_url + "?" + urllib.parse.urlencode(args)


def fetch_all(client: ArxivClient, settings: Settings, query: str = "", ids: list[str] | None = None) -> list[Paper]:
    """Every result of a query (all pages); an empty later page is retried, not taken as the end."""
    size = min(settings.arxiv_page_size, len(ids)) if ids else settings.arxiv_page_size
    out: dict[str, Paper] = {}
    start, total = 0, None
    while total is None or start < total:
        url = query_url(settings, start, size, query, ids)

        def page(url: str = url, first: bool = total is None) -> tuple[list[Paper], int]:
            got, n = parse_page(client.get(url, "arXiv API").content, url, settings.categories)
            if not got and not first:
                raise Transient("an empty page before the end of the results (arXiv API hiccup)")
            return got, n

        try:
            got, total = client.policy.call(page, f"arXiv API page {start}")
        except GaveUp as exc:
            raise FetchError(f"arXiv API {url} failed: {exc}; re-run later", url) from None
        for p in got:
            out[p.id] = p
        if not got:
            break
        start += len(got)
    return list(out.values())


def day_query(categories: Iterable[str], day: dt.date) -> str:
    cats = [f"cat:{c}" for c in categories]
    cat = cats[0] if len(cats) == 1 else "(" + " OR ".join(cats) + ")"
    d = day.strftime("%Y%m%d")
    return f"{cat} AND submittedDate:[{d}0000 TO {d}2359]"


def fetch_submission_day(day: dt.date, settings: Settings, client: ArxivClient) -> list[Paper]:
    """Every paper of the categories submitted on UTC day ``day``."""
    try:
        return fetch_all(client, settings, query=day_query(settings.categories, day))
    except FetchError as exc:
        raise FetchError(f"submission day {day.isoformat()}: {exc}", exc.url) from None


def fetch_ids(ids: list[str], settings: Settings, client: ArxivClient, batch: int = 100) -> list[Paper]:
    """Papers by id, ``batch`` ids per request (arXiv's id_list limit is generous; 100 keeps pages small)."""
    out: list[Paper] = []
    for i in range(0, len(ids), batch):
        out.extend(fetch_all(client, settings, ids=ids[i : i + batch]))
    return out

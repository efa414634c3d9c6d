"""Date ranges and id batches through the arXiv API, with the ``arxiv`` package (4.x).

``arxiv.Client`` has no timeout and retries without backoff. :class:`PoliteClient` keeps its paging
and parsing but adds a request timeout, exponential backoff on 429/503/timeouts (``Retry-After``
is not exposed by the package), a bounded number of tries and our base URL. One client is shared
by a whole range so the ≥ ``DIGEST_ARXIV_DELAY_SECONDS`` spacing holds across days.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import arxiv
import requests

from digest.config import Settings
from digest.errors import FetchError
from digest.models import Paper
from digest.sources.calendar import announcement_day
from digest.text import split_id

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


class PoliteClient(arxiv.Client):
    """``arxiv.Client`` with timeouts, exponential backoff and a configurable base URL."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(
            page_size=settings.arxiv_page_size,
            delay_seconds=settings.arxiv_delay_seconds,
            num_retries=settings.arxiv_max_tries - 1,
        )
        self.query_url_format = settings.arxiv_api_url + "?{}"
        self._session = _TimeoutSession(settings.arxiv_timeout)
        self._backoff = settings.arxiv_backoff_seconds
        self._sleep = sleep
        self.requests_made = 0

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0) -> Any:
        while True:
            try:
                self.requests_made += 1
                return self._Client__try_parse_feed(url, first_page=first_page, try_index=_try_index)
            except arxiv.HTTPError as err:
                if err.status not in RETRY_STATUS:
                    raise
                reason: Exception = err
            except (
                arxiv.UnexpectedEmptyPageError,
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
            ) as err:
                reason = err
            if _try_index >= self.num_retries:
                raise reason
            wait = self._backoff * (2**_try_index)
            log.warning(
                "arXiv API: %s; retrying in %.1fs (try %d/%d)", reason, wait, _try_index + 1, self.num_retries + 1
            )
            self._sleep(wait)
            _try_index += 1


def result_to_paper(r: arxiv.Result, categories: Iterable[str]) -> Paper:
    arxiv_id, version = split_id(r.entry_id)
    wanted = set(categories)
    primary = r.primary_category
    # a submittedDate query finds a paper by its first submission: it was announced as new/cross then
    announce = "new" if primary in wanted else "cross"
    published = r.published
    return Paper(
        id=arxiv_id,
        version=version or 1,
        title=r.title,
        abstract=r.summary,
        authors=[a.name for a in r.authors],
        categories=list(r.categories),
        primary_category=primary,
        announce_type=announce,
        announced=announcement_day(published) if published else None,
        published=published,
        updated=r.updated,
        comment=r.comment,
        abs_url=f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=r.pdf_url or f"https://arxiv.org/pdf/{arxiv_id}",
    )


def day_query(categories: Iterable[str], day: dt.date) -> str:
    cats = [f"cat:{c}" for c in categories]
    cat = cats[0] if len(cats) == 1 else "(" + " OR ".join(cats) + ")"
    d = day.strftime("%Y%m%d")
    return f"{cat} AND submittedDate:[{d}0000 TO {d}2359]"


def fetch_submission_day(day: dt.date, settings: Settings, client: PoliteClient) -> list[Paper]:
    """Every paper of the categories submitted on UTC day ``day`` (all pages)."""
    search = arxiv.Search(
        query=day_query(settings.categories, day),
        max_results=None,
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Ascending,
    )
    try:
        seen: dict[str, Paper] = {}
        for r in client.results(search):
            p = result_to_paper(r, settings.categories)
            seen[p.id] = p
        return list(seen.values())
    except (arxiv.ArxivError, requests.exceptions.RequestException) as exc:
        raise FetchError(
            f"arXiv API failed for submission day {day.isoformat()} after {settings.arxiv_max_tries} tries "
            f"({exc.__class__.__name__}: {exc}); re-run later or point DIGEST_ARXIV_API_URL at a mirror",
            url=settings.arxiv_api_url,
        ) from None


def iter_days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    d = start
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def fetch_ids(ids: list[str], settings: Settings, client: PoliteClient, batch: int = 100) -> list[Paper]:
    """Papers by id, in batches of ``batch`` ids per request."""
    out: list[Paper] = []
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        search = arxiv.Search(id_list=chunk, max_results=len(chunk))
        try:
            out.extend(result_to_paper(r, settings.categories) for r in client.results(search))
        except (arxiv.ArxivError, requests.exceptions.RequestException) as exc:
            raise FetchError(
                f"arXiv API failed for ids {chunk[0]}…{chunk[-1]} ({exc.__class__.__name__}: {exc})",
                url=settings.arxiv_api_url,
            ) from None
    return out

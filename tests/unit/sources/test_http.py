"""The one arXiv HTTP client: spacing between requests, one retry policy, Retry-After, fast DNS failure."""

from __future__ import annotations

import time

import httpx
import pytest

from digest.config import Settings
from digest.errors import FetchError
from digest.retry import parse_retry_after
from digest.sources.http import ArxivClient


def _client(settings: Settings, handler: object, sleeps: list[float] | None = None, **upd: object) -> ArxivClient:
    s = settings.model_copy(update=upd)
    return ArxivClient(
        s, transport=httpx.MockTransport(handler), sleep=(sleeps.append if sleeps is not None else time.sleep)
    )  # type: ignore[arg-type]


def test_429_with_retry_after_then_success(settings: Settings) -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(str(req.url))
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return httpx.Response(200, content=b"ok", headers={"content-type": "application/xml"})

    page = _client(settings, handler, sleeps, arxiv_backoff_seconds=1.0).get("http://arxiv.test/a")
    assert page.content == b"ok" and len(calls) == 2 and 7.0 in sleeps


def test_gives_up_after_max_tries_naming_the_url(settings: Settings) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    with pytest.raises(FetchError, match=r"http://arxiv.test/b failed: HTTP 503 \(after 3 tries\)"):
        _client(settings, handler, [], arxiv_max_tries=3).get("http://arxiv.test/b")
    assert len(calls) == 3


def test_404_is_not_retried(settings: Settings) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404)

    with pytest.raises(FetchError, match="HTTP 404"):
        _client(settings, handler, []).get("http://arxiv.test/c")
    assert len(calls) == 1


def test_requests_are_spaced_by_the_delay(settings: Settings) -> None:
    sleeps: list[float] = []

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x")

    c = _client(settings, handler, sleeps, arxiv_delay_seconds=3.0)
    for _ in range(3):
        c.get("http://arxiv.test/d")
    assert len(sleeps) == 2 and all(2.9 < s <= 3.0 for s in sleeps)


def test_unresolvable_host_fails_at_once(settings: Settings) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    with pytest.raises(FetchError, match="cannot resolve the host"):
        _client(settings, handler, []).get("http://nowhere.invalid/rss")
    assert len(calls) == 1


def test_retry_after_http_date() -> None:
    import datetime as dt

    now = dt.datetime(2026, 6, 2, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("Tue, 02 Jun 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("soon", now) is None

"""The one HTTP client for arXiv: RSS and API pages alike.

arXiv's terms of use ask automated clients for **no more than one request every three seconds** (and one
connection at a time); its API also answers 429/503 when pushed and, on some days, pages that are
unexpectedly empty. This client owns that contract for the whole process: a lock and the time of the
last request space every request by ``DIGEST_ARXIV_DELAY_SECONDS`` (default 3), across threads and
across days of a range, and failures go through the project's one :class:`~digest.retry.RetryPolicy`
(``Retry-After`` honoured). A host that cannot be resolved fails at once: retrying cannot help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from digest import __version__
from digest.config import Settings
from digest.errors import FetchError
from digest.retry import GaveUp, RetryPolicy, Transient, parse_retry_after

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
USER_AGENT = f"arxiv-digest/{__version__} (daily digest; polite: 1 request / 3 s)"


#: the largest answer read from arXiv (a day's RSS is ~1 MB, an API page of 2,000 entries ~5 MB)
MAX_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Page:
    url: str
    content: bytes
    content_type: str


class SharedClock(Protocol):
    """Turns shared by every process using one store (arXiv's rule is per user, not per process)."""

    def take_turn(self, name: str, spacing: float) -> float: ...

    def push_back(self, name: str, seconds: float) -> None: ...


CLOCK = "arxiv"


class ArxivClient:
    """GET arXiv URLs politely. One instance per process (the providers build it once); with a shared clock
    (the store), every process and worker sharing it takes its turn from one clock, ≥ the delay apart, and a
    429/503 pushes the next turn back for everyone."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: SharedClock | None = None,
    ) -> None:
        self.settings = settings
        self.delay = settings.arxiv_delay_seconds
        self.policy = RetryPolicy(tries=settings.arxiv_max_tries, backoff=settings.arxiv_backoff_seconds)
        self._http = httpx.Client(
            timeout=settings.arxiv_timeout,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        self._sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self._last = 0.0
        self.requests = 0

    def _space(self) -> None:
        """Wait for this request's turn: the shared clock's, else ``delay`` after this process's previous one."""
        if self.clock is not None and self.delay > 0:
            # a little more than the delay: a request that leaves late (a busy machine) must not shorten the gap
            # to the next process's turn below the delay as arXiv sees it
            wait = self.clock.take_turn(CLOCK, self.delay + max(0.1, 0.05 * self.delay))
            if wait > 0:
                self._sleep(wait)
            self._last = time.monotonic()
            return
        wait = self._last + self.delay - time.monotonic()
        if self._last and wait > 0:
            self._sleep(wait)
        self._last = time.monotonic()

    def _once(self, url: str) -> Page:
        with self._lock:
            self._space()
            self.requests += 1
            try:
                resp, body = self._fetch(url)
            except httpx.TimeoutException:
                raise Transient(f"timed out after {self.settings.arxiv_timeout:g}s") from None
            except httpx.TransportError as exc:
                if _unresolvable(exc):
                    raise FetchError(
                        f"{url}: cannot resolve the host ({exc}); offline? point DIGEST_ARXIV_RSS_URL / "
                        "DIGEST_ARXIV_API_URL at a mirror or at `digest replay` (see README)",
                        url=url,
                    ) from None
                raise Transient(f"cannot connect ({exc.__class__.__name__}: {exc})") from None
            finally:
                self._last = time.monotonic()
        if resp.status_code == 200:
            return Page(url, body, resp.headers.get("content-type", ""))
        if resp.status_code in RETRY_STATUS:
            after = parse_retry_after(resp.headers.get("Retry-After"))
            if self.clock is not None and resp.status_code in (429, 503):  # everyone waits, not just this process
                self.clock.push_back(CLOCK, after if after is not None else self.settings.arxiv_backoff_seconds)
            raise Transient(f"HTTP {resp.status_code}", after)
        raise FetchError(f"{url} answered HTTP {resp.status_code}: check the URL setting", url=url)

    def _fetch(self, url: str) -> tuple[httpx.Response, bytes]:
        """The answer and its body, within ``DIGEST_ARXIV_TIMEOUT`` in total (a server that trickles a byte
        every few seconds never resets it) and at most :data:`MAX_BYTES`."""
        deadline = time.monotonic() + self.settings.arxiv_timeout
        with self._http.stream("GET", url) as resp:
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {self.settings.arxiv_timeout:g}s")
                if size > MAX_BYTES:
                    raise FetchError(f"{url} answered more than {MAX_BYTES // 2**20} MB: not an arXiv page", url=url)
        return resp, b"".join(chunks)

    def get(self, url: str, what: str = "arXiv") -> Page:
        """The page at ``url``; :class:`FetchError` (one line, with the URL) when it cannot be had."""
        try:
            return self.policy.call(lambda: self._once(url), f"GET {url}", sleep=self._sleep)
        except GaveUp as exc:
            raise FetchError(
                f"{what} {url} failed: {exc}; check the network or point the URL setting at a mirror", url=url
            ) from None

    def close(self) -> None:
        self._http.close()


def _unresolvable(exc: BaseException) -> bool:
    text = str(exc)
    return any(
        m in text
        for m in ("Name or service not known", "nodename nor servname", "No address associated", "Temporary failure")
    )

"""One retry policy for every remote call (arXiv, the LLM, SMTP), built on tenacity.

A call is retried only when it raises :class:`Transient` (the caller decides what is transient: 429,
5xx, timeouts, dropped connections); anything else propagates at once. Waits double from ``backoff``,
a server's ``Retry-After`` (seconds or an HTTP-date) wins, and no wait runs past the item's
``deadline``. A shared :class:`Breaker` stops a whole run's retries once an endpoint is clearly down.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type

T = TypeVar("T")
log = logging.getLogger(__name__)


class Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's wish, in seconds, when it said one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[Transient], tuple[str, float | None]]:
        return (type(self), (self.reason, self.retry_after))


class InDoubt(Exception):
    """The request was handed over but its answer never came (a timeout or a dropped connection after the body
    went out): it may have been taken. Never retried automatically — at most once per message."""


class Overdue(Exception):
    """A call did not return within its total deadline; it is left to end on its own in a daemon thread."""


def within(seconds: float, fn: Callable[[], T], name: str) -> T:
    """``fn()`` with a total deadline. Client libraries time out per read, so a server that trickles a byte every
    few seconds would hold a call for ever; the call runs in a daemon thread that is abandoned (:class:`Overdue`)
    when ``seconds`` pass. Its exceptions are raised here."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise Overdue(f"no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class GaveUp(Exception):
    """Every try failed (or the deadline / the breaker stopped the retries); ``last`` says why."""

    def __init__(self, last: str, tries: int) -> None:
        super().__init__(f"{last} (after {tries} {'try' if tries == 1 else 'tries'})")
        self.last = last
        self.tries = tries

    def __reduce__(self) -> tuple[type[GaveUp], tuple[str, int]]:
        return (type(self), (self.last, self.tries))


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


class Breaker:
    """Counts consecutive failures across threads; open after ``limit`` of them, closed again by a success."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._fails = 0
        self._last = ""
        self._lock = threading.Lock()

    def failure(self, why: str) -> None:
        with self._lock:
            self._fails += 1
            self._last = why

    def success(self) -> None:
        with self._lock:
            if self._fails < self.limit:  # once open, it stays open for the run
                self._fails = 0

    def trip(self, why: str) -> None:
        """Open the breaker now (the run is being stopped)."""
        with self._lock:
            self._fails = self.limit
            self._last = why

    @property
    def open(self) -> bool:
        with self._lock:
            return self._fails >= self.limit

    @property
    def last(self) -> str:
        with self._lock:
            return self._last


@dataclass(frozen=True)
class RetryPolicy:
    tries: int
    backoff: float
    deadline: float | None = None  # seconds for the whole item, waits included
    max_wait: float = 120.0
    jitter: float = 0.05

    def call(
        self,
        fn: Callable[[], T],
        what: str,
        breaker: Breaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """``fn()`` until it returns, raises a non-:class:`Transient` error, or the policy gives up (``GaveUp``)."""
        start = time.monotonic()
        end = start + self.deadline if self.deadline else None

        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome else None
            base = self.backoff * 2 ** (rs.attempt_number - 1)
            after = exc.retry_after if isinstance(exc, Transient) else None
            w = min(after if after is not None else base * (1 + random.uniform(0, self.jitter)), self.max_wait)
            return max(0.0, min(w, end - time.monotonic())) if end is not None else w

        def stop(rs: RetryCallState) -> bool:
            if rs.attempt_number >= self.tries or (breaker is not None and breaker.open):
                return True
            return end is not None and time.monotonic() >= end

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            log.warning(
                "%s: %s; retry %d/%d in %.1fs",
                what,
                exc,
                rs.attempt_number,
                self.tries - 1,
                rs.next_action.sleep if rs.next_action else 0.0,
            )

        def on_give_up(rs: RetryCallState) -> T:
            exc = rs.outcome.exception() if rs.outcome else None
            raise GaveUp(str(exc) if exc else "no answer", rs.attempt_number)

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(Transient),
            before_sleep=before_sleep,
            retry_error_callback=on_give_up,
            sleep=sleep,
        )
        return retrying(fn)

"""One ingestion policy: which papers does announcement day D have? (store → RSS → API)

* A weekend has no announcement (no request is made).
* A day already announced in the store is read from the store (exact when it came from RSS).
* Otherwise the RSS feed is read once per run (it stores whatever day it carries); if it carries D, that
  is D's exact list.
* An empty channel on a weekday is **unconfirmed**, not a holiday: while the feed still shows D, the day
  waits (re-checked on the next run); once the feed has moved on, D is a holiday only if the evidence
  agrees — its submission window (API) is empty, or those papers were announced on the next day — and
  otherwise D is reconstructed from the API's submission window (approximate, and the digest says so).
* A day never seen by RSS is reconstructed from the API the same way.

``digest fetch``, ``digest run`` and the Prefect flows all call :class:`Ingestor`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from digest.config import Settings
from digest.errors import FetchError
from digest.models import DayFetch, DaySource, DayState, FetchCounts, Paper
from digest.sources import api, rss
from digest.sources.calendar import is_announcement_weekday, submission_days, submission_window
from digest.sources.http import ArxivClient
from digest.store import Store

log = logging.getLogger(__name__)


Say = Callable[[str], None]


class Ingestor:
    """Answers "the papers of day D" for one run (the RSS feed is read at most once per run)."""

    def __init__(self, settings: Settings, store: Store, client: ArxivClient) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self._rss: tuple[dt.date | None, FetchCounts] | None = None

    # --- the feed ------------------------------------------------------------------------
    def read_feed(self) -> tuple[dt.date | None, FetchCounts]:
        """Fetch the RSS feed once per run and store whatever day it carries; (its day, counts)."""
        if self._rss is None:
            ann = rss.fetch_announcement(self.settings, self.client)
            counts = FetchCounts(skipped=ann.skipped)
            if ann.date is not None and ann.papers:
                before = self.store.day_info(ann.date)
                counts = self.store.upsert_papers(ann.papers, DaySource.rss, ann.date) + counts
                if before is not None and before.source == DaySource.api:
                    # the day was reconstructed (approximate): the announcement's own list replaces it
                    moved = self.store.assign_day(ann.date, [p.id for p in ann.papers])
                    log.warning("%s: the feed's list replaces the approximate one (%d papers moved)", ann.date, moved)
                self.store.record_day(ann.date, DayState.announced, DaySource.rss, len(ann.papers))
            elif ann.date is not None and ann.skipped:  # only replacements: an announcement with nothing new
                self.store.record_day(ann.date, DayState.announced, DaySource.rss, 0)
            elif ann.date is not None:
                weekday = is_announcement_weekday(ann.date)
                state = DayState.unconfirmed if weekday else DayState.no_announcement
                self.store.record_day(ann.date, state, DaySource.rss, 0, check=weekday)
            self._rss = (ann.date, counts)
        return self._rss

    # --- one day -------------------------------------------------------------------------
    def today(self) -> DayFetch:
        """Today's announcement: whatever day the feed carries."""
        t0 = time.perf_counter()
        day, counts = self.read_feed()
        if day is None:
            return DayFetch(date=None, state=DayState.unconfirmed, reason="the RSS feed carries no date", seconds=0.0)
        res = self._from_store(day, counts)
        return res.model_copy(update={"seconds": round(time.perf_counter() - t0, 3)})

    def day(self, day: dt.date) -> DayFetch:
        t0 = time.perf_counter()
        res = self._day(day)
        return res.model_copy(update={"seconds": round(time.perf_counter() - t0, 3)})

    def _day(self, day: dt.date) -> DayFetch:
        if not is_announcement_weekday(day):
            return DayFetch(date=day, state=DayState.no_announcement, reason=f"{day:%A}: arXiv announces Monday–Friday")
        info = self.store.day_info(day)
        if info is not None and info.state == DayState.announced and info.source == DaySource.api:
            # approximate: replaced by the feed's list whenever the feed carries the day
            try:
                feed_day, feed_counts = self.read_feed()
            except FetchError as exc:
                log.warning("RSS unavailable (%s): %s stays approximate", exc, day)
                return self._from_store(day, FetchCounts())
            return self._from_store(day, feed_counts if feed_day == day else FetchCounts())
        if info is not None and info.state != DayState.unconfirmed:
            return self._from_store(day, FetchCounts())
        counts = FetchCounts()
        # the announcement decides which papers a day has: a feed that fails (maintenance page, truncated
        # download, 5xx after retries) fails the day — the API rebuild is only for days that left the feed
        feed_day, feed_counts = self.read_feed()
        if feed_day is not None and feed_day < day:
            return DayFetch(
                date=day,
                state=DayState.unconfirmed,
                reason=f"{day} is not announced yet (the feed carries {feed_day}): run it after the announcement",
            )
        if feed_day is None:
            raise FetchError(f"the RSS feed carries no announcement date: cannot tell whether {day} left it yet")
        if feed_day == day:
            counts = feed_counts
            info = self.store.day_info(day)
            if info is not None and info.state == DayState.unconfirmed:
                return DayFetch(
                    date=day,
                    state=DayState.unconfirmed,
                    source=DaySource.rss,
                    counts=counts,
                    reason=f"the feed for {day} ({day:%A}) is empty: holiday or arXiv trouble? checked again next run",
                )
        info = self.store.day_info(day)
        if info is None or info.state == DayState.unconfirmed:
            return self._from_api(day, was_unconfirmed=info is not None)
        return self._from_store(day, counts)

    def _from_store(self, day: dt.date, counts: FetchCounts) -> DayFetch:
        info = self.store.day_info(day)
        if info is None:
            return DayFetch(date=day, state=DayState.unconfirmed, reason=f"nothing known about {day}")
        papers = self.store.papers_of_day(day)
        reason = ""
        if info.state == DayState.unconfirmed:
            reason = f"the feed for {day} ({day:%A}) is empty: holiday or arXiv trouble? checked again next run"
        elif info.state == DayState.no_announcement:
            reason = f"no announcement on {day} ({day:%A})"
        return DayFetch(date=day, state=info.state, source=info.source, papers=papers, counts=counts, reason=reason)

    def _from_api(self, day: dt.date, was_unconfirmed: bool) -> DayFetch:
        """Reconstruct ``day`` from the API's submission window (approximate around holidays)."""
        start, end = submission_window(day)
        got: list[Paper] = []
        for sday in submission_days(day):
            got.extend(api.fetch_submission_day(sday, self.settings, self.client))
        in_window = [
            p
            for p in got
            if p.published is not None and start <= p.published < end and p.announce_type in ("new", "cross")
        ]
        if was_unconfirmed:
            later = self._announced_later(in_window, day)
            if not in_window or later >= 0.5 * len(in_window):
                self.store.record_day(day, DayState.no_announcement, DaySource.api, 0)
                why = (
                    "its submission window is empty" if not in_window else f"{later} of its papers were announced later"
                )
                return DayFetch(
                    date=day,
                    state=DayState.no_announcement,
                    source=DaySource.api,
                    reason=f"{day} was an arXiv holiday ({why})",
                )
        counts = self.store.upsert_papers(in_window, DaySource.api, day)  # the day's own papers: what is counted
        keep = {p.id for p in in_window}
        self.store.upsert_papers([p for p in got if p.id not in keep], DaySource.api)  # neighbours, stored too
        state = DayState.announced if in_window else DayState.no_announcement
        self.store.record_day(day, state, DaySource.api, len(in_window))
        res = self._from_store(day, counts)
        if not in_window:
            return res.model_copy(update={"reason": f"no submissions in the window of {day} (API)"})
        return res

    def _announced_later(self, papers: list[Paper], day: dt.date) -> int:
        stored = {p.id: p for p in self.store.get_papers([p.id for p in papers])}
        return sum(1 for p in papers if (s := stored.get(p.id)) is not None and s.announced and s.announced > day)

    # --- ranges --------------------------------------------------------------------------
    def days(self, start: dt.date, end: dt.date) -> list[DayFetch]:
        d, out = start, []
        while d <= end:
            out.append(self.day(d))
            d += dt.timedelta(days=1)
        return out


def store_missing(ids: list[str], settings: Settings, store: Store, arxiv: ArxivClient, say: Say | None = None) -> int:
    """Papers the store does not have yet (seeds, voted papers), fetched by id from the arXiv API through the
    run's one client (its spacing holds) and stored without an announcement day. Returns how many were asked."""
    known = {p.id for p in store.get_papers(ids)}
    missing = [i for i in ids if i not in known]
    if not missing:
        return 0
    if say:
        say(f"fetching {len(missing)} paper(s) from the arXiv API (batched, ≥{settings.arxiv_delay_seconds:g}s apart)")
    got = api.fetch_ids(missing, settings, arxiv)
    store.upsert_papers([p.model_copy(update={"announced": None}) for p in got], DaySource.api)
    return len(missing)

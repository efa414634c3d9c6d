"""One ingestion policy (store → RSS → API), against arXiv in process."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.config import Settings
from digest.errors import FeedParseError
from digest.ingest import Ingestor
from digest.models import DaySource, DayState
from digest.sources.http import ArxivClient
from digest.store import Store
from tests.fakes import FakeArxiv, arxiv_paper

TUE, WED, THU = dt.date(2026, 6, 2), dt.date(2026, 6, 3), dt.date(2026, 6, 4)


def _ingestor(settings: Settings, store: Store, arxiv: FakeArxiv) -> Ingestor:
    return Ingestor(settings, store, ArxivClient(settings, transport=arxiv.transport(), sleep=lambda _s: None))


def test_todays_feed_then_the_store(settings: Settings, store: Store) -> None:
    arxiv = FakeArxiv([arxiv_paper(i, TUE) for i in range(5)], rss_day=TUE)
    got = _ingestor(settings, store, arxiv).today()
    assert (got.date, got.state, got.source, len(got.papers), got.counts.new) == (
        TUE,
        DayState.announced,
        DaySource.rss,
        5,
        5,
    )
    n = len(arxiv.requests)
    again = _ingestor(settings, store, arxiv).day(TUE)
    assert len(again.papers) == 5 and len(arxiv.requests) == n  # from the store: no request


def test_weekend_makes_no_request(settings: Settings, store: Store) -> None:
    arxiv = FakeArxiv([])
    got = _ingestor(settings, store, arxiv).day(dt.date(2026, 6, 6))
    assert got.state == DayState.no_announcement and arxiv.requests == []


def test_a_day_the_feed_has_moved_past_is_reconstructed_from_the_api(settings: Settings, store: Store) -> None:
    arxiv = FakeArxiv(
        [arxiv_paper(i, WED) for i in range(4)] + [arxiv_paper(10 + i, THU) for i in range(3)], rss_day=THU
    )
    got = _ingestor(settings, store, arxiv).day(WED)
    assert got.state == DayState.announced and got.source == DaySource.api and got.approximate
    assert {p.id for p in got.papers} == {arxiv_paper(i, WED)["id"] for i in range(4)}
    assert sum("/rss/" in r for r in arxiv.requests) == 1  # the feed is read once per run


def test_html_maintenance_page_is_a_failure_not_a_holiday(settings: Settings, store: Store) -> None:
    arxiv = FakeArxiv([arxiv_paper(i, TUE) for i in range(3)], rss_day=TUE)
    arxiv.script = ["html"]
    with pytest.raises(FeedParseError, match="text/html, not an RSS feed"):
        _ingestor(settings, store, arxiv).today()
    assert store.day_info(TUE) is None


def test_empty_weekday_channel_is_unconfirmed_then_fetched_once_the_feed_is_back(
    settings: Settings, store: Store
) -> None:
    arxiv = FakeArxiv([arxiv_paper(i, TUE) for i in range(3)], rss_day=TUE)
    arxiv.script = ["empty"]
    first = _ingestor(settings, store, arxiv).today()
    assert first.state == DayState.unconfirmed and not first.papers and "checked again" in first.reason
    back = _ingestor(settings, store, arxiv).day(TUE)  # the next run: the feed is back
    assert back.state == DayState.announced and len(back.papers) == 3 and back.source == DaySource.rss


def test_holiday_only_when_the_evidence_agrees(settings: Settings, store: Store) -> None:
    # Tuesday's channel was empty; its submissions were announced on Wednesday: a holiday
    papers = [dict(arxiv_paper(i, TUE), date=WED.isoformat()) for i in range(3)]
    arxiv = FakeArxiv(papers, rss_day=TUE)
    arxiv.script = ["empty"]
    assert _ingestor(settings, store, arxiv).today().state == DayState.unconfirmed
    arxiv.rss_day = WED
    got = _ingestor(settings, store, arxiv).day(TUE)  # reads Wednesday's feed first, then checks the API window
    assert got.state == DayState.no_announcement and "holiday" in got.reason
    assert {p.id for p in store.papers_of_day(WED)} == {p["id"] for p in papers}


def test_api_paging_and_an_empty_page_mid_results(settings: Settings, store: Store) -> None:
    s = settings.model_copy(update={"arxiv_page_size": 2})
    papers = [arxiv_paper(i, WED) for i in range(5)]
    arxiv = FakeArxiv(papers, rss_day=THU)
    got = _ingestor(s, store, arxiv).day(WED)
    assert len(got.papers) == 5 and sum("start=2" in r for r in arxiv.requests) >= 1

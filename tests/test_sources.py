"""Ingestion through real HTTP on 127.0.0.1 with real recorded arXiv data."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from digest import fetch as stage
from digest.config import Settings
from digest.errors import FeedParseError, FetchError
from digest.sources import api, rss
from digest.sources.calendar import announcement_day, submission_window
from digest.store import Store
from tests.arxiv_server import ArxivState
from tests.conftest import REAL_DAY, run_cli
from tests.shared import corpus_by_day, shared_path

RSS_FILES = sorted(p.name for p in shared_path("feeds", "rss").glob("*.xml") if "atom" not in p.name)
NS = {"dc": "http://purl.org/dc/elements/1.1/", "arxiv": "http://arxiv.org/schemas/atom"}


@pytest.mark.parametrize("name", RSS_FILES)
def test_recorded_rss_parse_fidelity(name: str, settings: Settings) -> None:
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


def test_fetch_real_day_stores_new_and_cross_idempotently(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.day = day
    expected = {p["id"] for p in corpus_by_day()[REAL_DAY]}
    code, out, _ = run_cli("fetch")
    assert code == 0, out
    assert f"new {len(expected)}" in out
    store = Store(env["DIGEST_DB_URL"])
    assert {p.id for p in store.papers_of_day(day)} == expected
    code, out2, _ = run_cli("fetch")
    assert code == 0 and f"duplicate {len(expected)}" in out2 and "new 0" in out2
    assert store.count_papers() == len(expected)
    code, jsonl, _ = run_cli("papers", "--date", REAL_DAY, "--format", "jsonl")
    rows = [json.loads(line) for line in jsonl.splitlines()]
    assert {r["id"] for r in rows} == expected and all("v" not in r["id"] for r in rows)


def test_weekend_feed_is_no_announcement(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    arxiv_state.day = dt.date(2026, 6, 6)  # Saturday
    day, counts = stage.fetch_rss(settings, store)
    assert counts.fetched == 0 and store.count_papers() == 0
    assert day is not None and store.day_state(day) == ("no_announcement", "rss")


def test_429_then_success(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.script = [429]
    _, counts = stage.fetch_rss(settings, store)
    assert counts.new > 0 and len(arxiv_state.requests) == 2


def test_503_until_give_up_names_url(arxiv_state: ArxivState, env: dict[str, str]) -> None:
    arxiv_state.script = [503] * 10
    code, _, errtext = run_cli("fetch")
    assert code == 1
    assert "/rss/cs.CV" in errtext and "DIGEST_ARXIV_RSS_URL" in errtext and "503" in errtext
    assert len(arxiv_state.requests) == 5


def test_timeout_is_retried_then_reported(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.script = ["hang"]
    arxiv_state.hang_seconds = 1.5
    _, counts = stage.fetch_rss(settings, store)
    assert counts.new > 0
    arxiv_state.script = ["hang"] * 5
    with pytest.raises(FetchError, match="timed out"):
        stage.fetch_rss(settings.model_copy(update={"arxiv_max_tries": 2}), store)


def test_malformed_xml_writes_nothing(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    arxiv_state.day = dt.date.fromisoformat(REAL_DAY)
    arxiv_state.script = ["malformed"]
    with pytest.raises(FeedParseError, match="malformed"):
        stage.fetch_rss(settings, store)
    assert store.count_papers() == 0


def test_duplicates_and_replacement_across_two_days(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    d1, d2 = corpus_by_day()["2026-06-01"][:5], corpus_by_day()["2026-06-02"][:5]
    arxiv_state.day, arxiv_state.rss_papers = dt.date(2026, 6, 1), d1
    stage.fetch_rss(settings, store)
    changed = dict(d1[0], version="2", abstract=d1[0]["abstract"] + " Code released.")
    same = dict(d1[1], version="2")
    arxiv_state.day, arxiv_state.rss_papers = dt.date(2026, 6, 2), [changed, same, d1[2], *d2]
    _, counts = stage.fetch_rss(settings, store)
    assert (counts.new, counts.duplicate, counts.replaced) == (5, 1, 2)
    day1 = {p.id: p for p in store.papers_of_day(dt.date(2026, 6, 1))}
    assert day1[d1[0]["id"]].version == 2 and day1[d1[0]["id"]].abstract.endswith("Code released.")
    assert {p.id for p in store.papers_of_day(dt.date(2026, 6, 2))} == {p["id"] for p in d2}
    assert store.previous_version_unchanged(day1[d1[1]["id"]]) == 1
    assert store.previous_version_unchanged(day1[d1[0]["id"]]) is None


def test_api_three_day_range_paging_and_faults(
    arxiv_state: ArxivState, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_ARXIV_PAGE_SIZE", "40")
    # submission days 2026-05-28..30 (Thu, Fri, Sat) → papers announced on 05-29, 06-01 and 06-02
    arxiv_state.script = [None, None, 429, None, 503]
    code, out, errtext = run_cli("fetch", "--from", "2026-05-28", "--to", "2026-05-30", "--source", "api")
    assert code == 0, errtext
    times = arxiv_state.times()
    lo = dt.datetime(2026, 5, 28, tzinfo=dt.UTC)
    hi = dt.datetime(2026, 5, 31, tzinfo=dt.UTC)
    expected = {i for i, t in times.items() if lo <= t < hi}
    store = Store(env["DIGEST_DB_URL"])
    assert store.count_papers() == len(expected) > 100
    assert f"new {len(expected)}" in out
    assert sum("start=40" in r for r in arxiv_state.requests) >= 2  # paged
    stored = {
        p.id for d in (dt.date(2026, 5, 29), dt.date(2026, 6, 1), dt.date(2026, 6, 2)) for p in store.papers_of_day(d)
    }
    assert stored == expected


def test_api_gives_up_naming_the_day(arxiv_state: ArxivState, settings: Settings, store: Store) -> None:
    arxiv_state.script = [503] * 20
    with pytest.raises(FetchError, match="2026-05-28"):
        stage.fetch_api_range(dt.date(2026, 5, 28), dt.date(2026, 5, 28), settings, store)
    assert store.count_papers() == 0


@pytest.mark.parametrize(
    "name",
    [
        *sorted(p.name for p in shared_path("feeds", "api-new-format").glob("*testing_s0_m100*")),
        "james-akl__xiv__arxiv_response.xml",
    ],
)
def test_recorded_api_responses_parse(name: str, settings: Settings, arxiv_url: str) -> None:
    folder = "api-legacy-format" if name.startswith("james-akl") else "api-new-format"
    raw = shared_path("feeds", folder, name).read_bytes()
    s = settings.model_copy(update={"arxiv_api_url": f"{arxiv_url}/raw/{folder}/{name}"})
    client = api.PoliteClient(s)
    got = api.fetch_ids(["x"], s, client, batch=1)
    atom = "{http://www.w3.org/2005/Atom}"
    entries = ET.fromstring(raw).findall(f"{atom}entry")
    assert len(got) == min(len(entries), 1)
    e, p = entries[0], got[0]
    assert f"{p.id}v{p.version}" in (e.findtext(f"{atom}id") or "")
    assert p.authors == [a.findtext(f"{atom}name") for a in e.findall(f"{atom}author")]
    assert p.abstract == " ".join((e.findtext(f"{atom}summary") or "").split())


def test_calendar_windows() -> None:
    start, end = submission_window(dt.date(2026, 6, 3))  # Wednesday
    assert (start.date(), end.date()) == (dt.date(2026, 6, 1), dt.date(2026, 6, 2))
    assert announcement_day(start) == dt.date(2026, 6, 3)
    assert announcement_day(end - dt.timedelta(seconds=1)) == dt.date(2026, 6, 3)
    assert announcement_day(end) == dt.date(2026, 6, 4)
    fri_late = dt.datetime(2026, 6, 5, 20, 0, tzinfo=dt.UTC)  # Fri 16:00 ET → Tuesday
    assert announcement_day(fri_late) == dt.date(2026, 6, 9)
    with pytest.raises(ValueError):
        submission_window(dt.date(2026, 6, 6))


def test_store_schema_versioned(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/x.db")
    assert s.schema_version()[0] == "0001_papers_days_runs"
    assert s.migrate() == []

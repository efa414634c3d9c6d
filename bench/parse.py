"""Parsing throughput: a full real cs.CV day as RSS, and a 1,000-paper API page set (10 pages of 100).

Usage: python bench/parse.py   (reads ../shared; prints papers/s)
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.replay.arxiv import atom_entry, atom_feed, rss_feed
from digest.replay.data import corpus, corpus_by_day, default_shared
from digest.sources import api, rss


def best(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    day = "2026-06-02"
    shared = default_shared()
    papers = corpus_by_day(shared)[day]
    xml = rss_feed(dt.date.fromisoformat(day), ["cs.CV"], papers).encode()
    t = best(lambda: rss.parse_feed(xml))
    print(f"RSS day {day}: {len(papers)} papers, {len(xml) / 1e6:.2f} MB, {t * 1000:.0f} ms, {len(papers) / t:,.0f} papers/s")
    sample = list(corpus(shared).values())[:1000]
    ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pages = [atom_feed([atom_entry(p, ts) for p in sample[i : i + 100]], 1000, i, 100).encode() for i in range(0, 1000, 100)]

    def parse_pages() -> None:
        for page in pages:
            api.parse_page(page, "bench", ["cs.CV"])

    t = best(parse_pages)
    print(f"API 10 pages x 100: {t * 1000:.0f} ms, {1000 / t:,.0f} papers/s (feedparser + Paper models)")


if __name__ == "__main__":
    main()

"""`digest web` under load: how long a static file (feed.xml) takes while N clients fetch the day page at once,
and what a vote costs with many votes stored. Prints absolute figures; record them in docs/BENCHMARKS.md.

    python bench/web_load.py [--pages 100] [--votes 125000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replay import replay

DAY = dt.date(2026, 6, 2)  # a real 313-paper day


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--votes", type=int, default=125_000)
    a = ap.parse_args()
    import uvicorn

    from digest.cli import app
    from digest.config import load_settings
    from digest.providers import Providers
    from digest.replay.smtp import free_port
    from digest.store import Store, Vote
    from digest.web import make_app

    with tempfile.TemporaryDirectory() as tmp, replay(DAY, Path(tmp)):
        from typer.testing import CliRunner

        res = CliRunner().invoke(app, ["run", "--date", DAY.isoformat()])
        assert res.exit_code == 0, res.output
        store = Store(load_settings().db_url)
        ids = [p.id for p in store.papers_of_day(DAY)]
        store.add_votes([Vote(paper_id=ids[i % len(ids)], vote="up", who=f"r{i % 500}@x.org") for i in range(a.votes)])
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(make_app(Providers.from_settings(load_settings(), need_llm=False)),
                                               host="127.0.0.1", port=port, log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        page = f"{base}/{DAY:%Y}/{DAY:%m}/{DAY.isoformat()}.html"
        t0 = time.perf_counter()
        httpx.get(page, timeout=60)
        one_page = time.perf_counter() - t0
        done: list[float] = []

        def fetch() -> None:
            t = time.perf_counter()
            httpx.get(page, timeout=300)
            done.append(time.perf_counter() - t)

        threads = [threading.Thread(target=fetch) for _ in range(a.pages)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        assert httpx.get(f"{base}/feed.xml", timeout=60).status_code == 200
        static = time.perf_counter() - t0
        for t in threads:
            t.join()
        t0 = time.perf_counter()
        for i in range(200):
            store.latest_vote(ids[i % len(ids)], "any", f"r{i}@x.org")
        vote_read = (time.perf_counter() - t0) / 200
        server.should_exit = True
        print(f"day page alone: {one_page:.2f} s; {a.pages} concurrent page requests: slowest {max(done):.1f} s")
        print(f"feed.xml during them: {static:.3f} s")
        print(f"a vote's read of the latest vote with {a.votes:,} votes stored: {vote_read * 1000:.2f} ms")


if __name__ == "__main__":
    main()

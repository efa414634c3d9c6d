"""LLM stage throughput against the local fake OpenAI-compatible server with a fixed latency.

Usage: python bench/llm_throughput.py [--papers 300] [--latency 0.5] [--concurrency 1,4,8,16]

For each concurrency c: wall time of summarising N real corpus papers (fresh store) vs the ideal
N / c × latency, then the cached re-run (same store: must make 0 requests).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from digest.config import Settings
from digest.llm.client import OpenAIChat, openai_client
from digest.llm.prompts import load_prompts
from digest.llm.summarize import Summariser
from digest.models import Paper
from digest.replay import LLMState, serve_llm
from digest.replay.data import corpus, default_shared
from digest.store import Store


def summarise(papers: list[Paper], settings: Settings, store: Store) -> object:
    chat = OpenAIChat(openai_client(settings), settings)
    return Summariser(settings, store, load_prompts(settings), chat, None).run(papers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--papers", type=int, default=300)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", default="1,4,8,16")
    args = ap.parse_args()
    papers = [
        Paper(id=p["id"], version=1, title=p["title"], abstract=p["abstract"])
        for p in list(corpus(default_shared()).values())[: args.papers]
    ]
    state = LLMState(latency=args.latency)
    print(f"{len(papers)} real papers, fake LLM latency {args.latency} s")
    print("| concurrency | wall (s) | ideal N/c×latency (s) | ratio | requests | cached re-run (s) | re-run requests |")
    print("|---|---|---|---|---|---|---|")
    with serve_llm(state) as url, tempfile.TemporaryDirectory() as tmp:
        for c in [int(x) for x in args.concurrency.split(",")]:
            settings = Settings(
                db_url=f"sqlite:///{tmp}/c{c}.db",
                llm_base_url=url,
                llm_model="gpt-4o-mini",
                llm_api_key=SecretStr("sk-bench"),
                llm_concurrency=c,
                translate_fallback="none",
            )
            store = Store(settings.db_url)
            before = state.requests
            t = time.perf_counter()
            stats: Any = summarise(papers, settings, store)
            wall = time.perf_counter() - t
            reqs = state.requests - before
            assert stats.ok == len(papers), stats.line()
            before = state.requests
            t = time.perf_counter()
            stats2: Any = summarise(papers, settings, store)
            rerun = time.perf_counter() - t
            ideal = len(papers) / c * args.latency
            print(
                f"| {c} | {wall:.1f} | {ideal:.1f} | {wall / ideal:.2f}× | {reqs} | {rerun:.2f} | "
                f"{state.requests - before} (cached {stats2.cached}) |",
                flush=True,
            )
            store.close()


if __name__ == "__main__":
    main()

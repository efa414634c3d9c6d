"""Replay a real arXiv day offline: a local arXiv (RSS + API) built from ``../shared`` and an
OpenAI-compatible LLM stand-in, both on 127.0.0.1. Used by ``digest replay``, the tests and ``bench/``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from digest.replay.arxiv import ArxivState, serve_arxiv
from digest.replay.data import corpus_by_day
from digest.replay.llm import LLMState, serve_llm

__all__ = ["ArxivState", "LLMState", "serve_arxiv", "serve_forever", "serve_llm"]


def serve_forever(
    day: dt.date, shared: Path, port: int, llm_port: int, latency: float, say: Callable[[str], None]
) -> None:
    days = corpus_by_day(shared.resolve())
    n = len(days.get(day.isoformat(), []))
    if not n and day.weekday() < 5:
        near = sorted(days)[-3:]
        say(f"note: the corpus has no papers listed on {day}; recent days: {', '.join(near)}")
    state = ArxivState(day=day, shared=shared.resolve())
    with ExitStack() as stack:
        base = stack.enter_context(serve_arxiv(state, port))
        env = [
            f"DIGEST_ARXIV_RSS_URL={base}/rss/",
            f"DIGEST_ARXIV_API_URL={base}/api/query",
            "DIGEST_ARXIV_DELAY_SECONDS=0",
        ]
        if llm_port:
            url = stack.enter_context(serve_llm(LLMState(latency), llm_port))
            env += [f"DIGEST_LLM_BASE_URL={url}", "DIGEST_LLM_MODEL=replay-stand-in"]
        say(f"replaying arXiv cs.CV {day} ({n} papers) on {base}; Ctrl-C to stop. In another shell:")
        say("export " + " ".join(env) + " DIGEST_TRANSLATE_FALLBACK=none")
        if llm_port:
            say(
                "note: the LLM is a stand-in: its Chinese is canned text built from the abstract (no model, no "
                "cost), shown as 'llm:replay-stand-in'; point DIGEST_LLM_BASE_URL at a real endpoint for real text"
            )
        say(f"digest run --date {day}")
        threading.Event().wait()

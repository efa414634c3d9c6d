"""Replay a real recorded cs.CV day offline, end to end, with local servers (shared by e2e and screenshot).

Starts the product's replay servers (``digest.replay``: a local arXiv serving the day from ../shared/corpus,
the OpenAI-compatible LLM stand-in, an SMTP sink), points DIGEST_* at them and a working directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.replay import ArxivState, LLMState, serve_arxiv, serve_llm
from digest.replay.smtp import Mailbox, serve_smtp


@dataclass
class Replay:
    env: dict[str, str]
    llm: LLMState
    mailbox: Mailbox
    arxiv: ArxivState
    workdir: Path


@contextlib.contextmanager
def replay(day: dt.date, workdir: Path, latency: float = 0.0, subscribers: int = 2) -> Iterator[Replay]:
    arxiv = ArxivState(day=day)
    llm = LLMState(latency=latency)
    with serve_arxiv(arxiv) as aurl, serve_llm(llm) as lurl, serve_smtp() as (box, port):
        env = {
            "DIGEST_ARXIV_RSS_URL": f"{aurl}/rss/",
            "DIGEST_ARXIV_API_URL": f"{aurl}/api/query",
            "DIGEST_ARXIV_DELAY_SECONDS": "0",
            "DIGEST_LLM_BASE_URL": lurl,
            "DIGEST_LLM_MODEL": "replay-stand-in",  # canned answers: no model's quality, no cost
            "DIGEST_LLM_API_KEY": "sk-replay",
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_EMAIL_TO": ",".join(f"reader{i}@example.org" for i in range(1, subscribers + 1)),
            "DIGEST_DB_URL": f"sqlite:///{workdir}/digest.db",
            "DIGEST_OUTPUT_DIR": str(workdir / "output"),
            "DIGEST_TRANSLATE_FALLBACK": "none",
        }
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield Replay(env, llm, box, arxiv, workdir)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

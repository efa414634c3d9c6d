"""Access to ../shared (real data; never copied into the repo)."""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("DIGEST_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        raise FileNotFoundError(
            f"{p} is missing: tests read real data from ../shared beside the repo (or set DIGEST_SHARED_DIR)"
        )
    return p


@cache
def corpus() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with gzip.open(shared_path("corpus", "cs-cv-papers.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            out[p["id"]] = p
    return out


@cache
def corpus_by_day() -> dict[str, list[dict[str, Any]]]:
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in corpus().values():
        if p["source_repo"].startswith("dw-dengwei"):
            days[p["date"]].append(p)
    return dict(days)

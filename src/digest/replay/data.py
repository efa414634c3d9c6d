"""Real data from ``../shared`` (the corpus of real cs.CV papers) for the replay servers. Never copied."""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

from digest.errors import ConfigError


def default_shared() -> Path:
    env = os.environ.get("DIGEST_SHARED_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:  # a source checkout: ../shared beside the repository
        cand = parent.parent / "shared"
        if (cand / "corpus").is_dir():
            return cand
    return Path("../shared")


@cache
def corpus(shared: Path) -> dict[str, dict[str, Any]]:
    path = shared / "corpus" / "cs-cv-papers.jsonl.gz"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: point --shared (or DIGEST_SHARED_DIR) at the shared data folder")
    out: dict[str, dict[str, Any]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            out[p["id"]] = p
    return out


@cache
def corpus_by_day(shared: Path) -> dict[str, list[dict[str, Any]]]:
    """Announcement day → papers, from the corpus's daily source (real cs.CV days)."""
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in corpus(shared).values():
        if p["source_repo"].startswith("dw-dengwei"):
            days[p["date"]].append(p)
    return dict(days)

"""Access to ../shared (real data; never copied into the repo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.replay import data

SHARED = data.default_shared()


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        raise FileNotFoundError(
            f"{p} is missing: tests read real data from ../shared beside the repo (or set DIGEST_SHARED_DIR)"
        )
    return p


def corpus() -> dict[str, dict[str, Any]]:
    return data.corpus(SHARED)


def corpus_by_day() -> dict[str, list[dict[str, Any]]]:
    return data.corpus_by_day(SHARED)

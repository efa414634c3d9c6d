from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from digest.config import Settings
from digest.store import Store
from tests.arxiv_server import ArxivState, serve_arxiv

# a real cs.CV announcement day in ../shared/corpus (Tuesday 2026-06-02, 313 papers)
REAL_DAY = "2026-06-02"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if (k.startswith("DIGEST_") and k != "DIGEST_SHARED_DIR") or k == "OPENAI_API_KEY":
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "none.toml"))


@pytest.fixture
def arxiv_state() -> ArxivState:
    return ArxivState()


@pytest.fixture
def arxiv_url(arxiv_state: ArxivState) -> Iterator[str]:
    with serve_arxiv(arxiv_state) as url:
        yield url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, arxiv_url: str) -> dict[str, str]:
    """DIGEST_* pointing at the local arXiv, a temp store and output dir; fast backoff for tests."""
    values = {
        "DIGEST_ARXIV_RSS_URL": f"{arxiv_url}/rss/",
        "DIGEST_ARXIV_API_URL": f"{arxiv_url}/api/query",
        "DIGEST_ARXIV_DELAY_SECONDS": "0",
        "DIGEST_ARXIV_BACKOFF_SECONDS": "0.01",
        "DIGEST_ARXIV_TIMEOUT": "1",
        "DIGEST_DB_URL": f"sqlite:///{tmp_path}/digest.db",
        "DIGEST_OUTPUT_DIR": str(tmp_path / "output"),
        "DIGEST_TRANSLATE_FALLBACK": "none",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.db_url)
    yield s
    s.close()


def run_cli(*args: str) -> Any:
    """Run the real ``digest`` entry point in-process; returns (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from digest.cli import app

    runner = CliRunner()
    res = runner.invoke(app, list(args), catch_exceptions=True)
    code = res.exit_code
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        from digest.errors import DigestError

        if isinstance(res.exception, DigestError):
            return 1, res.stdout, str(res.exception)
        raise res.exception
    return code, res.stdout, res.stderr

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from digest.config import Settings
from digest.replay import ArxivState, serve_arxiv
from digest.store import Store

# a real cs.CV announcement day in ../shared/corpus (Tuesday 2026-06-02, 313 papers)
REAL_DAY = "2026-06-02"
SMALL_DAY = "2026-06-25"  # a real Thursday with 4 cs.CV papers: cheap to run end to end


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is marked ``integration`` (``make test-fast`` leaves it out)."""
    for item in items:
        if "/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if (k.startswith("DIGEST_") and k != "DIGEST_SHARED_DIR") or k == "OPENAI_API_KEY":
            monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # relative defaults (data/, output/) land in the test's folder


@pytest.fixture
def arxiv_state() -> ArxivState:
    return ArxivState()


@pytest.fixture
def arxiv_url(arxiv_state: ArxivState) -> Iterator[str]:
    with serve_arxiv(arxiv_state) as url:
        yield url


@pytest.fixture
def base_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A temp store and output dir, no network fallbacks, fast backoff (no arXiv server)."""
    values = {
        "DIGEST_ARXIV_RSS_URL": "http://127.0.0.1:9/rss/",
        "DIGEST_ARXIV_API_URL": "http://127.0.0.1:9/api/query",
        "DIGEST_ARXIV_DELAY_SECONDS": "0",
        "DIGEST_ARXIV_BACKOFF_SECONDS": "0.01",
        "DIGEST_ARXIV_MAX_TRIES": "2",
        "DIGEST_ARXIV_TIMEOUT": "2",
        "DIGEST_DB_URL": f"sqlite:///{tmp_path}/digest.db",
        "DIGEST_OUTPUT_DIR": str(tmp_path / "output"),
        "DIGEST_DATA_DIR": str(tmp_path / "data"),
        "DIGEST_TRANSLATE_FALLBACK": "none",
        "DIGEST_LLM_BACKOFF_SECONDS": "0.01",
        "DIGEST_EMAIL_BACKOFF_SECONDS": "0.01",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def env(base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, arxiv_url: str) -> dict[str, str]:
    """``base_env`` pointing at the local arXiv replay server."""
    base_env.update(
        DIGEST_ARXIV_RSS_URL=f"{arxiv_url}/rss/",
        DIGEST_ARXIV_API_URL=f"{arxiv_url}/api/query",
        DIGEST_ARXIV_MAX_TRIES="5",
        DIGEST_ARXIV_TIMEOUT="10",
    )
    for k in ("DIGEST_ARXIV_RSS_URL", "DIGEST_ARXIV_API_URL", "DIGEST_ARXIV_MAX_TRIES", "DIGEST_ARXIV_TIMEOUT"):
        monkeypatch.setenv(k, base_env[k])
    return base_env


@pytest.fixture
def settings(base_env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.db_url)
    yield s
    s.close()


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the real ``digest`` entry point in-process; (exit code, stdout, stderr) — as main() would exit."""
    from typer.testing import CliRunner

    from digest.cli import app
    from digest.errors import DigestError

    runner = CliRunner()
    res: Any = runner.invoke(app, list(args), catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        if isinstance(res.exception, DigestError):
            return res.exception.exit_code, res.stdout, f"error: {res.exception}"
        raise res.exception
    return res.exit_code, res.stdout, res.stderr

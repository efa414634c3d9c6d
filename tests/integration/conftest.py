"""Integration fixtures: the real stand-ins (arXiv replay and LLM over HTTP, SMTP), PostgreSQL when it can start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.replay import LLMState, serve_llm
from digest.replay.smtp import Mailbox, serve_smtp

SECRET = "sk-e2e-SECRET-4242424242"
SMTP_PW = "smtp-SECRET-pw"


@pytest.fixture
def servers(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[LLMState, Mailbox, Path]]:
    """arXiv replay (from ``env``), the LLM stand-in and an SMTP server, with DIGEST_* pointing at them."""
    llm = LLMState()
    with serve_llm(llm) as url, serve_smtp() as (box, port):
        for k, v in {
            "DIGEST_LLM_BASE_URL": url,
            "DIGEST_LLM_API_KEY": SECRET,
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(port),
            "DIGEST_SMTP_PASSWORD": SMTP_PW,
            "DIGEST_EMAIL_TO": "reader1@example.org,reader2@example.org",
        }.items():
            monkeypatch.setenv(k, v)
            env[k] = v
        yield llm, box, Path(env["DIGEST_OUTPUT_DIR"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (Debian's postgresql), or skip when none can start here."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")) if Path("/usr/lib/postgresql").is_dir() else []
    if not found or shutil.which("su") is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = found[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="digest-pg-", dir="/tmp"))
    os.chmod(folder, 0o777)
    data = folder / "data"
    port = _free_port()
    as_root = os.geteuid() == 0

    def run(cmd: str) -> subprocess.CompletedProcess[str]:
        full = ["su", "postgres", "-c", cmd] if as_root else ["sh", "-c", cmd]
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    r = run(f"{bindir}/initdb -D {data} -A trust -U digest")
    if r.returncode != 0:
        pytest.skip(f"initdb failed: {r.stderr[-300:]}")
    r = run(
        f"{bindir}/pg_ctl -D {data} -l {folder}/log -o '-p {port} -k {folder} -c listen_addresses=127.0.0.1' -w start"
    )
    if r.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {r.stderr[-300:]}")
    try:
        yield f"postgresql+psycopg://digest@127.0.0.1:{port}/postgres"
    finally:
        run(f"{bindir}/pg_ctl -D {data} -m immediate stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_db(postgres_url: str) -> str:
    """A fresh database on the session's PostgreSQL server."""
    import sqlalchemy as sa

    name = f"t{int(time.time() * 1000) % 10**9}_{os.getpid()}"
    eng = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    eng.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"

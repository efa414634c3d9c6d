"""Operator mistakes get one line on stderr saying what to do, and the README's exit codes."""

from __future__ import annotations

import socket

import pytest

from digest.config import Settings
from tests.conftest import run_cli


def _held_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def test_a_taken_port_is_exit_2_naming_the_port_and_the_option(settings: Settings) -> None:
    s, port = _held_port()
    with s:
        code, _out, err = run_cli("web", "--port", str(port))
        assert code == 2 and f"127.0.0.1:{port}" in err and "--port" in err and "bug" not in err, err
        code, _out, err = run_cli("replay", "--day", "2026-06-02", "--port", str(port), "--llm-port", "0")
        assert code == 2 and f"port {port}" in err and "--port" in err and "bug" not in err, err


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "--from", "2026-06-05", "--to", "2026-06-01"], "is before --from"),
        (["fetch", "--from", "2026-06-05", "--to", "2026-06-01"], "is before --from"),
        (["run", "--date", "2099-01-02"], "is in the future"),
        (["run", "--from", "2026-06-01", "--to", "2099-01-02"], "is in the future"),
    ],
)
def test_reversed_ranges_and_future_dates_are_usage_errors(settings: Settings, args: list[str], says: str) -> None:
    code, _out, err = run_cli(*args)
    assert code == 2 and says in err, err
    code, out, _ = run_cli("runs", "--format", "jsonl")
    assert out.strip() == ""  # nothing was recorded as a run


def test_a_fresh_install_is_never_scheduled_not_overdue(settings: Settings) -> None:
    code, out, err = run_cli("status")
    assert code == 0 and "never run" in out and "overdue" not in err, out + err
    code, out, _ = run_cli("runs")
    assert code == 0 and "no runs yet" in out and "{" not in out


def test_email_without_a_site_url_warns_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.config import load_settings
    from digest.providers import Providers

    monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
    p = Providers.from_settings(load_settings(), need_llm=False)
    assert [w for w in p.warnings if "DIGEST_SITE_URL" in w] and len(p.warnings) == 1
    monkeypatch.setenv("DIGEST_SITE_URL", "https://digest.example.net/")
    assert not Providers.from_settings(load_settings(), need_llm=False).warnings

"""Settings: one-line errors that say what to fix, unknown variables named, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings, load_settings, unknown_env
from digest.errors import ConfigError, mask_secrets
from tests.conftest import run_cli


def test_bad_json_extra_body_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_LLM_EXTRA_BODY", "{thinking: off")
    with pytest.raises(ConfigError, match="DIGEST_LLM_EXTRA_BODY: not valid JSON") as e:
        load_settings()
    assert "\n" not in str(e.value)


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_toml_syntax_error_and_unknown_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("llm_model = [unclosed\n")
    monkeypatch.setenv("DIGEST_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    bad.write_text('llm_modle = "x"\n')
    with pytest.raises(ConfigError, match="did you mean llm_model"):
        load_settings()
    bad.write_text('llm_model = "qwen-plus"\n')
    assert load_settings().llm_model == "qwen-plus"


def test_bad_db_url_and_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DB_URL", "not a url")
    with pytest.raises(ConfigError, match="DIGEST_DB_URL: not a SQLAlchemy URL"):
        load_settings()
    monkeypatch.setenv("DIGEST_DB_URL", "sqlite:///x.db")
    monkeypatch.setenv("DIGEST_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown timezone"):
        load_settings()


def test_misspelt_variable_is_named_with_the_closest_setting() -> None:
    warnings = unknown_env({"DIGEST_LLM_BASEURL": "x", "DIGEST_DB_URL": "y", "DIGEST_SHARED_DIR": "z"})
    assert warnings == ["unknown setting DIGEST_LLM_BASEURL is ignored (did you mean DIGEST_LLM_BASE_URL?)"]


def test_cli_config_error_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_LLM_EXTRA_BODY", "nope")
    code, _out, err = run_cli("runs")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "DIGEST_LLM_EXTRA_BODY" in err


def test_store_password_is_masked_everywhere() -> None:
    url = "postgresql+psycopg://digest:hunter2-secret@db.example.org:5432/digest"
    assert "hunter2" not in mask_secrets(f"cannot open the store at {url}")
    assert "sk-***" in mask_secrets("key sk-abcdef123456")
    assert "secret-value" not in mask_secrets("x secret-value y", ("secret-value",))


def test_public_settings_never_carry_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_LLM_API_KEY", "sk-live-0123456789abcdef")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pw-9876")
    monkeypatch.setenv("DIGEST_LLM_MODEL", "deepseek-chat")
    s = Settings()
    pub = s.public()
    assert pub["DIGEST_LLM_MODEL"] == "deepseek-chat"
    assert not any("sk-live" in v or "pw-9876" in v for v in pub.values())
    assert set(s.secrets()) == {"sk-live-0123456789abcdef", "pw-9876"}


def test_subscriber_list_keeps_topic_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_EMAIL_TO", "ana@x.org, bo@y.org:clip+editing; cy@z.org:weekly")
    assert Settings().email_to == ["ana@x.org", "bo@y.org:clip+editing", "cy@z.org:weekly"]


def test_configured_secrets_are_masked_in_every_log_record_and_message(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from pydantic import SecretStr

    from digest.errors import DigestError, install_log_masking, mask_secrets, register_secrets

    s = settings.model_copy(update={"smtp_password": SecretStr("plainpassword-no-pattern"),
                                    "db_url": "postgresql+psycopg://digest:S3cretPGpass@db:5432/d"})  # fmt: skip
    register_secrets(s.secrets())
    install_log_masking()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("digest.x").warning("relay said: auth failed for %s", "plainpassword-no-pattern")
        logging.getLogger("prefect.y").warning("db at postgresql://digest:S3cretPGpass@db failed")
    assert "plainpassword-no-pattern" not in caplog.text and "S3cretPGpass" not in caplog.text
    assert "plainpassword-no-pattern" not in str(DigestError("SMTP 535 plainpassword-no-pattern rejected"))
    assert mask_secrets("nothing secret here") == "nothing secret here"

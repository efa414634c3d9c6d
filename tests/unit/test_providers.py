"""Providers are validated at start-up: a bad provider setting fails before any fetch, saying what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings
from digest.errors import ConfigError
from digest.providers import Providers
from tests.conftest import run_cli


def test_openai_embedder_without_url_fails_before_any_work(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="DIGEST_EMBED_BASE_URL"):
        Providers.from_settings(settings.model_copy(update={"embedder": "openai"}))


def test_openai_embedder_for_a_model_of_another_encoder_fails_before_any_work(settings: Settings) -> None:
    s = settings.model_copy(update={"embedder": "openai", "embed_base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(ConfigError, match="retrain with `digest train`"):
        Providers.from_settings(s)


def test_the_cli_says_it_in_one_line_without_fetching(
    base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_EMBEDDER", "openai")
    code, out, err = run_cli("run", "--date", "2026-06-02")
    assert code == 2 and "DIGEST_EMBED_BASE_URL" in err and len(err.strip().splitlines()) == 1 and not out.strip()


def test_a_configured_topic_without_a_head_is_a_warning(settings: Settings, tmp_path: Path) -> None:
    f = tmp_path / "topics.toml"
    f.write_text(
        '[[topics]]\nid = "clip"\nname = "CLIP"\n[[topics]]\nid = "gs"\nname = "3DGS"\nseeds = ["2308.04079"]\n'
    )
    p = Providers.from_settings(settings.model_copy(update={"topics": f}), need_llm=False)
    assert any("gs" in w and "digest train" in w for w in p.warnings)
    assert p.topic_names == {"clip": "CLIP", "editing": "image editing"}  # the model's topics, named


def test_a_broken_topics_file_is_a_config_error(settings: Settings, tmp_path: Path) -> None:
    f = tmp_path / "topics.toml"
    f.write_text('[[topics]]\nid = "Bad Id"\nname = "x"\n')
    with pytest.raises(ConfigError, match="lowercase slug"):
        Providers.from_settings(settings.model_copy(update={"topics": f}))

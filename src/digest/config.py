"""Settings: environment variables ``DIGEST_*`` plus an optional ``digest.toml``.

One :class:`Settings` object is built at the edge (CLI, flow) and passed down; nothing reads the
environment anywhere else. Environment variables win over the TOML file; unknown TOML keys are
rejected so that a typo does not silently fall back to a default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from digest.errors import ConfigError

#: USD per 1M tokens (input, output). Extend with DIGEST_LLM_PRICES='{"model": [in, out]}'.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "deepseek-chat": (0.27, 1.10),
    "qwen-plus": (0.40, 1.20),
    "qwen-turbo": (0.05, 0.20),
}


def _split_list(v: object) -> object:
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("["):
            return json.loads(s)
        return [x.strip() for x in s.replace("+", ",").split(",") if x.strip()]
    return v


class Settings(BaseSettings):
    """Every setting of arxiv-digest. Each field is ``DIGEST_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        extra="forbid",
        populate_by_name=True,
        toml_file=None,
    )

    # --- sources -------------------------------------------------------------------------
    categories: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["cs.CV"], description="arXiv categories, comma-separated"
    )
    arxiv_rss_url: str = Field("https://rss.arxiv.org/rss/", description="base of the daily RSS feed")
    arxiv_api_url: str = Field("https://export.arxiv.org/api/query", description="arXiv API endpoint")
    arxiv_delay_seconds: float = Field(
        3.0, ge=0, description="seconds between API requests (arXiv's terms of use ask for 3)"
    )
    arxiv_timeout: float = Field(30.0, gt=0, description="per-request timeout, seconds")
    arxiv_max_tries: int = Field(5, ge=1, description="tries per request before giving up")
    arxiv_backoff_seconds: float = Field(5.0, ge=0, description="first backoff after 429/503/timeout; doubles")
    arxiv_page_size: int = Field(100, ge=1, le=2000, description="API results per page")
    include_replacements: bool = Field(False, description="keep replace/replace-cross items of the feed")

    # --- store & output ------------------------------------------------------------------
    db_url: str = Field("sqlite:///data/digest.db", description="SQLAlchemy URL of the store")
    output_dir: Path = Field(Path("output"), description="where digests are written")
    timezone: str = Field("America/New_York", description="timezone of arXiv announcements / the schedule")
    schedule_cron: str = Field(
        "30 0 * * 1-5", description="cron of the daily deployment, in DIGEST_TIMEZONE (RSS updates at 00:00 ET Mon–Fri)"
    )

    # --- relevance -----------------------------------------------------------------------
    embedder: Literal["local", "openai"] = Field("local", description="embedding backend")
    embed_base_url: str | None = Field(None, description="OpenAI-compatible embeddings endpoint")
    embed_model: str = Field("text-embedding-3-small", description="model name for the openai embedder")
    embed_api_key: SecretStr | None = Field(None, description="key for the embeddings endpoint")
    relevance_model: Path | None = Field(None, description="trained model file; default: the packaged one")
    relevance_threshold: float | None = Field(
        None, ge=0, le=1, description="decision threshold; default: the model's CV-chosen one"
    )

    # --- llm -----------------------------------------------------------------------------
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL; unset = no LLM")
    llm_model: str = Field("gpt-4o-mini", description="chat model name")
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DIGEST_LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key (falls back to OPENAI_API_KEY)",
    )
    llm_concurrency: int = Field(8, ge=1, le=256, description="parallel LLM calls")
    llm_timeout: float = Field(60.0, gt=0, description="per-request timeout, seconds")
    llm_deadline: float = Field(300.0, gt=0, description="overall deadline per paper, seconds")
    llm_max_tries: int = Field(5, ge=1, description="tries per request on 429/5xx/timeouts")
    llm_backoff_seconds: float = Field(1.0, ge=0, description="first backoff; doubles; Retry-After wins")
    llm_extra_body: dict[str, Any] = Field(
        default_factory=dict, description='JSON merged into each request, e.g. {"thinking": {"type": "disabled"}}'
    )
    llm_response_format: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="structured output mode; auto tries json_schema then json_object"
    )
    llm_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="extra prices, USD per 1M tokens: {model: [in, out]}"
    )
    translate_fallback: Literal["google", "none"] = Field(
        "google", description="fallback translator when the LLM fails (needs internet)"
    )
    translate_timeout: float = Field(20.0, gt=0, description="fallback translator timeout, seconds")
    prompts_dir: Path | None = Field(None, description="prompt templates; default: the shipped ones")

    # --- render & deliver ----------------------------------------------------------------
    empty_day: Literal["skip", "note"] = Field("skip", description="what to write on a day with nothing relevant")
    feed_days: int = Field(14, ge=1, description="days of papers in feed.xml / atom.xml")
    site_url: str = Field("https://example.org/arxiv-digest/", description="public URL of output/ (feed links)")
    smtp_host: str | None = Field(None, description="SMTP server; unset = no email")
    smtp_port: int = Field(25, description="SMTP port")
    smtp_user: str | None = Field(None, description="SMTP login; unset = no login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_tls: Literal["starttls", "ssl", "none"] | None = Field(
        None, description="default by port: 465 ssl, 587 starttls, else none"
    )
    smtp_timeout: float = Field(30.0, gt=0, description="SMTP timeout, seconds")
    email_from: str = Field("arxiv-digest@localhost", description="sender address")
    email_to: Annotated[list[str], NoDecode] = Field(default_factory=list, description="subscribers, comma-separated")
    email_max_tries: int = Field(3, ge=1, description="SMTP tries with backoff")
    email_backoff_seconds: float = Field(2.0, ge=0, description="first SMTP backoff; doubles")

    @field_validator("categories", "email_to", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _split_list(v)

    @field_validator("llm_extra_body", "llm_prices", mode="before")
    @classmethod
    def _json(cls, v: object) -> object:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    @field_validator("arxiv_rss_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.categories:
            raise ValueError("DIGEST_CATEGORIES is empty: give at least one arXiv category, e.g. cs.CV")
        return self

    @property
    def smtp_tls_mode(self) -> str:
        if self.smtp_tls:
            return self.smtp_tls
        return {465: "ssl", 587: "starttls"}.get(self.smtp_port, "none")

    def price(self, model: str) -> tuple[float, float] | None:
        table = {**DEFAULT_PRICES, **self.llm_prices}
        return table.get(model)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = Path(os.environ.get("DIGEST_CONFIG", "digest.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"DIGEST_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON in a DIGEST_* setting: {exc}") from None


def settings_doc() -> list[tuple[str, str, str]]:
    """(env name, default, description) for every setting — used by the README check."""
    rows = []
    for name, f in Settings.model_fields.items():
        default = f.default_factory() if f.default_factory else f.default  # type: ignore[call-arg]
        rows.append((f"DIGEST_{name.upper()}", repr(default), f.description or ""))
    return rows

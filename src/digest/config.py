"""Settings: environment variables ``DIGEST_*`` plus an optional TOML file (``DIGEST_CONFIG``).

One :class:`Settings` object is built at the edge (CLI, flow) and passed down; nothing reads the
environment anywhere else. Environment variables win over the TOML file. Every mistake is one
:class:`~digest.errors.ConfigError` line saying what to fix: unknown TOML keys, a missing or broken
``DIGEST_CONFIG`` file, bad JSON, a malformed database URL. Misspelt ``DIGEST_*`` environment variables
are reported as warnings naming the closest valid setting.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from digest.errors import ConfigError, mask_secrets
from digest.models import EmptyDayMode

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
#: DIGEST_* variables that are not settings but are read by the tooling around them
NON_SETTINGS = {"DIGEST_CONFIG", "DIGEST_SHARED_DIR"}
#: settings that are secrets: never printed, logged, stored, or put into a deployment in plain text
SECRET_FIELDS = (
    "llm_api_key", "embed_api_key", "smtp_password", "feedback_secret", "notify_urls", "alert_notify_urls"
)


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
        3.0, ge=0, description="seconds between arXiv requests (arXiv's terms of use ask for 3)"
    )
    arxiv_timeout: float = Field(
        30.0, gt=0, description="per-request timeout, seconds: the whole answer, however slowly it trickles"
    )
    arxiv_max_tries: int = Field(5, ge=1, description="tries per request before giving up")
    arxiv_backoff_seconds: float = Field(5.0, ge=0, description="first backoff after 429/503/timeout; doubles")
    arxiv_page_size: int = Field(100, ge=1, le=2000, description="API results per page")
    include_replacements: bool = Field(False, description="keep replace/replace-cross items of the feed")

    # --- store, coordination & output ----------------------------------------------------
    db_url: str = Field("sqlite:///data/digest.db", description="SQLAlchemy URL of the store")
    data_dir: Path = Field(Path("data"), description="the reader's own files (retrained model, web secrets)")
    output_dir: Path = Field(Path("output"), description="where digests are written")
    timezone: str = Field("America/New_York", description="timezone of arXiv announcements / the schedule")
    schedule_cron: str = Field(
        "30 0 * * 1-5", description="cron of the daily deployment, in DIGEST_TIMEZONE (RSS updates at 00:00 ET Mon–Fri)"
    )
    lease_seconds: float = Field(120.0, ge=5, description="a day's run lease; renewed while the run works")
    on_busy: Literal["exit", "wait"] = Field(
        "exit", description="another run holds the day: exit 0 saying who (exit), or wait for it (wait)"
    )
    busy_wait_seconds: float = Field(1800.0, ge=0, description="longest wait for another run's lease (wait)")
    catch_up_days: int = Field(7, ge=0, le=31, description="weekdays a daily run looks back for undigested days")

    # --- relevance -----------------------------------------------------------------------
    topics: Path | None = Field(None, description="TOML file of [[topics]] (id, name, seeds, …); default: shipped")
    embedder: Literal["local", "openai"] = Field("local", description="embedding backend")
    embed_base_url: str | None = Field(None, description="OpenAI-compatible embeddings endpoint")
    embed_model: str = Field("text-embedding-3-small", description="model name for the openai embedder")
    embed_api_key: SecretStr | None = Field(None, description="key for the embeddings endpoint")
    relevance_model: Path | None = Field(
        None, description="trained model file; default: DIGEST_DATA_DIR's retrained one, else the packaged one"
    )
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
    llm_timeout: float = Field(
        60.0, gt=0, description="per-request timeout, seconds: the whole answer, however slowly it trickles"
    )
    llm_deadline: float = Field(300.0, gt=0, description="overall deadline per paper, seconds")
    llm_max_attempts: int = Field(
        3, ge=1, description="paid attempts per paper, version, model and prompt across runs: a rejected answer is "
        "asked again by later runs (quoting its problems) until then",
    )
    llm_max_tries: int = Field(5, ge=1, description="tries per request on 429/5xx/timeouts")
    llm_backoff_seconds: float = Field(1.0, ge=0, description="first backoff; doubles; Retry-After wins")
    llm_breaker: int = Field(
        6, ge=1, description="consecutive failed LLM requests (no answer) after which a run stops calling"
    )
    llm_extra_body: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, description='JSON merged into each request, e.g. {"thinking": {"type": "disabled"}}'
    )
    llm_response_format: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="structured output mode; auto tries json_schema then json_object"
    )
    llm_prices: Annotated[dict[str, tuple[float, float]], NoDecode] = Field(
        default_factory=dict, description="extra prices, USD per 1M tokens: {model: [in, out]}"
    )
    translate_fallback: Literal["google", "none"] = Field(
        "google", description="fallback translator when the LLM fails (needs internet)"
    )
    translate_timeout: float = Field(20.0, gt=0, description="fallback translator timeout, seconds")
    prompts_dir: Path | None = Field(None, description="prompt templates; default: the shipped ones")

    # --- render & deliver ----------------------------------------------------------------
    empty_day: EmptyDayMode = Field(EmptyDayMode.skip, description="a day with nothing relevant: skip or note")
    feed_days: int = Field(14, ge=1, description="days of papers in feed.xml / atom.xml")
    site_url: str = Field("https://example.org/arxiv-digest/", description="public URL of output/ (feed links)")
    fulltext_zh_url: str | None = Field(
        None, description="optional link to a Chinese full-text service, {id} = arXiv id (e.g. https://…/{id})"
    )
    email_connections: int = Field(
        4, ge=1, le=32, description="SMTP connections a large edition is sent over at once (50+ readers each)"
    )
    email_max_kb: int = Field(
        95, ge=20, description="HTML email part budget, KB as sent (encoded; Gmail clips at ~102 KB)"
    )
    smtp_host: str | None = Field(None, description="SMTP server; unset = no email")
    smtp_port: int = Field(25, description="SMTP port")
    smtp_user: str | None = Field(None, description="SMTP login; unset = no login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_tls: Literal["starttls", "ssl", "none"] | None = Field(
        None, description="default by port: 465 ssl, 587 starttls, else none"
    )
    smtp_timeout: float = Field(30.0, gt=0, description="SMTP timeout, seconds")
    email_from: str = Field("arxiv-digest@localhost", description="sender address")
    email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="subscribers, comma-separated; 'addr:topic+topic' limits topics, 'addr:weekly' the edition",
    )
    email_max_tries: int = Field(3, ge=1, description="SMTP tries with backoff")
    email_backoff_seconds: float = Field(2.0, ge=0, description="first SMTP backoff; doubles")
    alert_email: str | None = Field(None, description="operator address told about failed, crashed or missing days")
    alert_notify_urls: SecretStr | None = Field(
        None, description="chat channels (Apprise URLs) told the same alerts as DIGEST_ALERT_EMAIL"
    )
    stale_hours: float = Field(6.0, gt=0, description="a weekday with no completed run this long after the cron alerts")
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        "sat", description="weekday the weekly edition is sent (for the previous Mon–Fri)"
    )
    weekly_per_topic: int = Field(10, ge=1, description="papers per topic in the weekly edition")
    reader_extra_max: int = Field(
        10, ge=0, description="papers a reader's personal model may add to their day beyond their topics (paid)"
    )
    reader_extra_day_max: int = Field(
        100, ge=0, description="papers all readers' models together may add on one day, the most wanted first"
    )
    feedback_secret: SecretStr | None = Field(
        None, description="HMAC key for signed vote links in email and pages; unset = same-origin POST only"
    )
    web_url: str | None = Field(None, description="public URL of `digest web` (vote and unsubscribe links)")
    notify_urls: SecretStr | None = Field(
        None,
        description="chat channels as Apprise URLs (Feishu/Lark, WeCom, DingTalk, Slack, Telegram, Discord, ntfy, "
        "json:// webhooks …), comma- or space-separated; URL:topic1+topic2 for some topics only",
    )
    notify_timeout: float = Field(
        30.0, gt=0, description="per chat message, seconds in total: past that it is in doubt and not sent again"
    )
    web_operator: bool = Field(
        False,
        description="`digest web` shows vote controls to every visitor, as the operator's votes (a private, "
        "local server only); otherwise only a reader who opened the page from their email can vote",
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        return _split_list(v)

    @field_validator("email_to", mode="before")
    @classmethod
    def _addresses(cls, v: object) -> object:
        if isinstance(v, str):
            s = v.strip()
            if s.startswith("["):
                return json.loads(s)
            return [x.strip() for x in s.replace(";", ",").split(",") if x.strip()]
        return v

    @field_validator("llm_extra_body", "llm_prices", mode="before")
    @classmethod
    def _json(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        return v

    @field_validator("arxiv_rss_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(v)
        except ArgumentError:
            raise ValueError(
                "not a SQLAlchemy URL (e.g. sqlite:///data/digest.db or postgresql+psycopg://user@host/db)"
            ) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (an IANA name such as America/New_York)") from None
        return v

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

    def secrets(self) -> tuple[str, ...]:
        """The secret values in force (to mask them in any text that leaves the process)."""
        vals = [getattr(self, f) for f in SECRET_FIELDS]
        out = [v.get_secret_value() for v in vals if v is not None and v.get_secret_value()]
        for urls in (self.notify_urls, self.alert_notify_urls):  # each channel's URL on its own
            if urls is not None:
                out += urls.get_secret_value().replace(",", " ").split()
        for url in (self.db_url, self.llm_base_url, self.embed_base_url, self.web_url):  # credentials in URLs
            for m in re.finditer(r"://[^:/@\s]*:([^@/\s]+)@|[?&](?:api[_-]?key|key|token|password|secret)=([^&\s]+)",
                                 url or "", re.IGNORECASE):  # fmt: skip
                out.append(urllib.parse.unquote(m.group(1) or m.group(2)))
        return tuple(dict.fromkeys(v for v in out if v))

    def public(self) -> dict[str, str]:
        """Every non-secret setting that differs from its default, as ``DIGEST_*`` environment strings."""
        out: dict[str, str] = {}
        for name, f in Settings.model_fields.items():
            if name in SECRET_FIELDS:
                continue
            value = getattr(self, name)
            default = f.default_factory() if f.default_factory else f.default  # type: ignore[call-arg]
            if value == default:
                continue
            if isinstance(value, list):
                text = ",".join(str(x) for x in value)
            elif isinstance(value, dict):
                text = json.dumps(value)
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out[f"DIGEST_{name.upper()}"] = text
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The TOML file to read: ``DIGEST_CONFIG`` (must exist), else ``./digest.toml`` if present."""
    env = os.environ if env is None else env
    named = env.get("DIGEST_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"DIGEST_CONFIG names {path}, which does not exist: create it or unset DIGEST_CONFIG")
        return path
    default = Path("digest.toml")
    return default if default.is_file() else None


def unknown_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``DIGEST_*`` environment variables that are not settings, naming the closest one."""
    env = os.environ if env is None else env
    valid = {f"DIGEST_{n.upper()}" for n in Settings.model_fields} | NON_SETTINGS
    out = []
    for k in sorted(env):
        if k.startswith("DIGEST_") and k not in valid:
            close = difflib.get_close_matches(k, sorted(valid), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else " (see `digest settings`)"
            out.append(f"unknown setting {k} is ignored{hint}")
    return out


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning every problem into one readable :class:`ConfigError`."""
    try:
        toml = config_file()
        if toml is not None:
            try:
                tomllib.loads(toml.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{toml} is not valid TOML ({exc}): fix the file or unset DIGEST_CONFIG") from None
            except OSError as exc:
                raise ConfigError(f"cannot read {toml} ({exc.strerror}): check DIGEST_CONFIG") from None
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
    except SettingsError as exc:
        m = re.search(r'field "(\w+)"', str(exc))
        name = f"DIGEST_{m.group(1).upper()}: " if m else ""
        raise ConfigError(f"invalid settings: {name}{mask_secrets(str(exc).splitlines()[0])}") from None


def _problem(e: Any) -> str:
    loc = "_".join(str(p) for p in e["loc"] if not isinstance(p, int)).upper()
    name = loc if loc.startswith(("DIGEST_", "OPENAI_")) else f"DIGEST_{loc}"
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(e["loc"][-1]), list(Settings.model_fields), n=1, cutoff=0.6)
        msg = "unknown setting" + (f" (did you mean {close[0]}?)" if close else "")
    return f"{name}: {msg}"


def settings_doc() -> list[tuple[str, str, str]]:
    """(env name, default, description) for every setting — used by `digest settings` and the README check."""
    rows = []
    for name, f in Settings.model_fields.items():
        default = f.default_factory() if f.default_factory else f.default  # type: ignore[call-arg]
        if hasattr(default, "value"):
            default = default.value
        rows.append((f"DIGEST_{name.upper()}", repr(default), f.description or ""))
    return rows

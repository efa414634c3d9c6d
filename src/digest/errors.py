"""A small, picklable exception tree. Messages say what failed and what to do about it.

Prefect serialises exceptions between processes, so every class keeps its constructor
arguments in ``args`` (via ``__reduce__``). :func:`mask_secrets` is applied to every message
that leaves the process (CLI, run reports, logs), so a password in a URL never shows.
"""

from __future__ import annotations

import re

# user:password@ in URLs; key=… / api_key=… / token=… query values; bearer tokens; sk-… style keys
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_QUERY_SECRET = re.compile(r"(?i)\b(?P<k>api[_-]?key|key|token|password|secret)=(?P<v>[^&\s'\"]+)")
_BEARER = re.compile(r"(?i)\bbearer\s+[\w.~+/-]+=*")
_KEYLIKE = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{12,}")


#: the secret values configured in this process (API keys, SMTP password, DB password, feedback secret):
#: :func:`mask_secrets` knows them without being told, wherever it is called
_KNOWN: set[str] = set()


def register_secrets(values: tuple[str, ...] | list[str]) -> None:
    """Make :func:`mask_secrets` (and every log record, see :func:`install_log_masking`) hide these values."""
    _KNOWN.update(v for v in values if v and len(v) >= 6)  # shorter: too likely to be an ordinary word


def install_log_masking() -> None:
    """Every log record of this process is masked when it is made (any logger, any handler: ours, Prefect's)."""
    import logging

    old = logging.getLogRecordFactory()
    if getattr(old, "digest_masking", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = old(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:
            return record
        masked = mask_secrets(text)
        if masked != text:
            record.msg, record.args = masked, None
        return record

    factory.digest_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def mask_secrets(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with passwords in URLs, key-like tokens, the configured secrets (:func:`register_secrets`) and the
    given literal ``secrets`` replaced by ``***``."""
    for s in sorted({*secrets, *_KNOWN}, key=len, reverse=True):
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['k']}=***", text)
    text = _BEARER.sub("Bearer ***", text)
    return _KEYLIKE.sub(lambda m: f"{m.group(1)}-***", text)


class DigestError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        message = mask_secrets(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DigestError):
    """A setting is missing or invalid (exit status 2: fix the configuration and run again)."""

    exit_code = 2


class UsageError(DigestError):
    """The command line asks for something contradictory (exit status 2)."""

    exit_code = 2


class FetchError(DigestError):
    """arXiv (RSS or API) could not be reached or answered something unusable."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, str | None]]:
        return (type(self), (self.message, self.url))


class FeedParseError(FetchError):
    """The response was fetched but is not an arXiv feed (malformed XML, an HTML page, no channel)."""


class StoreError(DigestError):
    """The store could not be opened or migrated."""


class LLMError(DigestError):
    """An LLM call failed for good (after retries)."""

    def __init__(self, message: str, paper_id: str | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.paper_id = paper_id
        self.unreachable = unreachable  # no answer at all (connection, timeout, 5xx): counts for the breaker

    def __reduce__(self) -> tuple[type[LLMError], tuple[str, str | None, bool]]:
        return (type(self), (self.message, self.paper_id, self.unreachable))


class ModelError(DigestError):
    """The relevance model is missing, incompatible or cannot be trained on the given data."""


class InputError(DigestError):
    """A user-supplied file has a bad line (the message names the line)."""


class AlarmError(DigestError):
    """A run finished but its result must not be trusted (e.g. papers fetched, none summarised)."""


class BusyError(DigestError):
    """Another process holds the day's lease (exit status 0: the other run does the work)."""

    exit_code = 0

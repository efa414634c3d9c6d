"""The chat provider behind one tiny interface, and its OpenAI-compatible implementation.

:class:`ChatClient` has one method, ``complete(messages, timeout)``: it returns the raw answer text and
token counts, or raises :class:`ChatUnavailable` (worth retrying: timeouts, dropped connections, 429,
5xx) or :class:`ChatRefused` (not worth retrying: bad key, unknown model, a rejected request). Retries,
deadlines and the run's circuit breaker are the summarise stage's business (:mod:`digest.retry`), so the
SDK's own retries are off. Tests hand in fakes with the same method.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from digest.config import Settings
from digest.errors import ConfigError, mask_secrets
from digest.models import SummaryFields
from digest.retry import Overdue, Transient, parse_retry_after, within

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatReply:
    content: str
    tokens_in: int
    tokens_out: int


class ChatUnavailable(Transient):
    """No usable answer this time (timeout, connection, 429, 5xx); ``rate_limited`` for 429; ``live`` when the
    endpoint answered at all (an HTTP status): only "no answer" counts towards the breaker."""

    def __init__(
        self, reason: str, retry_after: float | None = None, rate_limited: bool = False, live: bool = False
    ) -> None:
        super().__init__(reason, retry_after)
        self.rate_limited = rate_limited
        self.live = live or rate_limited

    def __reduce__(self) -> tuple[type[ChatUnavailable], tuple[str, float | None, bool, bool]]:  # type: ignore[override]
        return (type(self), (self.reason, self.retry_after, self.rate_limited, self.live))


class ChatRefused(Exception):
    """The endpoint refused the request for a reason retrying cannot fix (key, model, request)."""


class ChatClient(Protocol):
    model: str

    def complete(self, messages: list[dict[str, str]], timeout: float) -> ChatReply: ...


def schema() -> dict[str, Any]:
    names = list(SummaryFields.model_fields)
    s = {  # minimal: the field meanings are in the system prompt, so the schema adds few prompt tokens
        "type": "object",
        "properties": {n: {"type": "string"} for n in names},
        "required": names,
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "digest_summary", "strict": True, "schema": s}}


class OpenAIChat:
    """Any OpenAI-compatible ``/chat/completions`` endpoint, through the ``openai`` SDK (built once, handed in).

    ``DIGEST_LLM_RESPONSE_FORMAT=auto`` asks for ``json_schema`` and, if the endpoint rejects it (400),
    switches to ``json_object`` for the rest of the run.
    """

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.model = settings.llm_model
        self.extra_body = settings.llm_extra_body or None
        self.auto = settings.llm_response_format == "auto"
        self.mode = "json_object" if settings.llm_response_format == "json_object" else "json_schema"
        self._lock = threading.Lock()
        self.base_url = mask_secrets(str(getattr(client, "base_url", "") or settings.llm_base_url or "")).rstrip("/")

    def complete(self, messages: list[dict[str, str]], timeout: float) -> ChatReply:
        """One call that ends within ``timeout`` (plus a little) in total: the SDK's timeouts are per read, so an
        endpoint that trickles a byte every few seconds would hold it for ever; the call runs in a daemon
        thread that is abandoned (and counted as no answer) when the deadline passes."""
        try:
            return within(timeout + 2.0, lambda: self._complete(messages, timeout), "llm-call")
        except Overdue:
            raise ChatUnavailable(f"no complete answer within {timeout:.0f}s") from None

    def _complete(self, messages: list[dict[str, str]], timeout: float) -> ChatReply:
        import openai

        for _ in range(2):
            mode = self.mode
            fmt: dict[str, Any] = schema() if mode == "json_schema" else {"type": "json_object"}
            try:
                resp = self.client.with_options(timeout=timeout).chat.completions.create(
                    model=self.model,
                    messages=messages,
                    response_format=fmt,
                    temperature=0.2,
                    extra_body=self.extra_body,
                )
            except openai.BadRequestError as exc:
                if mode == "json_schema" and self.auto:
                    with self._lock:
                        if self.mode == "json_schema":
                            log.info("endpoint rejected json_schema (%s); using json_object", exc.status_code)
                            self.mode = "json_object"
                    continue
                raise ChatRefused(f"the endpoint rejected the request: {str(exc)[:200]}") from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise ChatRefused(
                    f"LLM endpoint refused ({exc.status_code}): check DIGEST_LLM_API_KEY, DIGEST_LLM_MODEL "
                    "and DIGEST_LLM_BASE_URL"
                ) from None
            except openai.RateLimitError as exc:
                after = parse_retry_after(exc.response.headers.get("retry-after")) if exc.response else None
                raise ChatUnavailable("HTTP 429 (rate limited)", after, rate_limited=True) from None
            except openai.APIStatusError as exc:
                after = parse_retry_after(exc.response.headers.get("retry-after")) if exc.response else None
                if exc.status_code >= 500 or exc.status_code in (408, 409):
                    raise ChatUnavailable(f"HTTP {exc.status_code}", after, live=True) from None
                raise ChatRefused(f"LLM endpoint answered HTTP {exc.status_code}: {str(exc)[:200]}") from None
            except openai.APITimeoutError:
                raise ChatUnavailable(f"timed out after {timeout:.0f}s") from None
            except openai.APIConnectionError as exc:
                raise ChatUnavailable(f"cannot connect to {self.base_url} ({exc.__class__.__name__})") from None
            usage = resp.usage
            content = (resp.choices[0].message.content or "") if resp.choices else ""
            return ChatReply(content, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)
        raise ChatRefused("the endpoint rejected both json_schema and json_object requests")


def openai_client(settings: Settings, base_url: str | None = None, key: Any = None) -> Any:
    """The SDK client (built once at the edge). No SDK retries: ours honour deadlines and the breaker."""
    from openai import OpenAI

    url = base_url or settings.llm_base_url
    if not url:
        raise ConfigError("no LLM endpoint: set DIGEST_LLM_BASE_URL (any OpenAI-compatible /v1 URL)")
    secret = key if key is not None else settings.llm_api_key
    api_key = secret.get_secret_value() if secret is not None else "not-needed"
    return OpenAI(base_url=url, api_key=api_key, timeout=settings.llm_timeout, max_retries=0)

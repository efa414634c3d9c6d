"""One structured chat call per paper through the ``openai`` SDK, with our own retry policy.

The SDK's retries are switched off (``max_retries=0``) so that the backoff honours ``Retry-After``,
counts against the paper's deadline, and is visible in our logs.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import openai
from openai import OpenAI
from pydantic import ValidationError

from digest.config import Settings
from digest.errors import ConfigError, LLMError
from digest.models import SummaryFields

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> OpenAI:
    if not settings.llm_base_url:
        raise ConfigError("no LLM endpoint: set DIGEST_LLM_BASE_URL (any OpenAI-compatible /v1 URL)")
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    return OpenAI(base_url=settings.llm_base_url, api_key=key, timeout=settings.llm_timeout, max_retries=0)


def schema() -> dict[str, Any]:
    names = list(SummaryFields.model_fields)
    s = {  # minimal: the field meanings are in the system prompt, so the schema adds few prompt tokens
        "type": "object",
        "properties": {n: {"type": "string"} for n in names},
        "required": names,
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "digest_summary", "strict": True, "schema": s}}


@dataclass
class Answer:
    fields: SummaryFields | None
    raw: str
    tokens_in: int
    tokens_out: int
    error: str = ""


class ChatCaller:
    """Calls the endpoint; remembers (per run) whether json_schema is supported."""

    def __init__(self, client: OpenAI, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.mode = "json_schema" if settings.llm_response_format in ("auto", "json_schema") else "json_object"

    def _create(self, messages: list[dict[str, str]], mode: str, timeout: float) -> Any:
        fmt: dict[str, Any] = schema() if mode == "json_schema" else {"type": "json_object"}
        kwargs: dict[str, Any] = {
            "model": self.settings.llm_model,
            "messages": messages,
            "response_format": fmt,
            "temperature": 0.2,
            "extra_body": self.settings.llm_extra_body or None,
        }
        return self.client.with_options(timeout=timeout).chat.completions.create(**kwargs)

    def call(self, messages: list[dict[str, str]], deadline: float, paper_id: str) -> Answer:
        s = self.settings
        delay = s.llm_backoff_seconds
        last = ""
        for attempt in range(1, s.llm_max_tries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            mode = self.mode
            try:
                resp = self._create(messages, mode, min(s.llm_timeout, remaining))
            except openai.BadRequestError as exc:
                if mode == "json_schema" and s.llm_response_format == "auto":
                    log.info("endpoint rejected json_schema (%s); using json_object", exc.status_code)
                    self.mode = "json_object"
                    continue
                raise LLMError(
                    f"the LLM endpoint rejected the request for {paper_id}: {_short(exc)}", paper_id
                ) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise LLMError(
                    f"LLM endpoint refused ({exc.status_code}): check DIGEST_LLM_API_KEY, "
                    f"DIGEST_LLM_MODEL and DIGEST_LLM_BASE_URL",
                    paper_id,
                ) from None
            except openai.APIStatusError as exc:
                last = f"HTTP {exc.status_code}"
                wait = _retry_after(exc.response.headers) if exc.response is not None else None
                self._sleep(wait if wait is not None else delay, deadline, attempt, last)
                delay *= 2
                continue
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                last = exc.__class__.__name__
                self._sleep(delay, deadline, attempt, last)
                delay *= 2
                continue
            usage = resp.usage
            tin = usage.prompt_tokens if usage else 0
            tout = usage.completion_tokens if usage else 0
            raw = (resp.choices[0].message.content or "") if resp.choices else ""
            try:
                return Answer(SummaryFields.model_validate_json(_strip_fences(raw)), raw, tin, tout)
            except ValidationError as exc:
                errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:4])
                return Answer(None, raw, tin, tout, f"answer is not the JSON object asked for ({errs})")
        raise LLMError(
            f"no answer for {paper_id} after {s.llm_max_tries} tries or the {s.llm_deadline:g}s "
            f"deadline ({last or 'deadline'})",
            paper_id,
        )

    def _sleep(self, wait: float, deadline: float, attempt: int, why: str) -> None:
        wait = min(wait + random.uniform(0, 0.05 * max(wait, 0.01)), max(0.0, deadline - time.monotonic()))
        log.warning("LLM %s; retry %d in %.2fs", why, attempt, wait)
        time.sleep(wait)


def _retry_after(headers: Any) -> float | None:
    try:
        v = headers.get("retry-after")
        return max(0.0, float(v)) if v is not None else None
    except (TypeError, ValueError):
        return None


def _strip_fences(raw: str) -> str:
    t = raw.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else t
        t = t.rsplit("```", 1)[0]
    if not t.startswith("{") and "{" in t and "}" in t:
        t = t[t.index("{") : t.rindex("}") + 1]
    try:
        json.loads(t)
    except json.JSONDecodeError:
        return raw
    return t


def _short(exc: Exception) -> str:
    return str(exc)[:200]

"""When the LLM fails or is not configured: extractive English TL;DR + machine translation.

A :class:`Translator` is one method, ``translate(text) -> str`` (Chinese). The shipped one is
deep-translator's key-less GoogleTranslator, which has no timeout and a 5,000-character limit: texts are
chunked at sentence boundaries, each call runs under a deadline, and a :class:`~digest.retry.Breaker`
stops calling it after a few failures in a row (offline: fail fast, not once per paper). Whether it is
reachable at all is probed once per run, and only when a paper's summary depends on it.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import threading
from typing import Protocol

from digest.retry import Breaker

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[$\\])")
LIMIT = 4500
PROBE_TEXT = "Image editing with diffusion models."


class Translator(Protocol):
    name: str

    def translate(self, text: str) -> str: ...


def first_sentence(abstract: str, max_words: int = 60) -> str:
    """The extractive TL;DR: the abstract's first sentence (cut at a word boundary if very long)."""
    text = abstract.strip()
    if not text:
        return ""
    first = _SENT.split(text, maxsplit=1)[0].strip()
    words = first.split()
    if len(words) > max_words:
        first = " ".join(words[:max_words]) + " …"
    return first


def chunks(text: str, limit: int = LIMIT) -> list[str]:
    out: list[str] = []
    cur = ""
    for sent in _SENT.split(text):
        while len(sent) > limit:
            out.append(sent[:limit])
            sent = sent[limit:]
        if cur and len(cur) + 1 + len(sent) > limit:
            out.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}".strip()
    if cur:
        out.append(cur)
    return out


class GoogleTranslator:
    """zh-CN through deep-translator's GoogleTranslator; each chunk under ``timeout`` seconds; a breaker."""

    name = "google-translate"

    def __init__(self, timeout: float, breaker_limit: int = 3) -> None:
        from deep_translator import GoogleTranslator as _Google

        self._tr = _Google(source="en", target="zh-CN")
        self._pool = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="translate")
        self.timeout = timeout
        self.breaker = Breaker(breaker_limit)

    def translate(self, text: str) -> str:
        if self.breaker.open:
            raise ConnectionError(
                f"translator unavailable ({self.breaker.limit} failures in a row; last: {self.breaker.last})"
            )
        try:
            parts = []
            for piece in chunks(text):
                fut = self._pool.submit(self._tr.translate, piece)
                try:
                    res = fut.result(timeout=self.timeout)
                except cf.TimeoutError:
                    raise TimeoutError(f"translator gave no answer in {self.timeout:g}s") from None
                if not res or not isinstance(res, str):
                    raise ValueError("translator returned nothing")
                parts.append(res)
        except Exception as exc:
            self.breaker.failure(f"{exc.__class__.__name__}: {str(exc)[:120]}")
            raise
        self.breaker.success()
        return "".join(parts)


class Probe:
    """Is the translator reachable? Asked at most once per run, and only if someone needs the answer."""

    def __init__(self, translator: Translator | None) -> None:
        self.translator = translator
        self._answer: bool | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            if self._answer is None:
                if self.translator is None:
                    self._answer = False
                else:
                    try:
                        self._answer = bool(self.translator.translate(PROBE_TEXT).strip())
                    except Exception:
                        self._answer = False
            return self._answer

"""When the LLM fails or is not configured: extractive English TL;DR + machine translation.

``deep-translator``'s GoogleTranslator needs no key but has no timeout and a 5,000-character limit:
texts are chunked at sentence boundaries under the limit and each call runs under a deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import threading
from collections.abc import Callable

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[$\\])")
LIMIT = 4500

Translate = Callable[[str], str]


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


def google_translator(timeout: float) -> Translate:
    """zh-CN translation through deep-translator's GoogleTranslator, each chunk under ``timeout`` seconds."""
    from deep_translator import GoogleTranslator

    tr = GoogleTranslator(source="en", target="zh-CN")
    pool = cf.ThreadPoolExecutor(max_workers=2, thread_name_prefix="translate")

    def translate(text: str) -> str:
        parts = []
        for piece in chunks(text):
            fut = pool.submit(tr.translate, piece)
            try:
                res = fut.result(timeout=timeout)
            except cf.TimeoutError:
                raise TimeoutError(f"translator gave no answer in {timeout:g}s") from None
            if not res or not isinstance(res, str):
                raise ValueError("translator returned nothing")
            parts.append(res)
        return "".join(parts)

    return with_breaker(translate)


def with_breaker(translate: Translate, limit: int = 3) -> Translate:
    """Stop calling a translator after ``limit`` consecutive failures (offline: fail fast, not once per paper)."""
    fails = [0]
    last = [""]
    lock = threading.Lock()

    def guarded(text: str) -> str:
        with lock:
            if fails[0] >= limit:
                raise ConnectionError(f"translator unavailable ({limit} failures in a row; last: {last[0]})")
        try:
            res = translate(text)
        except Exception as exc:
            with lock:
                fails[0] += 1
                last[0] = f"{exc.__class__.__name__}: {str(exc)[:120]}"
            raise
        with lock:
            fails[0] = 0
        return res

    return guarded

"""A local OpenAI-compatible server on 127.0.0.1: the LLM stand-in of ``digest replay``, tests and benches.

It answers ``/v1/chat/completions`` deterministically from the request: it reads the ``<title>`` and
``<abstract>`` of the user message (already masked: placeholders ``⟦n⟧`` for LaTeX/URLs/code) and the glossary
rules of the system prompt, and writes a Chinese "translation" that keeps every placeholder and number,
uses the kept terms and fixed translations, with a plausible length. It can be told to misbehave, per paper
(keyed by a substring of the title) or for every request: ``slow``, ``hang`` (longer than any timeout),
``429`` (with ``Retry-After``), ``500``, ``invalid_json``, ``english``, ``empty``, ``no_latex`` (drops the
placeholders), ``dup_placeholder``, ``no_glossary``, ``obey_injection``, ``control`` (a U+0008 in the title),
``bidi`` (a U+202E override), ``html`` (``<script>``, ``onerror=`` and ``javascript:`` in the answer);
``reject_json_schema`` makes it answer 400 to ``response_format: json_schema`` like servers that only know
``json_object``. It counts requests, the maximum in flight, and records each request's headers and body.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from digest.llm.validate import term_pattern
from digest.replay.http import send, serve_http

PLACEHOLDER = re.compile(r"⟦\d+⟧")
NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> [点我](javascript:alert(3))'


class LLMState:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.per_paper: dict[str, list[str]] = {}  # title substring → modes, consumed one per request
        self.always: set[str] = set()
        self.every: dict[int, str] = {}  # n → mode on every n-th request (a flaky provider's bad hours)
        self.reject_json_schema = False
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.hang_seconds = 30.0
        self.max_prompt_chars = 0  # the longest request seen (an abstract must be capped before the prompt)
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def modes_for(self, title: str) -> set[str]:
        with self.lock:
            modes = set(self.always)
            for key, queue in self.per_paper.items():
                if key in title and queue:
                    modes.add(queue.pop(0))
            return modes


def glossary_of(system: str) -> tuple[list[str], dict[str, str]]:
    keep_m = re.search(r"Keep these terms in English: ([^.\n]*)\.", system)
    keep = [t.strip() for t in keep_m.group(1).split(",")] if keep_m else []
    fixed_m = re.search(r"Use these translations: ([^\n]*)\.", system)
    fixed = {}
    if fixed_m:
        for pair in fixed_m.group(1).split(";"):
            en, _, zh = pair.partition("=")
            if en.strip() and zh.strip():
                fixed[en.strip()] = zh.strip()
    return keep, fixed


def translate(title: str, abstract: str, modes: set[str], system: str = "") -> dict[str, str]:
    """A deterministic stand-in answer for one (masked) paper."""
    title, abstract = html.unescape(title), html.unescape(abstract)
    first = re.split(r"(?<=[.!?])\s+", abstract.strip(), maxsplit=1)[0]
    keep_terms, fixed = glossary_of(system)
    kept = [t for t in keep_terms if term_pattern(t).search(abstract)]
    fixed_zh = [zh for en, zh in fixed.items() if term_pattern(en, case=False).search(abstract)]
    holders = " ".join(PLACEHOLDER.findall(abstract))
    nums = " ".join(NUM.findall(PLACEHOLDER.sub(" ", abstract)))
    extra = " ".join(kept + fixed_zh)
    body_len = max(10, int(len(PLACEHOLDER.sub("", abstract)) * 0.3) - len(holders) - len(nums) - len(extra))
    seed = int(hashlib.sha256(abstract.encode()).hexdigest()[:6], 16)
    filler = "本文研究视觉模型并提出新的方法实验结果表明其有效"
    text = "".join(filler[(seed + i) % len(filler)] for i in range(body_len))
    zh_abs = f"{text[: body_len // 2]}{holders}，{nums}，{extra}。{text[body_len // 2 :]}。"
    t_kept = [t for t in keep_terms if term_pattern(t).search(title)]
    t_fixed = [zh for en, zh in fixed.items() if term_pattern(en, case=False).search(title)]
    title_zh = f"{title.split()[0] if title.split() else '论文'}：面向视觉任务的新方法研究" + "".join(
        f"（{x}）" for x in t_kept + t_fixed
    )
    out = {
        "tldr_en": first if len(first.split()) <= 60 else " ".join(first.split()[:40]) + ".",
        "title_zh": title_zh,
        "tldr_zh": "本文提出了一种新方法，在多个基准上取得了更好的结果。",
        "abstract_zh": zh_abs,
    }
    if "english" in modes:
        out["abstract_zh"] = abstract
    if "empty" in modes:
        out["tldr_zh"] = ""
    if "no_latex" in modes:
        out["abstract_zh"] = PLACEHOLDER.sub("", out["abstract_zh"])
    if "dup_placeholder" in modes and holders:
        out["abstract_zh"] += holders.split()[0]
    if "no_glossary" in modes:
        for t in kept:
            out["abstract_zh"] = out["abstract_zh"].replace(t, "")
    if "loop" in modes:  # a model stuck in a repetition loop
        out["title_zh"] = out["title_zh"] + "重复的标题" * 45000
    if "control" in modes:
        out["title_zh"] = out["title_zh"][:3] + "\u0008" + out["title_zh"][3:]
    if "bidi" in modes:
        out["tldr_zh"] = "\u202e" + out["tldr_zh"]
    if "html" in modes:
        out["title_zh"] = HOSTILE + out["title_zh"]
        out["tldr_zh"] = out["tldr_zh"] + HOSTILE
        out["tldr_en"] = out["tldr_en"] + " <script>alert(4)</script>"
    if "obey_injection" in modes and "ignore previous instructions" in abstract.lower():
        out = {"tldr_en": "HACKED", "title_zh": "HACKED", "tldr_zh": "HACKED", "abstract_zh": "HACKED"}
    return out


def _handler(state: LLMState) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            send(self, status, json.dumps(obj, ensure_ascii=False).encode(), "application/json", headers)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(
                    200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "test"}]}
                )
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(n) or b"{}")
            with state.lock:
                state.requests += 1
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                state.log.append({"path": self.path, "headers": dict(self.headers), "body": req})
            try:
                if self.path.endswith("/embeddings"):
                    self._embeddings(req)
                else:
                    self._chat(req)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _embeddings(self, req: dict[str, Any]) -> None:
            inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
            data = []
            for i, t in enumerate(inputs):
                h = hashlib.sha256(t.encode()).digest()
                data.append({"object": "embedding", "index": i, "embedding": [b / 255 - 0.5 for b in h[:16]]})
            self._json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": req.get("model"),
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                },
            )

        def _chat(self, req: dict[str, Any]) -> None:
            user = next((m["content"] for m in req["messages"] if m["role"] == "user"), "")
            system = next((m["content"] for m in req["messages"] if m["role"] == "system"), "")
            tm = re.search(r"<title>(.*?)</title>", user, re.S)
            am = re.search(r"<abstract>(.*?)</abstract>", user, re.S)
            title, abstract = (tm.group(1) if tm else ""), (am.group(1) if am else "")
            modes = state.modes_for(title)
            with state.lock:
                modes |= {mode for n, mode in state.every.items() if state.requests % n == 0}
            if state.latency:
                time.sleep(state.latency)
            if "slow" in modes:
                time.sleep(5)
            if "hang" in modes:
                time.sleep(state.hang_seconds)
            fmt = (req.get("response_format") or {}).get("type")
            if state.reject_json_schema and fmt == "json_schema":
                self._json(
                    400,
                    {
                        "error": {
                            "message": "response_format json_schema is not supported",
                            "type": "invalid_request_error",
                        }
                    },
                )
                return
            if "429" in modes:
                self._json(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.2"})
                return
            if "500" in modes:
                self._json(500, {"error": {"message": "internal error"}})
                return
            content = json.dumps(translate(title, abstract, modes, system), ensure_ascii=False)
            if "invalid_json" in modes:
                content = "Sure! Here is the summary: {tldr_en: oops"
            if "truncated" in modes:
                content = content[: len(content) // 2]
            prompt_chars = sum(len(m["content"]) for m in req["messages"])
            with state.lock:
                state.max_prompt_chars = max(state.max_prompt_chars, prompt_chars)
            self._json(
                200,
                {
                    "id": "chatcmpl-local",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": req.get("model"),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_chars // 4,
                        "completion_tokens": len(content) // 2,
                        "total_tokens": prompt_chars // 4 + len(content) // 2,
                    },
                },
            )

    return H


@contextmanager
def serve_llm(state: LLMState, port: int = 0) -> Iterator[str]:
    with serve_http(_handler(state), port) as bound:
        yield f"http://127.0.0.1:{bound}/v1"

"""A local OpenAI-compatible server on 127.0.0.1 for tests and benches.

It answers ``/v1/chat/completions`` deterministically from the request: it reads the ``<title>`` and
``<abstract>`` of the user message and writes a Chinese "translation" that keeps every LaTeX span and
number, with a plausible length. It can be told to misbehave, per paper (keyed by a substring of the
title) or for every request: ``slow``, ``429`` (with ``Retry-After``), ``500``, ``invalid_json``,
``english``, ``empty``, ``no_latex``, ``obey_injection``; ``reject_json_schema`` makes it answer 400 to
``response_format: json_schema`` like servers that only know ``json_object``. It counts requests, the
maximum number in flight, and records each request's headers and body.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_helpers import send, serve_http

LATEX = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")
NUM = re.compile(r"\d+(?:\.\d+)?")


class LLMState:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.per_paper: dict[str, list[str]] = {}  # title substring → modes, consumed one per request
        self.always: set[str] = set()
        self.reject_json_schema = False
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def modes_for(self, title: str) -> set[str]:
        with self.lock:
            modes = set(self.always)
            for key, queue in self.per_paper.items():
                if key in title and queue:
                    modes.add(queue.pop(0))
            return modes


def translate(title: str, abstract: str, modes: set[str]) -> dict[str, str]:
    first = re.split(r"(?<=[.!?])\s+", abstract.strip(), maxsplit=1)[0]
    keep = " ".join(LATEX.findall(abstract))
    nums = " ".join(NUM.findall(LATEX.sub(" ", abstract)))
    body_len = max(10, int(len(abstract) * 0.3) - len(keep) - len(nums))
    seed = int(hashlib.sha256(abstract.encode()).hexdigest()[:6], 16)
    filler = "本文研究视觉模型并提出新的方法实验结果表明其有效"
    text = "".join(filler[(seed + i) % len(filler)] for i in range(body_len))
    zh_abs = f"{text[: body_len // 2]}{keep}，{nums}。{text[body_len // 2 :]}。"
    out = {
        "tldr_en": first if len(first.split()) <= 60 else " ".join(first.split()[:40]) + ".",
        "title_zh": f"{title.split()[0]}：面向视觉任务的新方法研究",
        "tldr_zh": "本文提出了一种新方法，在多个基准上取得了更好的结果。",
        "abstract_zh": zh_abs,
    }
    if "english" in modes:
        out["abstract_zh"] = abstract
    if "empty" in modes:
        out["tldr_zh"] = ""
    if "no_latex" in modes:
        out["abstract_zh"] = LATEX.sub("", out["abstract_zh"])
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
            title = (re.search(r"<title>(.*?)</title>", user, re.S) or [None, ""])[1]
            abstract = (re.search(r"<abstract>(.*?)</abstract>", user, re.S) or [None, ""])[1]
            modes = state.modes_for(title)
            if state.latency:
                time.sleep(state.latency)
            if "slow" in modes:
                time.sleep(5)
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
            content = json.dumps(translate(title, abstract, modes), ensure_ascii=False)
            if "invalid_json" in modes:
                content = "Sure! Here is the summary: {tldr_en: oops"
            prompt_chars = sum(len(m["content"]) for m in req["messages"])
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()
    with serve_llm(LLMState(args.latency), args.port) as url:
        print(f"fake OpenAI-compatible server on {url} (DIGEST_LLM_BASE_URL={url})", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()

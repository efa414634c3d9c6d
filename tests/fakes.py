"""In-process fakes for the provider seam, and small factories. Handed in exactly where the real ones go."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np

from digest.config import Settings
from digest.llm.client import ChatRefused, ChatReply, ChatUnavailable
from digest.llm.prompts import load_prompts
from digest.models import Paper
from digest.providers import Providers
from digest.relevance.data import Example
from digest.relevance.model import Params
from digest.relevance.train import fit
from digest.replay.llm import translate
from digest.retry import Transient
from digest.sources.http import ArxivClient
from digest.store import Store
from digest.topics import Topic, Topics


class FakeChat:
    """The LLM seam: deterministic answers from the request (same generator as the replay stand-in)."""

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.calls = 0
        self.history: list[list[dict[str, str]]] = []  # every request's messages, in order
        self.per_paper: dict[str, list[str]] = {}
        self.always: set[str] = set()
        self.lock = threading.Lock()
        self.seen: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], timeout: float) -> ChatReply:
        self.history.append(messages)
        system = next(m["content"] for m in messages if m["role"] == "system")
        user = next(m["content"] for m in messages if m["role"] == "user")
        tm = re.search(r"<title>(.*?)</title>", user, re.S)
        am = re.search(r"<abstract>(.*?)</abstract>", user, re.S)
        title, abstract = (tm.group(1) if tm else ""), (am.group(1) if am else "")
        with self.lock:
            self.calls += 1
            self.seen.append(messages)
            modes = set(self.always)
            for key, queue in self.per_paper.items():
                if key in html.unescape(title) and queue:
                    modes.add(queue.pop(0))
        if "down" in modes:
            raise ChatUnavailable("cannot connect (fake)")
        if "429" in modes:
            raise ChatUnavailable("HTTP 429", retry_after=0.0, rate_limited=True)
        if "refused" in modes:
            raise ChatRefused("LLM endpoint refused (401)")
        import json

        content = json.dumps(translate(title, abstract, modes, system), ensure_ascii=False)
        if "invalid_json" in modes:
            content = "Sure! {tldr_en: oops"
        return ChatReply(content, len(user) // 4, len(content) // 2)


class FakeTranslator:
    name = "fake-translate"

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.calls = 0

    def translate(self, text: str) -> str:
        self.calls += 1
        if not self.up:
            raise ConnectionError("translator offline (fake)")
        return "机器翻译：" + "中" * max(4, len(text) // 3) + " ".join(re.findall(r"\d+(?:\.\d+)?", text))


class HashEmbedder:
    """Bag of hashed words: papers sharing words are close. Fast and deterministic."""

    def __init__(self, name: str = "hash-64", dim: int = 64) -> None:
        self.name = name
        self.dim = dim
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z]{3,}", t.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(n, 1e-9)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.down = False
        self.lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Any]:
        if self.down:
            raise Transient("ConnectionRefusedError: [Errno 111] Connection refused (fake)")
        yield self

    def send(self, msg: EmailMessage) -> None:
        with self.lock:
            self.sent.append(msg)


TOPIC_WORDS = {
    "clip": "contrastive language image pretraining clip zero-shot vision-language alignment",
    "editing": "image editing instruction diffusion inpainting local edits",
    "gs": "gaussian splatting radiance field novel view synthesis scene",
    "other": "object detection segmentation tracking lidar depth estimation",
}


def paper(i: int, topic: str = "other", day: dt.date | None = None, title: str | None = None, **kw: Any) -> Paper:
    words = TOPIC_WORDS[topic]
    return Paper(
        id=f"2606.{i:05d}",
        version=kw.pop("version", 1),
        title=title or f"Paper {i} on {words.split()[0]} {words.split()[1]}",
        abstract=kw.pop("abstract", f"We study {words}. Our method improves {words.split()[-1]} by {i % 7 + 1}.5%."),
        authors=kw.pop("authors", ["Ada Lovelace", "Alan Turing"]),
        categories=["cs.CV"],
        primary_category="cs.CV",
        announce_type="new",
        announced=day,
        **kw,
    )


def tiny_model(topics: Sequence[str] = ("clip", "editing"), embedder: HashEmbedder | None = None) -> Any:
    """A relevance model trained in a second on synthetic papers, one head per topic."""
    emb_ = embedder or HashEmbedder()
    ex = []
    n = 0
    for t in [*topics, "other"]:
        for _ in range(12):
            n += 1
            p = paper(n, t)
            ex.append(Example(p, 0 if t == "other" else 2, [] if t == "other" else [t]))
    e = emb_.embed([f"{x.paper.title}. {x.paper.abstract}" for x in ex])
    m = fit(ex, e, list(topics), Params(w=0.5, c_tfidf=4.0, c_emb=4.0), emb_.name)
    m.threshold = 0.5
    m.card = {"trained": "test"}
    return m


def topics_config(ids: Sequence[str]) -> Topics:
    names = {"clip": "CLIP / contrastive VLM", "editing": "image editing", "gs": "3D Gaussian splatting"}
    return Topics(topics=[Topic(id=i, name=names.get(i, i)) for i in ids])


def providers(
    settings: Settings, store: Store | None = None, topics: Sequence[str] = ("clip", "editing"), **kw: Any
) -> Providers:
    """Providers with in-process fakes (override any with keyword arguments)."""
    embedder = kw.pop("embedder", HashEmbedder())
    model = kw.pop("model", None) or tiny_model(topics, embedder)
    return Providers(
        settings=settings,
        store=store or Store(settings.db_url),
        arxiv=kw.pop("arxiv", ArxivClient(settings)),
        topics=kw.pop("topics_cfg", topics_config(topics)),
        model=model,
        prompts=load_prompts(settings),
        chat=kw.pop("chat", FakeChat()),
        translator=kw.pop("translator", None),
        mailer=kw.pop("mailer", None),
        subscribers=kw.pop("subscribers", []),
        embedder_override=embedder,
        **kw,
    )


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


class FakeArxiv:
    """arXiv in process (an httpx transport): an RSS day and API answers from a small list of papers.

    ``papers``: dicts with id, title, abstract, date (announcement day) and ``submitted`` (aware datetime).
    ``script``: faults for the next requests (an int status, "html", "empty").
    """

    def __init__(self, papers: list[dict[str, Any]], rss_day: dt.date | None = None) -> None:
        self.papers = papers
        self.rss_day = rss_day
        self.script: list[Any] = []
        self.requests: list[str] = []

    def transport(self) -> Any:
        import httpx

        from digest.replay.arxiv import MAINTENANCE, atom_entry, atom_feed, rss_feed

        def handler(req: httpx.Request) -> httpx.Response:
            self.requests.append(str(req.url))
            fault = self.script.pop(0) if self.script else None
            if isinstance(fault, int):
                return httpx.Response(fault)
            if fault == "html":
                return httpx.Response(200, content=MAINTENANCE, headers={"content-type": "text/html"})
            if req.url.path.startswith("/rss/"):
                day = self.rss_day or dt.date(2026, 6, 2)
                ps = [] if fault == "empty" else [p for p in self.papers if p["date"] == day.isoformat()]
                return httpx.Response(200, content=rss_feed(day, ["cs.CV"], ps).encode(),
                                      headers={"content-type": "application/rss+xml"})  # fmt: skip
            q = dict(req.url.params)
            start, per = int(q.get("start", 0)), int(q.get("max_results", 100))
            if "id_list" in q:
                ids = q["id_list"].split(",")
                found = [p for p in self.papers if p["id"] in ids]
            else:
                m = re.search(r"submittedDate:\[(\d{12}) TO (\d{12})\]", q.get("search_query", ""))
                assert m
                lo = dt.datetime.strptime(m.group(1), "%Y%m%d%H%M").replace(tzinfo=dt.UTC)
                hi = dt.datetime.strptime(m.group(2), "%Y%m%d%H%M").replace(tzinfo=dt.UTC) + dt.timedelta(minutes=1)
                found = [p for p in self.papers if lo <= p["submitted"] < hi]
            page = found[start : start + per]
            body = atom_feed([atom_entry(p, p["submitted"]) for p in page], len(found), start, per)
            return httpx.Response(200, content=body.encode(), headers={"content-type": "application/atom+xml"})

        return httpx.MockTransport(handler)


def arxiv_paper(i: int, day: dt.date, topic: str = "other", comment: str | None = None) -> dict[str, Any]:
    """A paper announced on ``day`` (submitted inside its real submission window)."""
    from digest.sources.calendar import submission_window

    start, _end = submission_window(day)
    p = paper(i, topic)
    return {
        "id": p.id, "title": p.title, "abstract": p.abstract, "authors": p.authors, "categories": ["cs.CV"],
        "primary_category": "cs.CV", "date": day.isoformat(), "version": "1", "comment": comment,
        "submitted": start + dt.timedelta(minutes=7 * i),
    }  # fmt: skip

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from digest.config import Settings
from digest.models import DaySource, DayState, Paper, Relevance, Summary, SummaryStatus, SummaryTier
from digest.replay.llm import translate
from digest.store import Store
from tests.conftest import REAL_DAY
from tests.shared import corpus_by_day
from tests.unit.render.stored import render_day

DAY = dt.date.fromisoformat(REAL_DAY)
NAMES = {"clip": "CLIP / contrastive VLM", "editing": "image editing"}
HOSTILE = [
    "Pipes | in | titles: A|B testing for CLIP",
    "<script>alert('x')</script> Editing & <b>bold</b> images",
    r"Bounds on $\|x\|_2$ and $a|b$ for contrastive [learning](javascript:alert(1)) ![img](http://evil/x.png) `code`",
    "🚀 Emoji titles 🎨 for image editing ✨",
    "A very long title " + "that keeps going " * 30,
]
HOSTILE_ZH = '<img src=x onerror="alert(1)"><script>alert(2)</script>[点我](javascript:alert(3))标题'


def populate(store: Store, n: int = 12, hostile: bool = True, failed: int = 1) -> list[Paper]:
    """n real papers of the real day, all relevant, with deterministic summaries; ``failed`` of them fell back."""
    raw = corpus_by_day()[REAL_DAY][:n]
    papers = []
    for i, p in enumerate(raw):
        title = HOSTILE[i] if hostile and i < len(HOSTILE) else p["title"]
        papers.append(Paper(id=p["id"], version=1, title=title, abstract=p["abstract"], announce_type="new",
                            comment="Accepted to CVPR 2026. 12 pages. Code: https://github.com/acme/tool" if i == 6 else None))  # fmt: skip
    store.upsert_papers(papers, DaySource.rss, DAY)
    store.record_day(DAY, DayState.announced, DaySource.rss, len(papers))
    store.save_relevance(
        Relevance(id=p.id, version=1, score=round(0.9 - i * 0.03, 3), relevant=True,
                  topics={"clip": round(0.9 - i * 0.03, 3), "editing": 0.2 if i % 2 else 0.95 - i * 0.03})
        for i, p in enumerate(reversed(papers))  # scores increase along the feed order: rendering must sort
    )  # fmt: skip
    for i, p in enumerate(papers):
        if i < failed:
            store.save_summary(Summary(id=p.id, version=1, tldr_en="First sentence.", tier=SummaryTier.extractive,
                                       status=SummaryStatus.fallback, backend="extractive",
                                       reason="LLM answer rejected: wrong language"))  # fmt: skip
            continue
        f = translate(p.title, p.abstract, set())
        if hostile and i == 2:
            f["title_zh"], f["tldr_zh"] = HOSTILE_ZH, HOSTILE_ZH + "\u202e反转"
        store.save_summary(Summary(id=p.id, version=1, tier=SummaryTier.llm, backend="llm:gpt-4o-mini",
                                   model="gpt-4o-mini", prompt_hash="h", **f))  # fmt: skip
    return papers


@pytest.fixture
def rendered(settings: Settings, store: Store) -> Iterator[tuple[Settings, Store, list[Paper]]]:
    papers = populate(store)
    render_day(DAY, settings, store, NAMES)
    yield settings, store, papers

"""The classify stage: embed (cached in the store), score per topic, explain, record.

Topics come from the loaded model (it records what it was trained on); the threshold from the model
unless ``DIGEST_RELEVANCE_THRESHOLD`` overrides it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

import numpy as np

from digest.errors import InputError, ModelError
from digest.models import ClassifyResult, Paper, Relevance
from digest.relevance.embed import Embedder, embed_papers
from digest.relevance.model import RelevanceModel
from digest.store import Store

Tick = Callable[[int], None]


def check_embedder(model: RelevanceModel, embedder: Embedder) -> None:
    if model.embedder != embedder.name:
        raise ModelError(
            f"the relevance model was trained on {model.embedder!r} embeddings but the embedder is "
            f"{embedder.name!r}: retrain with `digest train` or set DIGEST_EMBEDDER back"
        )


def score(
    papers: Sequence[Paper],
    model: RelevanceModel,
    emb: np.ndarray,
    threshold: float | None = None,
    explain: bool = True,
) -> list[Relevance]:
    """Relevance of each paper, in order, from its embedding. Pure."""
    if not papers:
        return []
    scores = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    thr = model.thresholds(threshold)
    margins = scores - thr  # a topic with its own (seed-calibrated) threshold competes on its margin
    best = [model.topics[int(np.argmax(m))] for m in margins]
    neigh = model.neighbours(emb, list(best)) if explain else [[] for _ in papers]
    out = []
    for p, s, m, nb, b in zip(papers, scores, margins, neigh, best, strict=True):
        top = float(np.clip(s.max(), 0.0, 1.0))
        out.append(
            Relevance(
                id=p.id,
                version=p.version,
                score=round(top, 6),
                relevant=bool((m >= 0).any()),
                topics={t: round(float(v), 6) for t, v in zip(model.topics, s, strict=True)},
                neighbours=nb,
                model=model.name,
                topic=b,
            )
        )
    return out


def classify(
    papers: Sequence[Paper],
    model: RelevanceModel,
    embedder: Embedder,
    store: Store | None,
    threshold: float | None = None,
    tick: Tick | None = None,
    explain: bool = True,
) -> ClassifyResult:
    """Embed (only papers not cached), score and — with a store — record the decisions."""
    check_embedder(model, embedder)
    t0 = time.perf_counter()
    emb, fresh = embed_papers(papers, embedder, store, progress=tick)
    t1 = time.perf_counter()
    rel = score(papers, model, emb, threshold, explain)
    if store is not None:
        store.save_relevance(rel)
    return ClassifyResult(
        relevance=rel, embedded=fresh, embed_seconds=round(t1 - t0, 3), seconds=round(time.perf_counter() - t1, 3)
    )


# --- the batch contract: JSONL in → JSONL out ------------------------------------------------
def read_input_jsonl(f: TextIO) -> list[Paper]:
    papers = []
    for n, line in enumerate(f, 1):
        if not line.strip():
            raise InputError(f"line {n}: empty line (every line must be a JSON object with id, title, abstract)")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"line {n}: expected a JSON object")
        missing = [k for k in ("id", "title", "abstract") if not isinstance(obj.get(k), str)]
        if missing:
            raise InputError(f"line {n}: missing or non-string field(s): {', '.join(missing)}")
        try:
            version = int(str(obj.get("version") or 1).lstrip("v"))
        except ValueError:
            version = 1
        papers.append(Paper(id=obj["id"] or f"line-{n}", version=version, title=obj["title"], abstract=obj["abstract"]))
    return papers


def classify_rows(papers: Sequence[Paper], rel: Sequence[Relevance]) -> Iterator[str]:
    for p, r in zip(papers, rel, strict=True):
        yield json.dumps({"id": p.id, "relevant": r.relevant, "score": r.score, "topics": r.topics}, ensure_ascii=False)

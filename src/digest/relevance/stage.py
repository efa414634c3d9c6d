"""The relevance stage: load the model, embed (cached), score, explain; train and evaluate.

I/O at the edges only: files are read/written by the caller-facing helpers at the bottom.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from digest.config import Settings
from digest.errors import InputError, ModelError
from digest.models import Paper, Relevance
from digest.relevance.embed import Embedder, embed_papers, make_embedder
from digest.relevance.keywords import keyword_topics
from digest.relevance.model import (
    DEFAULT_MODEL,
    Example,
    Params,
    RelevanceModel,
    choose_threshold,
    fit,
    metrics,
    model_card,
    oof_scores,
)
from digest.relevance.readinglist import normalise_title, parse_reading_list, topic_of
from digest.store import Store

Tick = Callable[[int], None]


def load_model(settings: Settings) -> RelevanceModel:
    return RelevanceModel.load(settings.relevance_model or DEFAULT_MODEL)


def check_embedder(model: RelevanceModel, embedder: Embedder) -> None:
    if model.embedder != embedder.name:
        raise ModelError(
            f"the relevance model was trained on {model.embedder!r} embeddings but the embedder is "
            f"{embedder.name!r}: retrain with `digest train` or set DIGEST_EMBEDDER back"
        )


def score_papers(
    papers: Sequence[Paper],
    model: RelevanceModel,
    embedder: Embedder,
    store: Store | None,
    threshold: float | None = None,
    tick: Tick | None = None,
    explain: bool = True,
    emb: np.ndarray | None = None,
) -> list[Relevance]:
    """Relevance of each paper, in order (embeddings cached in ``store`` when given, or passed in ``emb``)."""
    check_embedder(model, embedder)
    if not papers:
        return []
    if emb is None:
        emb = embed_papers(papers, embedder, store, progress=tick)
    scores = model.topic_scores([p.title for p in papers], [p.abstract for p in papers], emb)
    thr = model.threshold if threshold is None else threshold
    neigh = model.neighbours(emb) if explain else [[] for _ in papers]
    out = []
    for p, s, nb in zip(papers, scores, neigh, strict=True):
        score = float(np.clip(s.max(), 0.0, 1.0))
        out.append(
            Relevance(
                id=p.id,
                version=p.version,
                score=round(score, 6),
                relevant=score >= thr,
                topics={t: round(float(v), 6) for t, v in zip(model.topics, s, strict=True)},
                neighbours=nb,
                model=model.name,
            )
        )
    return out


def classify_day(
    papers: Sequence[Paper],
    settings: Settings,
    store: Store,
    tick: Tick | None = None,
    embedder: Embedder | None = None,
    emb: np.ndarray | None = None,
) -> list[Relevance]:
    model = load_model(settings)
    rel = score_papers(
        papers, model, embedder or make_embedder(settings), store, settings.relevance_threshold, tick, emb=emb
    )
    store.save_relevance(rel)
    return rel


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


# --- training data ----------------------------------------------------------------------------
@dataclass
class Label:
    id: str
    label: int
    topics: list[str]


def read_labels(path: Path) -> list[Label]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
                lab = int(o["label"])
                topics = list(o.get("topics") or [])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{path}:{n}: expected {{id, label, topics}} ({exc})") from None
            if lab not in (0, 1, 2):
                raise InputError(f"{path}:{n}: label must be 0, 1 or 2, not {lab}")
            out.append(Label(str(o["id"]).split("v")[0] if "v" in str(o["id"])[5:] else str(o["id"]), lab, topics))
    return out


def read_corpus(path: Path | None) -> dict[str, Paper]:
    if path is None:
        return {}
    opener: Any = gzip.open if path.suffix == ".gz" else open
    out = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            try:
                v = int(str(o.get("version") or 1).lstrip("v"))
            except ValueError:
                v = 1
            out[o["id"]] = Paper(
                id=o["id"],
                version=v,
                title=o["title"],
                abstract=o["abstract"],
                categories=o.get("categories") or [],
                authors=o.get("authors") or [],
            )
    return out


def resolve_papers(ids: Iterable[str], corpus: dict[str, Paper], store: Store | None) -> dict[str, Paper]:
    ids = list(ids)
    found = {i: corpus[i] for i in ids if i in corpus}
    rest = [i for i in ids if i not in found]
    if rest and store is not None:
        found.update({p.id: p for p in store.get_papers(rest)})
    return found


@dataclass
class ReadingListReport:
    path: Path
    items: int
    resolved: list[str]
    unresolved: list[str]


def reading_list_examples(
    paths: Sequence[Path],
    corpus: dict[str, Paper],
    store: Store | None,
) -> tuple[list[Example], list[ReadingListReport]]:
    by_title = {normalise_title(p.title): p for p in corpus.values()}
    examples: list[Example] = []
    reports = []
    for path in paths:
        items = parse_reading_list(path.read_text(encoding="utf-8"))
        topic = topic_of(path)
        resolved, unresolved = [], []
        by_id = resolve_papers([i.arxiv_id for i in items if i.arxiv_id], corpus, store)
        for it in items:
            p = by_id.get(it.arxiv_id) if it.arxiv_id else None
            if p is None and it.title:
                p = by_title.get(normalise_title(it.title))
            if p is None:
                unresolved.append(it.arxiv_id or (it.title or "")[:80])
                continue
            resolved.append(p.id)
            examples.append(Example(p.id, p.version, p.title, p.abstract, 2, [topic]))
        reports.append(ReadingListReport(path, len(items), resolved, unresolved))
    return examples, reports


def build_examples(
    labels: list[Label], corpus: dict[str, Paper], store: Store | None
) -> tuple[list[Example], list[str]]:
    papers = resolve_papers([lab.id for lab in labels], corpus, store)
    missing = [lab.id for lab in labels if lab.id not in papers]
    ex = [
        Example(lab.id, papers[lab.id].version, papers[lab.id].title, papers[lab.id].abstract, lab.label, lab.topics)
        for lab in labels
        if lab.id in papers
    ]
    return ex, missing


def embed_examples(ex: Sequence[Example], embedder: Embedder, store: Store | None, tick: Tick | None) -> np.ndarray:
    papers = [Paper(id=e.id, version=e.version, title=e.title, abstract=e.abstract) for e in ex]
    return embed_papers(papers, embedder, store, progress=tick)


def train(
    ex: list[Example],
    emb: np.ndarray,
    embedder_name: str,
    params: Params | None = None,
    extra: list[Example] | None = None,
    extra_emb: np.ndarray | None = None,
    folds: int = 5,
) -> RelevanceModel:
    """Fit on labels (+ reading-list positives); threshold and card from k-fold CV on the labels."""
    params = params or Params()
    y = np.array([e.label for e in ex])
    oof = oof_scores(ex, emb, params, folds=folds).max(axis=1)
    thr = choose_threshold(y, oof)
    cv = {"folds": folds, "threshold": round(thr, 4), **metrics(y, oof >= thr), "at_0.5": metrics(y, oof >= 0.5)}
    all_ex = ex + (extra or [])
    all_emb = emb if extra_emb is None or not extra else np.vstack([emb, extra_emb])
    model = fit(all_ex, all_emb, params, embedder_name)
    model.threshold = thr
    model.card = model_card(all_ex, params, embedder_name, cv)
    return model


def evaluate(
    ex: list[Example], emb: np.ndarray, model: RelevanceModel | None, cv_params: Params | None, folds: int = 5
) -> dict[str, dict[str, Any]]:
    """Metrics of the model (held-out labels) or of k-fold CV (training labels), plus baselines."""
    y = np.array([e.label for e in ex])
    out: dict[str, dict[str, Any]] = {}
    kw = np.array([max(keyword_topics(f"{e.title} {e.abstract}").values()) for e in ex])
    out["keyword"] = metrics(y, kw >= 0.5)
    tf = oof_scores(ex, emb, Params(use_embedding=False, c_tfidf=4.0), folds).max(axis=1)
    out["tfidf (5-fold CV)"] = metrics(y, tf >= choose_threshold(y, tf))
    if model is not None:
        s = model.topic_scores([e.title for e in ex], [e.abstract for e in ex], emb)
        out["model"] = metrics(y, s.max(axis=1) >= model.threshold)
        per_topic = s
    else:
        per_topic = oof_scores(ex, emb, cv_params or Params(), folds)
        thr = choose_threshold(y, per_topic.max(axis=1))
        out["hybrid (5-fold CV)"] = {**metrics(y, per_topic.max(axis=1) >= thr), "threshold": round(thr, 4)}
    for k, topic in enumerate(("clip", "editing")):
        yt = np.array([2 if (e.label >= 1 and topic in e.topics) else 0 for e in ex])
        out[f"topic {topic}"] = metrics(yt, per_topic[:, k] >= 0.5)
    return out

"""``digest train`` and ``digest eval``: reading the inputs, embedding, training, writing the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digest.config import Settings
from digest.errors import UsageError
from digest.providers import build_embedder, model_path
from digest.relevance.classify import check_embedder
from digest.relevance.data import (
    Example,
    label_examples,
    merge_labels,
    read_corpus,
    read_labels,
    reading_list_examples,
)
from digest.relevance.embed import Embedder, embed_papers
from digest.relevance.model import Params, RelevanceModel, choose_threshold, metrics
from digest.relevance.train import oof_scores, topics_of, train
from digest.store import Store
from digest.topics import load_topics

Say = Callable[[str], None]


def parse_reading_lists(items: Sequence[str], settings: Settings) -> list[tuple[str, Path]]:
    """``TOPIC=FILE`` pairs from the command line, plus the topics file's own reading lists."""
    out: list[tuple[str, Path]] = []
    for raw in items:
        topic, sep, path = raw.partition("=")
        if not sep or not topic or not path:
            raise UsageError(f"--reading-list {raw!r}: write TOPIC=FILE, e.g. editing=notes/image-editing.md")
        out.append((topic.strip(), Path(path.strip())))
    for t in load_topics(settings.topics).topics:
        out.extend((t.id, p) for p in t.reading_lists)
    return out


def embed_examples(
    ex: Sequence[Example], embedder: Embedder, store: Store | None, say: Say | None = None
) -> np.ndarray:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"embedding ({embedder.name})", total=len(ex))
        emb, _ = embed_papers([e.paper for e in ex], embedder, store, progress=lambda n: bar.advance(task, n))
    return emb


def train_command(
    settings: Settings,
    labels: Sequence[Path] | None,
    corpus: Path | None,
    reading_lists: Sequence[str],
    output: Path | None,
    finetune: bool,
    split: str,
    folds: int,
    say: Say,
    epochs: float = 3.0,
    max_tokens: int = 256,
) -> list[str]:
    store = Store(settings.db_url)
    if not labels:
        from digest.relevance.votes import retrain_from_votes

        return retrain_from_votes(settings, store, output, say)
    labs = merge_labels(labels)
    corp = read_corpus(corpus)
    ex, missing = label_examples(labs, corp, store)
    if missing:
        say(f"{len(missing)} labelled ids not found in the corpus or the store (skipped): {', '.join(missing[:10])}")
    extra, reports = reading_list_examples(parse_reading_lists(reading_lists, settings), corp, store)
    known = {e.paper.id for e in ex}
    extra = [e for e in extra if e.paper.id not in known]
    for r in reports:
        say(f"{r.path.name} ({r.topic}): {r.items} items, {len(r.resolved)} resolved, {len(r.unresolved)} unresolved")
    split_override = None
    embedder: Embedder
    if finetune:
        from digest.relevance.finetune import finetune_encoder

        target = output or settings.data_dir / "relevance-model.npz"
        embedder, split_override = finetune_encoder(
            settings, ex, split, say, target.parent / "encoder", epochs=epochs, max_tokens=max_tokens
        )
    else:
        current = RelevanceModel.load(model_path(settings))
        embedder = build_embedder(settings, current)
    emb = embed_examples(ex, embedder, store)
    extra_emb = embed_examples(extra, embedder, store) if extra else None
    params = Params(**DEFAULT_PARAMS) if finetune else Params()
    order = load_topics(settings.topics).ids
    result = train(ex, emb, embedder.name, params, extra, extra_emb, folds, split, split_override, finetune, order)
    target = output or settings.data_dir / "relevance-model.npz"
    result.model.save(target)
    from digest.relevance.votes import save_base_features

    base = save_base_features(target, result.model, ex, emb)
    return [*result.lines(), f"model → {target} (topics {', '.join(result.model.topics)}; base data → {base.name}); "
            f"{len(extra)} reading-list positives added"]  # fmt: skip


#: the fusion chosen on the time split for a fine-tuned encoder (docs/RELEVANCE.md)
DEFAULT_PARAMS: dict[str, Any] = {"w": 0.3, "c_tfidf": 64.0, "c_emb": 1.0}


def eval_command(
    settings: Settings, labels: Path, corpus: Path | None, cv: bool, folds: int
) -> dict[str, dict[str, Any]]:
    """Metrics of the current model on held-out labels (or k-fold CV of the procedure), plus baselines."""
    store = Store(settings.db_url)
    ex, _missing = label_examples(read_labels(labels), read_corpus(corpus), store)
    current = RelevanceModel.load(model_path(settings))
    embedder = build_embedder(settings, current)
    check_embedder(current, embedder)
    emb = embed_examples(ex, embedder, store)
    y = np.array([e.label for e in ex])
    topics = load_topics(settings.topics)
    out: dict[str, dict[str, Any]] = {}
    kw = np.array([max(topics.keyword_scores(f"{e.paper.title} {e.paper.abstract}").values()) for e in ex])
    out["keyword"] = metrics(y, kw >= 0.5)
    names = topics_of(ex)
    tf = oof_scores(ex, emb, names, Params(use_embedding=False, c_tfidf=4.0), folds).max(axis=1)
    out[f"tfidf ({folds}-fold CV)"] = metrics(y, tf >= choose_threshold(y, tf))
    if cv:
        s = oof_scores(ex, emb, names, current.params, folds).max(axis=1)
        out[f"hybrid ({folds}-fold CV)"] = metrics(y, s >= choose_threshold(y, s))
    else:
        s = current.topic_scores([e.paper.title for e in ex], [e.paper.abstract for e in ex], emb).max(axis=1)
        thr = current.threshold if settings.relevance_threshold is None else settings.relevance_threshold
        out["model"] = metrics(y, s >= thr)
    return out

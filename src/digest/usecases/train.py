"""``digest train``, ``digest eval`` and ``digest classify --input``: reading the inputs, embedding through the
providers' embedder, training, writing the model; retraining from votes and seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digest.config import Settings
from digest.errors import UsageError
from digest.ingest import store_missing
from digest.models import ClassifyResult, Paper
from digest.personalise import load_profiles
from digest.providers import Providers
from digest.relevance import votes as vt
from digest.relevance.classify import check_embedder, classify, classify_rows, read_input_jsonl
from digest.relevance.data import (
    Example,
    label_examples,
    merge_labels,
    read_corpus,
    read_labels,
    reading_list_examples,
)
from digest.relevance.embed import Embedder, embed_papers
from digest.relevance.model import FINETUNED_PARAMS, PACKAGED_MODEL, Params, RelevanceModel, choose_threshold, metrics
from digest.relevance.personal import is_reader
from digest.relevance.train import oof_scores, topics_of, train
from digest.store import Store

Say = Callable[[str], None]


def parse_reading_lists(items: Sequence[str], settings: Settings) -> list[tuple[str, Path]]:
    """``TOPIC=FILE`` pairs from the command line, plus the topics file's own reading lists."""
    out: list[tuple[str, Path]] = []
    for raw in items:
        topic, sep, path = raw.partition("=")
        if not sep or not topic or not path:
            raise UsageError(f"--reading-list {raw!r}: write TOPIC=FILE, e.g. editing=notes/image-editing.md")
        out.append((topic.strip(), Path(path.strip())))
    from digest.topics import load_topics

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
    p: Providers,
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
    settings, store = p.settings, p.store
    if not labels:
        return retrain(p, output, say)
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
        embedder = p.embedder
    emb = embed_examples(ex, embedder, store)
    extra_emb = embed_examples(extra, embedder, store) if extra else None
    params = Params(**FINETUNED_PARAMS) if finetune else Params()
    order = p.topics.ids
    result = train(ex, emb, embedder.name, params, extra, extra_emb, folds, split, split_override, finetune, order)
    target = output or settings.data_dir / "relevance-model.npz"
    result.model.save(target)
    base = vt.save_base_features(target, result.model, ex, emb)
    return [*result.lines(), f"model → {target} (topics {', '.join(result.model.topics)}; base data → {base.name}); "
            f"{len(extra)} reading-list positives added"]  # fmt: skip


def eval_command(p: Providers, labels: Path, corpus: Path | None, cv: bool, folds: int) -> dict[str, dict[str, Any]]:
    """Metrics of the current model on held-out labels (or k-fold CV of the procedure), plus baselines."""
    settings, store, current = p.settings, p.store, p.model
    ex, _missing = label_examples(read_labels(labels), read_corpus(corpus), store)
    embedder = p.embedder
    check_embedder(current, embedder)
    emb = embed_examples(ex, embedder, store)
    y = np.array([e.label for e in ex])
    topics = p.topics
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


def retrain(p: Providers, output: Path | None, say: Say) -> list[str]:
    """``digest train`` without labels: the reader's model from the shipped base data, each topic's seeds and
    every vote (papers missing from the store are fetched through the run's arXiv client)."""
    base_model = RelevanceModel.load(PACKAGED_MODEL)
    base = vt.Base(vt.base_path(PACKAGED_MODEL))
    topics = vt.model_topics(p.topics.topics, base.topics)
    embedder = p.embedder_for(base_model)
    # the operator's votes (and imported votes without a reader) retrain the topic model; a reader's votes
    # train only that reader's personal model (digest.personalise), so one reader never changes another's digest
    votes = [v for v in p.store.current_votes() if not is_reader(v.who)]
    seeds = {t.id: t.seeds for t in p.topics.topics if t.seeds}
    wanted = sorted({i for s in seeds.values() for i in s} | {v.paper_id for v in votes})
    store_missing(wanted, p.settings, p.store, p.arxiv, say)
    voted = {x.id: x for x in p.store.get_papers(sorted({v.paper_id for v in votes}))}
    seed_papers = {x.id: x for x in p.store.get_papers(sorted({i for s in seeds.values() for i in s}))}
    for t, ids in seeds.items():
        lost = [i for i in ids if i not in seed_papers]
        if lost:
            say(f"topic {t}: {len(lost)} seed(s) not found on arXiv or in the store: {', '.join(lost[:5])}")
    vemb, _ = embed_papers(list(voted.values()), embedder, p.store)
    best = vt.best_topics(base_model, list(voted.values()), vemb)
    now = p.model if p.model.embedder == base_model.embedder else base_model  # the decision the reader saw
    passing = vt.passing_topics(now, list(voted.values()), vemb, p.settings.relevance_threshold)
    needs_pool = any(t in seeds or t not in base.topics for t in topics)
    pool: list[Paper] = list(p.store.iter_papers()) if needs_pool else []
    plan = vt.plan_targets(topics, votes, voted, best, seeds, seed_papers, base.topics, base.ids, pool, passing)
    say(f"retraining on {len(base.ids)} base labels, {sum(len(v) for v in seeds.values())} seeds, "
        f"{len(plan.by_vote)} voted papers, {plan.unlabelled} unlabelled papers as weak negatives")  # fmt: skip
    fit = vt.fit_from_votes(base, base_model, plan, seeds, seed_papers, embedder, p.store)
    target = output or p.settings.data_dir / "relevance-model.npz"
    fit.model.save(target)
    agree, total, disagree = vt.decisions(fit.model, list(voted.values()), vemb, plan.by_vote)
    lines = [
        f"base labels F1 before {fit.f1_before:.3f}" + (f" / after {fit.f1_after:.3f}" if fit.f1_before else ""),
        f"votes used: {len(plan.by_vote)} papers; decided as voted after retraining: {agree} of {total}",
    ]
    if seeds:
        lines.append(
            "seeds used: " + ", ".join(f"{t} {sum(i in seed_papers for i in ids)}" for t, ids in seeds.items())
        )
    if disagree:
        lines.append("still disagree with their vote: " + ", ".join(disagree[:10]))
    lines.append(f"model → {target} (topics {', '.join(topics)}); the next run uses it")
    if output is None:  # the readers' personal models sit on the topic model: refit them on the new one
        prof = load_profiles(dataclasses.replace(p, model=fit.model))
        if prof.heads:
            lines.append(f"reader models refit on it: {len(prof.heads)} readers in {prof.seconds:.2f} s")
    return lines


def classify_file(
    p: Providers, source: Path, target: Path, tick: Callable[[int], None] | None = None
) -> ClassifyResult:
    """``digest classify --input/--output``: score a JSONL of papers (same order and count), nothing stored."""
    try:
        with open(source, encoding="utf-8") as f:
            items = read_input_jsonl(f)
    except OSError as exc:
        raise UsageError(f"cannot read {source} ({exc.strerror})") from None
    res = classify(items, p.model, p.embedder, None, p.settings.relevance_threshold, tick, explain=False)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in classify_rows(items, res.relevance):
            f.write(line + "\n")
    tmp.replace(target)
    return res

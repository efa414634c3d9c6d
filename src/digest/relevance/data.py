"""Training data: labels (JSONL), a corpus of paper texts (JSONL, .gz ok), reading lists (Markdown).

All readers name the file and line of a problem. Nothing here trains; :mod:`digest.relevance.train` does.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import InputError
from digest.models import Paper
from digest.relevance.readinglist import normalise_title, parse_reading_list
from digest.store import Store
from digest.text import split_id
from digest.topics import check_topic_id


@dataclass
class Label:
    id: str
    label: int  # 2 clearly relevant, 1 borderline, 0 not relevant
    topics: list[str]
    stratum: str = ""
    weight: float = 1.0  # a curated label may count more than one row in training


@dataclass
class Example:
    paper: Paper
    label: int
    topics: list[str]
    stratum: str = ""
    weight: float = 1.0
    kind: str = "label"  # label | reading-list | seed | vote

    @property
    def month(self) -> str:
        return self.paper.announced.strftime("%Y-%m") if self.paper.announced else ""


@dataclass
class ReadingListReport:
    path: Path
    topic: str
    items: int
    resolved: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def read_labels(path: Path) -> list[Label]:
    """``{id, label 0/1/2, topics, stratum?, weight?}`` per line."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read labels {path} ({exc.strerror})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            lab = int(o["label"])
            topics = [str(t) for t in (o.get("topics") or [])]
            pid = split_id(str(o["id"]).strip())[0]
            weight = float(o.get("weight", 1.0))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{path}:{n}: expected {{id (an arXiv id), label, topics, weight?}} ({exc.__class__.__name__}: {exc})"
            ) from None
        if lab not in (0, 1, 2):
            raise InputError(f"{path}:{n}: label must be 0, 1 or 2, not {lab}")
        if lab >= 1 and not topics:
            raise InputError(f"{path}:{n}: a relevant paper (label {lab}) needs its topics")
        for t in topics:
            try:
                check_topic_id(t)
            except ValueError as exc:
                raise InputError(f"{path}:{n}: {exc}") from None
        if not 0 < weight <= 100:
            raise InputError(f"{path}:{n}: weight must be in (0, 100], not {weight}")
        out.append(Label(pid, lab, topics, str(o.get("stratum") or ""), weight))
    return out


def merge_labels(files: Sequence[Path]) -> list[Label]:
    """The labels of several files; a later file's label for the same paper replaces the earlier one."""
    by_id: dict[str, Label] = {}
    for f in files:
        for lab in read_labels(f):
            by_id[lab.id] = lab
    return list(by_id.values())


def read_corpus(path: Path | None) -> dict[str, Paper]:
    """Papers by id from a JSONL(.gz) of ``{id, version?, title, abstract, date?, …}``."""
    if path is None:
        return {}
    opener: Any = gzip.open if path.suffix == ".gz" else open
    out = {}
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    o = json.loads(line)
                    v = int(str(o.get("version") or 1).lstrip("v") or 1)
                    day = dt.date.fromisoformat(o["date"][:10]) if o.get("date") else None
                    out[o["id"]] = Paper(
                        id=o["id"],
                        version=v,
                        title=o["title"],
                        abstract=o["abstract"],
                        categories=o.get("categories") or [],
                        authors=o.get("authors") or [],
                        announced=day,
                    )
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise InputError(f"{path}:{n}: not a paper record ({exc.__class__.__name__}: {exc})") from None
    except OSError as exc:
        raise InputError(f"cannot read the corpus {path} ({exc.strerror})") from None
    return out


def resolve_papers(ids: Iterable[str], corpus: dict[str, Paper], store: Store | None) -> dict[str, Paper]:
    ids = list(ids)
    found = {i: corpus[i] for i in ids if i in corpus}
    rest = [i for i in ids if i not in found]
    if rest and store is not None:
        found.update({p.id: p for p in store.get_papers(rest)})
    return found


def label_examples(
    labels: list[Label], corpus: dict[str, Paper], store: Store | None
) -> tuple[list[Example], list[str]]:
    papers = resolve_papers([lab.id for lab in labels], corpus, store)
    missing = [lab.id for lab in labels if lab.id not in papers]
    ex = [Example(papers[lab.id], lab.label, lab.topics, lab.stratum, lab.weight) for lab in labels if lab.id in papers]
    return ex, missing


def reading_list_examples(
    lists: Sequence[tuple[str, Path]], corpus: dict[str, Paper], store: Store | None
) -> tuple[list[Example], list[ReadingListReport]]:
    """Label-2 positives for each (topic, Markdown file) pair, resolved by arXiv id or exact title."""
    by_title = {normalise_title(p.title): p for p in corpus.values()}
    examples: list[Example] = []
    reports = []
    for topic, path in lists:
        try:
            items = parse_reading_list(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read the reading list {path} ({exc.strerror})") from None
        rep = ReadingListReport(path, topic, len(items))
        by_id = resolve_papers([i.arxiv_id for i in items if i.arxiv_id], corpus, store)
        for it in items:
            p = by_id.get(it.arxiv_id) if it.arxiv_id else None
            if p is None and it.title:
                p = by_title.get(normalise_title(it.title))
            if p is None:
                rep.unresolved.append(it.arxiv_id or (it.title or "")[:80])
                continue
            rep.resolved.append(p.id)
            examples.append(Example(p, 2, [topic], "reading-list", kind="reading-list"))
        reports.append(rep)
    return examples, reports

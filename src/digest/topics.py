"""The reader's interests as configuration: a TOML file of ``[[topics]]`` tables.

Each topic has an ``id`` (a slug used in files, feeds and the model), a display ``name`` and optionally
``seeds`` (arXiv ids of papers the reader wants), ``reading_lists`` (Markdown files) and ``keywords`` (a
regular expression, or a list of terms, for the keyword baseline). The shipped default
(``assets/topics.toml``) defines ``clip`` and ``editing``. A new interest needs no code change: training
takes topics from the labels, seeds and votes; prediction, explanation and rendering take them from the
loaded model, with display names from here.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from digest.errors import ConfigError

SHIPPED_FILE = Path(__file__).parent / "assets" / "topics.toml"
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # matched whole (fullmatch: no trailing newline slips by)
#: words that mean something else where a topic id goes (votes, file names, the page's sections)
RESERVED = frozenset({"any", "all", "other", "none", "feed", "feeds", "atom", "index", "weekly"})


def check_topic_id(v: object) -> str:
    """A topic id is a short lowercase slug, not a reserved word: it becomes a file name (``feeds/<id>.xml``)."""
    if not isinstance(v, str) or not _SLUG.fullmatch(v):
        raise ValueError(f"topic id {v!r} must be a short lowercase slug (letters, digits, - or _)")
    if v in RESERVED:
        raise ValueError(f"topic id {v!r} is reserved ({', '.join(sorted(RESERVED))}): choose another")
    return v


class Topic(BaseModel):
    id: str
    name: str
    seeds: list[str] = Field(default_factory=list)
    reading_lists: list[Path] = Field(default_factory=list)
    keywords: str | list[str] = ""

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_topic_id(v)

    @field_validator("keywords")
    @classmethod
    def _regex(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, str) and v:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"keywords {v!r} is not a valid regular expression ({exc})") from None
        return v

    @field_validator("seeds")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        from digest.text import split_id

        out = []
        for s in v:
            try:
                out.append(split_id(s.strip())[0])
            except ValueError:
                raise ValueError(f"seed {s!r} is not an arXiv id") from None
        return list(dict.fromkeys(out))

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        if not self.keywords:
            return None
        if isinstance(self.keywords, list):
            return re.compile(r"\b(" + "|".join(re.escape(k) for k in self.keywords) + r")\b", re.IGNORECASE)
        return re.compile(self.keywords, re.IGNORECASE)


class Topics(BaseModel):
    topics: list[Topic]

    @field_validator("topics")
    @classmethod
    def _unique(cls, v: list[Topic]) -> list[Topic]:
        if not v:
            raise ValueError("define at least one [[topics]] table")
        ids = [t.id for t in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"topic ids must be unique: {', '.join(dup)}")
        return v

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.topics]

    def get(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def names(self, ids: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
        """Display names for ``ids`` (the model's topics), falling back to the id for unknown ones."""
        ids = list(ids) if ids is not None else self.ids
        known = {t.id: t.name for t in self.topics}
        shipped = {t.id: t.name for t in shipped_topics().topics}
        return {i: known.get(i) or shipped.get(i) or i for i in ids}

    def keyword_scores(self, text: str) -> dict[str, float]:
        return {t.id: 1.0 if t.pattern is not None and t.pattern.search(text) else 0.0 for t in self.topics}


def read_topics(path: Path) -> Topics:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the topics file {path} ({exc.strerror}): check DIGEST_TOPICS") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the topics file {path} is not valid TOML ({exc})") from None
    try:
        topics = Topics.model_validate(data)
    except ValidationError as exc:
        probs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"the topics file {path} is invalid: {probs}") from None
    base = path.parent
    for t in topics.topics:  # relative reading-list paths are relative to the topics file
        t.reading_lists = [p if p.is_absolute() else base / p for p in t.reading_lists]
    return topics


def shipped_topics() -> Topics:
    return read_topics(SHIPPED_FILE)


def load_topics(path: Path | None) -> Topics:
    """The reader's topics (``DIGEST_TOPICS``), or the shipped default."""
    return read_topics(path) if path is not None else shipped_topics()

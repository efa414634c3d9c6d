"""Pydantic models: the contract between stages. They do no I/O."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from digest.text import clean_abstract, clean_text

AnnounceType = Literal["new", "cross", "replace", "replace-cross"]


class Paper(BaseModel):
    """One arXiv paper at one version. Identity is ``id`` (no version); ``version`` is a field."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int = 1
    title: str
    abstract: str
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    primary_category: str | None = None
    announce_type: AnnounceType | None = None
    announced: dt.date | None = None
    published: dt.datetime | None = None
    updated: dt.datetime | None = None
    comment: str | None = None
    abs_url: str = ""
    pdf_url: str = ""

    @field_validator("id")
    @classmethod
    def _no_version(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("empty arXiv id")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        return clean_text(v)

    @field_validator("abstract")
    @classmethod
    def _abstract(cls, v: str) -> str:
        return clean_abstract(v)

    @field_validator("authors", "categories", mode="before")
    @classmethod
    def _none_list(cls, v: object) -> object:
        return [] if v is None else v

    def model_post_init(self, __context: object) -> None:
        if not self.abs_url:
            object.__setattr__(self, "abs_url", f"https://arxiv.org/abs/{self.id}")
        if not self.pdf_url:
            object.__setattr__(self, "pdf_url", f"https://arxiv.org/pdf/{self.id}")

    @property
    def text(self) -> str:
        """What the relevance stage reads: title and abstract."""
        return f"{self.title}. {self.abstract}"


class Announcement(BaseModel):
    """What one fetch of the daily feed said: a day (or no announcement) and its papers."""

    date: dt.date | None
    papers: list[Paper] = Field(default_factory=list)
    skipped: int = 0  # items excluded (replacements, when excluded)
    source_url: str = ""

    @property
    def empty(self) -> bool:
        return not self.papers and self.skipped == 0


class Neighbour(BaseModel):
    id: str
    title: str
    similarity: float


class Relevance(BaseModel):
    id: str
    version: int
    score: float
    relevant: bool
    topics: dict[str, float]
    neighbours: list[Neighbour] = Field(default_factory=list)
    model: str = ""


class SummaryStatus(StrEnum):
    ok = "ok"
    fallback = "fallback"
    failed = "failed"


class SummaryFields(BaseModel):
    """What the LLM returns for one paper (the structured-output schema)."""

    model_config = ConfigDict(extra="forbid")

    tldr_en: str
    title_zh: str
    tldr_zh: str
    abstract_zh: str


class Summary(BaseModel):
    id: str
    version: int
    tldr_en: str = ""
    title_zh: str = ""
    tldr_zh: str = ""
    abstract_zh: str = ""
    status: SummaryStatus
    backend: str  # "llm:<model>", "google-translate", "extractive"
    reason: str = ""
    model: str = ""
    prompt_hash: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


class DigestEntry(BaseModel):
    n: int
    paper: Paper
    relevance: Relevance | None = None
    summary: Summary | None = None


class Digest(BaseModel):
    date: dt.date
    entries: list[DigestEntry]
    fetched: int = 0
    approximate: bool = False  # reconstructed from the API (submission window), not the exact RSS list


class RunStatus(StrEnum):
    ok = "ok"
    no_announcement = "no_announcement"
    partial = "partial"
    failed = "failed"


class RunReport(BaseModel):
    date: dt.date | None = None
    status: RunStatus = RunStatus.ok
    reason: str = ""
    fetched: int = 0
    new: int = 0
    duplicate: int = 0
    replaced: int = 0
    skipped: int = 0
    relevant: int = 0
    summarised: int = 0
    cached: int = 0
    called: int = 0
    fallback: int = 0
    failed: int = 0
    emails_sent: int = 0
    email_status: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    duration_s: float = 0.0
    files: list[str] = Field(default_factory=list)
    empty_day: str = ""
    backends: dict[str, int] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)

    def line(self) -> str:
        day = self.date.isoformat() if self.date else "today"
        email_note = f" ({self.email_status})" if self.email_status and not self.emails_sent else ""
        return (
            f"{day} {self.status.value}: fetched {self.fetched}, new {self.new}, relevant {self.relevant}, "
            f"summarised {self.summarised} (cached {self.cached}, fallback {self.fallback}, failed {self.failed}), "
            f"emails {self.emails_sent}{email_note}, tokens {self.tokens_in}/{self.tokens_out}, cost ${self.cost:.4f}"
            + (f" [{', '.join(f'{k} {v}' for k, v in sorted(self.backends.items()))}]" if self.backends else "")
            + (f" — {self.reason}" if self.reason else "")
        )

"""Pydantic records: the contract between stages. They do no I/O and are plain serialisable values,
so a stage can run in another process (a Prefect task on a worker) and hand its result back.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from digest.text import clean_abstract, clean_text

AnnounceType = Literal["new", "cross", "replace", "replace-cross"]


# --- enums ------------------------------------------------------------------------------------------
class DayState(StrEnum):
    announced = "announced"
    no_announcement = "no_announcement"  # a weekend, or a holiday where the RSS and the API agree
    unconfirmed = "unconfirmed"  # an empty channel on a weekday: checked again on the next run


class DaySource(StrEnum):
    rss = "rss"  # the day's exact announcement list
    api = "api"  # reconstructed from the API's submission window (approximate)


class SummaryTier(StrEnum):
    """Who wrote a summary, best first. Which tiers are final depends on the settings (see ``llm.cache``)."""

    llm = "llm"  # the configured LLM, validated
    translated = "translated"  # extractive English TL;DR + machine translation
    extractive = "extractive"  # extractive English TL;DR only, no Chinese

    @property
    def rank(self) -> int:
        return {"llm": 0, "translated": 1, "extractive": 2}[self.value]


class SummaryStatus(StrEnum):
    ok = "ok"  # the configured route produced it
    fallback = "fallback"  # the configured route failed for this paper; a lower tier stands in (marked)


class DeliveryStatus(StrEnum):
    sending = "sending"  # claimed by a process, SMTP in progress
    sent = "sent"
    failed = "failed"  # refused or never accepted: retried on the next run
    unknown = "unknown"  # the sender died between claiming and marking: may or may not have arrived


class EmptyDayMode(StrEnum):
    skip = "skip"  # write nothing
    note = "note"  # a short "nothing relevant today" page (never over an existing digest)


class EmptyDayOutcome(StrEnum):
    none = "none"  # the day had entries: written normally
    skipped = "skipped"
    note = "note"
    kept_existing = "kept_existing"


class RunStatus(StrEnum):
    ok = "ok"
    no_announcement = "no_announcement"
    partial = "partial"
    failed = "failed"
    busy = "busy"  # another process holds the day's lease and does the work
    cancelled = "cancelled"
    running = "running"
    crashed = "crashed"  # found running with an expired lease (display only)

    @property
    def finished(self) -> bool:
        """The day is done (nothing left for a catch-up or the watchdog): :data:`FINISHED`."""
        return self in FINISHED


#: the statuses after which a day needs no other run (the one definition: catch-up, status, watchdog)
FINISHED = frozenset({RunStatus.ok, RunStatus.partial, RunStatus.no_announcement})


# --- papers -----------------------------------------------------------------------------------------
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
    journal_ref: str | None = None
    doi: str | None = None

    @field_validator("id")
    @classmethod
    def _no_version(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("empty arXiv id")
        return v

    @field_validator("title", "comment", "journal_ref", "doi")
    @classmethod
    def _clean(cls, v: str | None) -> str | None:
        return None if v is None else clean_text(v)

    @field_validator("abstract")
    @classmethod
    def _abstract(cls, v: str) -> str:
        return clean_abstract(v)

    @field_validator("authors", "categories", mode="before")
    @classmethod
    def _none_list(cls, v: object) -> object:
        return [] if v is None else [clean_text(str(x)) for x in v]  # type: ignore[attr-defined]

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.id}"

    @property
    def html_url(self) -> str:
        return f"https://arxiv.org/html/{self.id}"

    @property
    def text(self) -> str:
        """What the relevance stage reads: title and abstract."""
        return f"{self.title}. {self.abstract}"


class FetchCounts(BaseModel):
    fetched: int = 0
    new: int = 0
    duplicate: int = 0
    replaced: int = 0
    skipped: int = 0  # items excluded (replacements, when excluded)

    def __add__(self, other: FetchCounts) -> FetchCounts:
        return FetchCounts(**{k: getattr(self, k) + getattr(other, k) for k in FetchCounts.model_fields})


class Announcement(BaseModel):
    """What one fetch of the daily feed said: a day (or no announcement) and its papers."""

    date: dt.date | None
    papers: list[Paper] = Field(default_factory=list)
    skipped: int = 0
    source_url: str = ""

    @property
    def empty(self) -> bool:
        return not self.papers and self.skipped == 0


class DayFetch(BaseModel):
    """The fetch stage's record: which day, what the store knows of it, its papers."""

    date: dt.date | None
    state: DayState
    source: DaySource | None = None
    papers: list[Paper] = Field(default_factory=list)
    counts: FetchCounts = Field(default_factory=FetchCounts)
    reason: str = ""
    seconds: float = 0.0


    def summary(self) -> FetchSummary:
        return FetchSummary(state=self.state, source=self.source, papers=len(self.papers), counts=self.counts,
                            seconds=self.seconds)  # fmt: skip

    @property
    def approximate(self) -> bool:
        return self.source == DaySource.api


# --- relevance --------------------------------------------------------------------------------------
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
    topic: str = ""  # the topic it was decided under: largest margin over that topic's threshold

    @property
    def best_topic(self) -> str | None:
        """The decided topic; for records without one, the topic of the highest score."""
        if self.topic:
            return self.topic
        return max(self.topics, key=lambda t: self.topics[t]) if self.topics else None


class ClassifyResult(BaseModel):
    relevance: list[Relevance] = Field(default_factory=list)
    extra_ids: list[str] = Field(default_factory=list)  # not relevant, but some reader's personal model chose them
    embedded: int = 0  # papers embedded now (the rest came from the store's cache)
    embed_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> ClassifySummary:
        return ClassifySummary(papers=len(self.relevance), relevant=len(self.relevant_ids), embedded=self.embedded,
                               embed_seconds=self.embed_seconds, seconds=self.seconds)  # fmt: skip

    @property
    def relevant_ids(self) -> list[str]:
        return [r.id for r in self.relevance if r.relevant]


# --- summaries --------------------------------------------------------------------------------------
class SummaryFields(BaseModel):
    """What the LLM returns for one paper (the structured-output schema). Raw: validated, not cleaned."""

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
    tier: SummaryTier
    status: SummaryStatus = SummaryStatus.ok
    backend: str  # "llm:<model>", "google-translate", "extractive"
    reason: str = ""
    model: str = ""  # the LLM model of the cache key ("" = made with no LLM configured)
    prompt_hash: str = ""
    llm_answered: bool = False  # the LLM answered (and was paid) for this key, even if the answer was rejected
    attempts: int = 0  # runs that paid for an answer at this key (a rejected one is asked again, bounded)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0

    @field_validator("tldr_en", "title_zh", "tldr_zh", "abstract_zh", "reason")
    @classmethod
    def _clean(cls, v: str) -> str:
        return clean_text(v)


class SummaryStats(BaseModel):
    papers: int = 0
    cached: int = 0
    called: int = 0  # papers that needed at least one LLM request
    called_ok: int = 0  # … of which the LLM's answer was accepted
    requests: int = 0
    skipped_breaker: int = 0  # papers not called because the endpoint was found down in this run
    busy: int = 0  # papers another process was summarising (claimed): left to it
    reasked: int = 0  # papers whose earlier answer was rejected, asked again (bounded by DIGEST_LLM_MAX_ATTEMPTS)
    first_error: str = ""  # the first reason a paper got no LLM summary (the day's failure line names it)
    ok: int = 0
    fallback: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    backends: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"papers {self.papers}, cached {self.cached}, called {self.called}, fallback {self.fallback}, "
            f"tokens in {self.tokens_in} / out {self.tokens_out}, cost ${self.cost:.4f}"
            + (f", not called (endpoint down) {self.skipped_breaker}" if self.skipped_breaker else "")
            + (f", left to another run {self.busy}" if self.busy else "")
        )


class DayProgress(BaseModel):
    """The day's stored state after a run: what the judge reads (not what this run happened to do)."""

    relevant: int = 0
    complete: int = 0  # summaries that reached the configured route (status ok)
    fallback: int = 0  # marked fallbacks (published, marked)
    missing: int = 0  # no usable summary at all


# --- render & deliver -------------------------------------------------------------------------------
class DigestEntry(BaseModel):
    n: int
    paper: Paper
    relevance: Relevance | None = None
    summary: Summary | None = None


class Edition(BaseModel):
    """What every renderer of an edition needs besides the digest: the one context handed to the formats."""

    categories: list[str] = Field(default_factory=lambda: ["cs.CV"])
    site_url: str = "https://example.org/arxiv-digest/"
    timezone: str = "America/New_York"
    fulltext_zh: str | None = None
    topic_names: dict[str, str] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return ", ".join(self.categories)

    def url(self, rel: str) -> str:
        return self.site_url.rstrip("/") + "/" + rel.lstrip("/")


class LearnItem(BaseModel):
    """A "help me learn" paper: one the reader's model is least sure about (shown with its vote links)."""

    id: str
    title: str
    abs_url: str
    topic: str


class ReaderPart(BaseModel):
    """One reader's part of an edition, decided by their personal model (:mod:`digest.personalise`)."""

    ids: list[str] = Field(default_factory=list)  # their edition's papers
    came_in: list[str] = Field(default_factory=list)  # chosen by their votes, not by the topic decision
    left: list[str] = Field(default_factory=list)  # the topic decision's papers their votes took out
    votes: int = 0
    line: str = ""  # what their votes changed (``data-feedback-summary``)
    learn: list[LearnItem] = Field(default_factory=list)
    voted: dict[str, str] = Field(default_factory=dict)  # paper id → their latest vote


class Digest(BaseModel):
    date: dt.date
    entries: list[DigestEntry]
    fetched: int = 0
    approximate: bool = False  # reconstructed from the API (submission window), not the exact RSS list
    topic_names: dict[str, str] = Field(default_factory=dict)  # topic id → display name, in the model's order
    title: str = ""  # edition title override (weekly)
    readers: dict[str, ReaderPart] = Field(default_factory=dict)  # reader address → their part (personal models)
    extra: list[DigestEntry] = Field(default_factory=list)  # papers only some readers' models chose (not public)


class RenderResult(BaseModel):
    day: dt.date
    entries: int = 0
    written: list[str] = Field(default_factory=list)  # paths whose bytes changed
    files: list[str] = Field(default_factory=list)  # every path this render is responsible for
    empty_day: EmptyDayOutcome = EmptyDayOutcome.none
    published: bool = False  # the day page exists and may be emailed
    withheld: str = ""  # why nothing was published (a day in alarm)
    seconds: float = 0.0


class DeliveryResult(BaseModel):
    sent: list[str] = Field(default_factory=list)
    already: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    unknown: list[str] = Field(default_factory=list)  # claimed by a sender that died: not re-sent, shown
    busy: list[str] = Field(default_factory=list)  # another process is sending these right now
    skipped_reason: str = ""
    channels_sent: list[str] = Field(default_factory=list)  # chat channels that have this edition (outbox keys)
    channels_failed: dict[str, str] = Field(default_factory=dict)  # … that did not take it: the next run retries
    channels_unknown: list[str] = Field(default_factory=list)  # … that never answered in time: not sent again
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.skipped_reason:
            return f"skipped: {self.skipped_reason}"
        total = len(self.failed) + len(self.sent) + len(self.already) + len(self.unknown) + len(self.busy)
        if self.failed:
            return f"failed for {len(self.failed)} of {total}"
        extra = f", unknown {len(self.unknown)}" if self.unknown else ""
        extra += f", chat {len(self.channels_sent)}" if self.channels_sent else ""
        extra += f", chat failed {len(self.channels_failed)}" if self.channels_failed else ""
        extra += f", chat in doubt {len(self.channels_unknown)}" if self.channels_unknown else ""
        extra += f", being sent by another run {len(self.busy)}" if self.busy else ""
        return f"sent {len(self.sent)}, already sent {len(self.already)}{extra}"


# --- the run ----------------------------------------------------------------------------------------
class FetchSummary(BaseModel):
    """What a run keeps of its :class:`DayFetch` (the papers themselves are in the store)."""

    state: DayState | None = None
    source: DaySource | None = None
    papers: int = 0
    counts: FetchCounts = Field(default_factory=FetchCounts)
    seconds: float = 0.0


class ClassifySummary(BaseModel):
    """What a run keeps of its :class:`ClassifyResult`."""

    papers: int = 0
    relevant: int = 0
    embedded: int = 0
    embed_seconds: float = 0.0
    seconds: float = 0.0


class RunReport(BaseModel):
    """One day's run: the stage records as they came back, composed once, and the verdict on the day.

    The counts the report line, ``digest runs`` and the artifact show are read from the stage records (and
    stored with them, as computed fields)."""

    date: dt.date | None = None
    status: RunStatus = RunStatus.ok
    reason: str = ""
    run_id: int | None = None
    duration_s: float = 0.0
    fetch: FetchSummary = Field(default_factory=FetchSummary)
    classify: ClassifySummary = Field(default_factory=ClassifySummary)
    summary: SummaryStats = Field(default_factory=SummaryStats)
    render: RenderResult | None = None
    delivery: DeliveryResult | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fetched(self) -> int:
        return self.fetch.papers

    @computed_field  # type: ignore[prop-decorator]
    @property
    def new(self) -> int:
        return self.fetch.counts.new

    @computed_field  # type: ignore[prop-decorator]
    @property
    def relevant(self) -> int:
        return self.classify.relevant

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summarised(self) -> int:
        return self.summary.ok + self.summary.fallback

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cached(self) -> int:
        return self.summary.cached

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return self.summary.papers - self.summary.ok - self.summary.fallback

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fallback(self) -> int:
        return self.summary.fallback

    @computed_field  # type: ignore[prop-decorator]
    @property
    def called(self) -> int:
        return self.summary.called

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_in(self) -> int:
        return self.summary.tokens_in

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_out(self) -> int:
        return self.summary.tokens_out

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost(self) -> float:
        return self.summary.cost

    @computed_field  # type: ignore[prop-decorator]
    @property
    def emails_sent(self) -> int:
        return len(self.delivery.sent) if self.delivery else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def email_status(self) -> str:
        return self.delivery.status if self.delivery else ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def files(self) -> list[str]:
        return sorted(set(self.render.written)) if self.render else []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stage_seconds(self) -> dict[str, float]:
        out = {"fetch": self.fetch.seconds, "embed": self.classify.embed_seconds, "classify": self.classify.seconds,
               "summarise": self.summary.seconds}  # fmt: skip
        if self.render:
            out["render"] = self.render.seconds
        if self.delivery:
            out["deliver"] = self.delivery.seconds
        return out

    def line(self) -> str:
        day = self.date.isoformat() if self.date else "today"
        s = self.summary
        email_note = f" ({self.email_status})" if self.email_status and not self.emails_sent else ""
        d = self.delivery
        if d is not None and (d.channels_sent or d.channels_failed or d.channels_unknown):
            email_note += f", chat {len(d.channels_sent)}"
            email_note += f", chat failed {len(d.channels_failed)}" if d.channels_failed else ""
            email_note += f", chat in doubt {len(d.channels_unknown)}" if d.channels_unknown else ""
        return (
            f"{day} {self.status.value}: fetched {self.fetched}, new {self.new}, relevant {self.relevant}, "
            f"summarised {self.summarised} (cached {s.cached}, fallback {s.fallback}, failed {self.failed}"
            + (f", asked again {s.reasked}" if s.reasked else "")
            + "), "
            + f"emails {self.emails_sent}{email_note}, tokens {s.tokens_in}/{s.tokens_out}, cost ${s.cost:.4f}"
            + (f" [{', '.join(f'{k} {v}' for k, v in sorted(s.backends.items()))}]" if s.backends else "")
            + (f" — {self.reason}" if self.reason else "")
        )

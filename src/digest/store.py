"""The store: the only module that touches the database.

SQLAlchemy 2.x Core; SQLite file by default, any SQLAlchemy URL works (Postgres when scaled out).
Schema changes are named, forward-only migrations recorded in ``schema_migrations`` and applied when
the store is opened. Every stage reads and writes here, so any stage can be re-run alone, and every
paid result (embeddings, summaries) is cached under a key that changes when its inputs change.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import StoreError
from digest.models import Neighbour, Paper, Relevance, RunReport, Summary, SummaryStatus

metadata = MetaData()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)
papers = Table(
    "papers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("primary_category", String(40)),
    Column("announce_type", String(20)),
    Column("announced", Date, index=True),
    Column("published", DateTime),
    Column("updated", DateTime),
    Column("comment", Text),
    Column("abs_url", Text),
    Column("pdf_url", Text),
    Column("source", String(10)),
    Column("first_seen", DateTime, nullable=False),
    Column("changed", Boolean, nullable=False, default=False),
)
days = Table(
    "days",
    metadata,
    Column("date", Date, primary_key=True),
    Column("state", String(20), nullable=False),  # announced | no_announcement
    Column("source", String(10), nullable=False),  # rss | api
    Column("fetched", Integer, nullable=False, default=0),
    Column("fetched_at", DateTime, nullable=False),
)
embeddings = Table(
    "embeddings",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("embedder", String(100), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)
relevance = Table(
    "relevance",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("model", String(100), nullable=False),
    Column("score", Float, nullable=False),
    Column("relevant", Boolean, nullable=False),
    Column("topics", JSON, nullable=False),
    Column("neighbours", JSON, nullable=False),
    Column("scored_at", DateTime, nullable=False),
)
summaries = Table(
    "summaries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("model", String(100), primary_key=True),
    Column("prompt_hash", String(64), primary_key=True),
    Column("tldr_en", Text, nullable=False),
    Column("title_zh", Text, nullable=False),
    Column("tldr_zh", Text, nullable=False),
    Column("abstract_zh", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("backend", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("created", DateTime, nullable=False),
)
digests = Table(
    "digests",
    metadata,
    Column("date", Date, primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("paths", JSON, nullable=False),
    Column("rendered_at", DateTime, nullable=False),
)
deliveries = Table(
    "deliveries",
    metadata,
    Column("date", Date, primary_key=True),
    Column("recipient", String(320), primary_key=True),
    Column("status", String(10), nullable=False),  # sent | failed
    Column("error", Text, nullable=False, default=""),
    Column("attempted_at", DateTime, nullable=False),
)
runs = Table(
    "runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("date", Date),
    Column("status", String(20), nullable=False),
    Column("started", DateTime, nullable=False),
    Column("finished", DateTime),
    Column("report", JSON, nullable=False),
)

# name → tables it creates; forward-only, never edited once released.
MIGRATIONS: list[tuple[str, list[Table]]] = [
    ("0001_papers_days_runs", [papers, days, runs]),
    ("0002_embeddings_relevance", [embeddings, relevance]),
    ("0003_summaries", [summaries]),
    ("0004_digests_deliveries", [digests, deliveries]),
]


@dataclass
class UpsertCounts:
    fetched: int = 0
    new: int = 0
    duplicate: int = 0
    replaced: int = 0
    skipped: int = 0
    new_ids: list[str] = field(default_factory=list)

    def add(self, other: UpsertCounts) -> None:
        self.fetched += other.fetched
        self.new += other.new
        self.duplicate += other.duplicate
        self.replaced += other.replaced
        self.skipped += other.skipped
        self.new_ids.extend(other.new_ids)


def _paper_row(p: Paper, source: str, announced: dt.date | None, changed: bool) -> dict[str, Any]:
    return {
        "id": p.id,
        "version": p.version,
        "title": p.title,
        "abstract": p.abstract,
        "authors": list(p.authors),
        "categories": list(p.categories),
        "primary_category": p.primary_category,
        "announce_type": p.announce_type,
        "announced": announced,
        "published": _naive(p.published),
        "updated": _naive(p.updated),
        "comment": p.comment,
        "abs_url": p.abs_url,
        "pdf_url": p.pdf_url,
        "source": source,
        "first_seen": _utcnow(),
        "changed": changed,
    }


def _naive(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _row_paper(r: Any) -> Paper:
    return Paper(
        id=r.id,
        version=r.version,
        title=r.title,
        abstract=r.abstract,
        authors=r.authors or [],
        categories=r.categories or [],
        primary_category=r.primary_category,
        announce_type=r.announce_type,
        announced=r.announced,
        published=_aware(r.published),
        updated=_aware(r.updated),
        comment=r.comment,
        abs_url=r.abs_url or "",
        pdf_url=r.pdf_url or "",
    )


class Store:
    """All persistence. Thread-safe for writes (one lock); open once per process and pass it down."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            self.engine: Engine = create_engine(url, **kwargs)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            self._lock = threading.RLock()
            self.migrate()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the store at {url} ({exc.__class__.__name__}: {exc}); check DIGEST_DB_URL"
            ) from None

    # --- schema --------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.engine.begin() as conn:
            schema_migrations.create(conn, checkfirst=True)
            done = {r.name for r in conn.execute(select(schema_migrations.c.name))}
            for name, tables in MIGRATIONS:
                if name in done:
                    continue
                for t in tables:
                    t.create(conn, checkfirst=True)
                conn.execute(schema_migrations.insert().values(name=name, applied_at=_utcnow()))
                applied.append(name)
        return applied

    def schema_version(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.name for r in conn.execute(select(schema_migrations.c.name).order_by(schema_migrations.c.name))]

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            yield conn

    # --- papers --------------------------------------------------------------------------
    def upsert_papers(self, items: Iterable[Paper], source: str, announced: dt.date | None = None) -> UpsertCounts:
        """Store papers idempotently.

        Same id+version again: no-op (``duplicate``). A new version of a known id: stored,
        ``changed`` only if title or abstract differ, and it keeps the id's announcement day (a paper
        belongs to at most one day). A new id: stored under ``announced`` (or the paper's own).
        """
        counts = UpsertCounts()
        with self._tx() as conn:
            for p in items:
                counts.fetched += 1
                existing = conn.execute(
                    select(papers.c.version, papers.c.title, papers.c.abstract, papers.c.announced)
                    .where(papers.c.id == p.id)
                    .order_by(papers.c.version.desc())
                ).all()
                if not existing:
                    conn.execute(papers.insert().values(**_paper_row(p, source, announced or p.announced, False)))
                    counts.new += 1
                    counts.new_ids.append(p.id)
                    continue
                if any(r.version == p.version for r in existing):
                    counts.duplicate += 1
                    continue
                latest = existing[0]
                changed = latest.title != p.title or latest.abstract != p.abstract
                first_day = next((r.announced for r in reversed(existing) if r.announced), None)
                conn.execute(papers.insert().values(**_paper_row(p, source, first_day, changed)))
                counts.replaced += 1
        return counts

    def papers_of_day(self, day: dt.date) -> list[Paper]:
        """Latest version of every paper announced on ``day``, in arrival order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(papers).where(papers.c.announced == day).order_by(papers.c.first_seen, papers.c.id)
            ).all()
        latest: dict[str, Any] = {}
        for r in rows:
            if r.id not in latest or r.version > latest[r.id].version:
                latest[r.id] = r
        return [_row_paper(r) for r in latest.values()]

    def get_papers(self, ids: Iterable[str]) -> list[Paper]:
        ids = list(ids)
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(papers).where(papers.c.id.in_(ids))).all()
        latest: dict[str, Any] = {}
        for r in rows:
            if r.id not in latest or r.version > latest[r.id].version:
                latest[r.id] = r
        return [_row_paper(latest[i]) for i in ids if i in latest]

    def previous_version_unchanged(self, paper: Paper) -> int | None:
        """If ``paper`` is a new version whose title/abstract did not change, the version to reuse work from."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(papers.c.changed).where(and_(papers.c.id == paper.id, papers.c.version == paper.version))
            ).first()
            if row is None or row.changed:
                return None
            prev = conn.execute(
                select(func.max(papers.c.version)).where(
                    and_(papers.c.id == paper.id, papers.c.version < paper.version)
                )
            ).scalar()
        return int(prev) if prev is not None else None

    def count_papers(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(papers)).scalar() or 0)

    # --- days ----------------------------------------------------------------------------
    def record_day(self, day: dt.date, state: str, source: str, fetched: int) -> None:
        with self._tx() as conn:
            conn.execute(days.delete().where(days.c.date == day))
            conn.execute(
                days.insert().values(date=day, state=state, source=source, fetched=fetched, fetched_at=_utcnow())
            )

    def day_state(self, day: dt.date) -> tuple[str, str] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(days.c.state, days.c.source).where(days.c.date == day)).first()
        return (r.state, r.source) if r else None

    # --- embeddings ----------------------------------------------------------------------
    def get_embeddings(self, keys: list[tuple[str, int]], embedder: str) -> dict[tuple[str, int], np.ndarray]:
        out: dict[tuple[str, int], np.ndarray] = {}
        if not keys:
            return out
        ids = sorted({k[0] for k in keys})
        wanted = set(keys)
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    select(embeddings).where(
                        and_(embeddings.c.embedder == embedder, embeddings.c.id.in_(ids[i : i + 500]))
                    )
                ).all()
                for r in rows:
                    if (r.id, r.version) in wanted:
                        out[(r.id, r.version)] = np.frombuffer(r.vector, dtype=np.float32).copy()
        return out

    def save_embeddings(self, items: dict[tuple[str, int], np.ndarray], embedder: str) -> None:
        if not items:
            return
        with self._tx() as conn:
            for (pid, ver), vec in items.items():
                conn.execute(
                    embeddings.delete().where(
                        and_(embeddings.c.id == pid, embeddings.c.version == ver, embeddings.c.embedder == embedder)
                    )
                )
                v = np.asarray(vec, dtype=np.float32)
                conn.execute(
                    embeddings.insert().values(
                        id=pid, version=ver, embedder=embedder, dim=v.shape[0], vector=v.tobytes()
                    )
                )

    # --- relevance -----------------------------------------------------------------------
    def save_relevance(self, items: Iterable[Relevance]) -> None:
        with self._tx() as conn:
            for r in items:
                conn.execute(relevance.delete().where(and_(relevance.c.id == r.id, relevance.c.version == r.version)))
                conn.execute(
                    relevance.insert().values(
                        id=r.id,
                        version=r.version,
                        model=r.model,
                        score=r.score,
                        relevant=r.relevant,
                        topics=r.topics,
                        neighbours=[n.model_dump() for n in r.neighbours],
                        scored_at=_utcnow(),
                    )
                )

    def get_relevance(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Relevance]:
        out: dict[tuple[str, int], Relevance] = {}
        ids = sorted({k[0] for k in keys})
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                for r in conn.execute(select(relevance).where(relevance.c.id.in_(ids[i : i + 500]))):
                    out[(r.id, r.version)] = Relevance(
                        id=r.id,
                        version=r.version,
                        score=r.score,
                        relevant=r.relevant,
                        topics=r.topics,
                        neighbours=[Neighbour(**n) for n in r.neighbours],
                        model=r.model,
                    )
        return {k: v for k, v in out.items() if k in set(keys)}

    # --- summaries -----------------------------------------------------------------------
    def get_summary(self, paper_id: str, version: int, model: str, prompt_hash: str) -> Summary | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(summaries).where(
                    and_(
                        summaries.c.id == paper_id,
                        summaries.c.version == version,
                        summaries.c.model == model,
                        summaries.c.prompt_hash == prompt_hash,
                    )
                )
            ).first()
        return _row_summary(r) if r else None

    def latest_summary(self, paper_id: str, version: int) -> Summary | None:
        """The best stored summary of a paper version: ok before fallback before failed, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(summaries)
                .where(and_(summaries.c.id == paper_id, summaries.c.version == version))
                .order_by(summaries.c.created.desc())
            ).all()
        if not rows:
            return None
        rank = {SummaryStatus.ok.value: 0, SummaryStatus.fallback.value: 1, SummaryStatus.failed.value: 2}
        best = min(rows, key=lambda r: rank.get(r.status, 3))
        return _row_summary(best)

    def save_summary(self, s: Summary) -> None:
        with self._tx() as conn:
            conn.execute(
                summaries.delete().where(
                    and_(
                        summaries.c.id == s.id,
                        summaries.c.version == s.version,
                        summaries.c.model == s.model,
                        summaries.c.prompt_hash == s.prompt_hash,
                    )
                )
            )
            conn.execute(
                summaries.insert().values(
                    id=s.id,
                    version=s.version,
                    model=s.model,
                    prompt_hash=s.prompt_hash,
                    tldr_en=s.tldr_en,
                    title_zh=s.title_zh,
                    tldr_zh=s.tldr_zh,
                    abstract_zh=s.abstract_zh,
                    status=s.status.value,
                    backend=s.backend,
                    reason=s.reason,
                    tokens_in=s.tokens_in,
                    tokens_out=s.tokens_out,
                    cost=s.cost,
                    created=_utcnow(),
                )
            )

    # --- digests & deliveries ------------------------------------------------------------
    def save_digest(self, day: dt.date, entries: int, paths: list[str]) -> None:
        with self._tx() as conn:
            conn.execute(digests.delete().where(digests.c.date == day))
            conn.execute(digests.insert().values(date=day, entries=entries, paths=paths, rendered_at=_utcnow()))

    def digest_days(self) -> list[tuple[dt.date, int]]:
        with self.engine.connect() as conn:
            return [(r.date, r.entries) for r in conn.execute(select(digests).order_by(digests.c.date.desc()))]

    def delivered(self, day: dt.date) -> set[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.recipient).where(and_(deliveries.c.date == day, deliveries.c.status == "sent"))
            ).all()
        return {r.recipient for r in rows}

    def record_delivery(self, day: dt.date, recipient: str, status: str, error: str = "") -> None:
        with self._tx() as conn:
            conn.execute(deliveries.delete().where(and_(deliveries.c.date == day, deliveries.c.recipient == recipient)))
            conn.execute(
                deliveries.insert().values(
                    date=day, recipient=recipient, status=status, error=error, attempted_at=_utcnow()
                )
            )

    # --- runs ----------------------------------------------------------------------------
    def start_run(self, kind: str, day: dt.date | None) -> int:
        with self._tx() as conn:
            res = conn.execute(
                runs.insert().values(kind=kind, date=day, status="running", started=_utcnow(), report={})
            )
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, report: RunReport) -> None:
        with self._tx() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(status=report.status.value, finished=_utcnow(), report=json.loads(report.model_dump_json()))
            )

    def last_runs(self, n: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.run_id.desc()).limit(n)).all()
        return [dict(r._mapping) for r in rows]

    def close(self) -> None:
        self.engine.dispose()


def _row_summary(r: Any) -> Summary:
    return Summary(
        id=r.id,
        version=r.version,
        tldr_en=r.tldr_en,
        title_zh=r.title_zh,
        tldr_zh=r.tldr_zh,
        abstract_zh=r.abstract_zh,
        status=SummaryStatus(r.status),
        backend=r.backend,
        reason=r.reason,
        model=r.model,
        prompt_hash=r.prompt_hash,
        tokens_in=r.tokens_in,
        tokens_out=r.tokens_out,
        cost=r.cost,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_store(url: str) -> Store:
    return Store(url)


Progress = Callable[[int], None]

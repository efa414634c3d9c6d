"""Papers, days, embeddings, relevance, summaries and digests: what the stages read and write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select, update

from digest.models import DaySource, DayState, FetchCounts, Paper, Relevance, Summary
from digest.store.base import StoreBase
from digest.store.rows import from_row, to_row, utcnow
from digest.store.schema import days, digests, embeddings, papers, relevance, summaries


@dataclass(frozen=True)
class DayInfo:
    state: DayState
    source: DaySource
    fetched: int
    checks: int
    fetched_at: dt.datetime


def _latest(rows: Iterable[Any]) -> dict[str, Any]:
    latest: dict[str, Any] = {}
    for r in rows:
        if r.id not in latest or r.version > latest[r.id].version:
            latest[r.id] = r
    return latest


class PaperStore(StoreBase):
    # --- papers --------------------------------------------------------------------------
    def upsert_papers(self, items: Iterable[Paper], source: DaySource, announced: dt.date | None = None) -> FetchCounts:
        """Store papers idempotently (safe when two processes store the same papers at once).

        Same id+version again: no-op (``duplicate``). A new version of a known id: stored, ``changed`` only
        if title or abstract differ, and it keeps the id's announcement day (a paper belongs to at most
        one day). A new id: stored under ``announced`` (or the paper's own).
        """
        counts = FetchCounts()
        with self._tx() as conn:
            for p in items:
                counts.fetched += 1
                existing = conn.execute(
                    select(papers.c.version, papers.c.title, papers.c.abstract, papers.c.announced)
                    .where(papers.c.id == p.id)
                    .order_by(papers.c.version.desc())
                ).all()
                if any(r.version == p.version for r in existing):
                    counts.duplicate += 1
                    continue
                if existing:
                    latest = existing[0]
                    changed = latest.title != p.title or latest.abstract != p.abstract
                    day = next((r.announced for r in reversed(existing) if r.announced), None)
                else:
                    changed, day = False, announced or p.announced
                row = to_row(p, papers, announced=day, source=source.value, first_seen=utcnow(), changed=changed)
                if not self.insert_new(conn, papers, row):
                    counts.duplicate += 1
                elif existing:
                    counts.replaced += 1
                else:
                    counts.new += 1
        return counts

    def assign_day(self, day: dt.date, ids: list[str]) -> int:
        """Make ``ids`` exactly the papers announced on ``day`` (the feed's list replacing a reconstruction):
        those ids move to ``day``, the day's other papers lose it. Returns how many rows changed."""
        with self._tx() as conn:
            moved = conn.execute(
                update(papers).where(and_(papers.c.announced == day, papers.c.id.not_in(ids))).values(announced=None)
            ).rowcount
            for i in range(0, len(ids), 500):
                moved += conn.execute(
                    update(papers)
                    .where(and_(papers.c.id.in_(ids[i : i + 500]), papers.c.announced.is_distinct_from(day)))
                    .values(announced=day)
                ).rowcount
        return int(moved or 0)

    def papers_of_day(self, day: dt.date) -> list[Paper]:
        """Latest version of every paper announced on ``day``, in arrival order."""
        with self._read() as conn:
            rows = conn.execute(
                select(papers).where(papers.c.announced == day).order_by(papers.c.first_seen, papers.c.id)
            ).all()
        return [from_row(Paper, r) for r in _latest(rows).values()]

    def papers_between(self, start: dt.date, end: dt.date) -> list[Paper]:
        with self._read() as conn:
            rows = conn.execute(
                select(papers).where(and_(papers.c.announced >= start, papers.c.announced <= end))
            ).all()
        return sorted((from_row(Paper, r) for r in _latest(rows).values()), key=lambda p: p.id)

    def get_papers(self, ids: Iterable[str]) -> list[Paper]:
        """The latest stored version of each id, in the order given (unknown ids left out)."""
        ids = list(ids)
        found: dict[str, Any] = {}
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(select(papers).where(papers.c.id.in_(ids[i : i + 500]))).all()
                found.update(_latest([*found.values(), *rows]))
        return [from_row(Paper, found[i]) for i in ids if i in found]

    def iter_papers(self, batch: int = 2000) -> Iterator[Paper]:
        """Every paper's latest version (for training negatives and suggestions)."""
        with self._read() as conn:
            rows = conn.execute(select(papers).order_by(papers.c.id, papers.c.version)).all()
        for r in _latest(rows).values():
            yield from_row(Paper, r)

    def previous_version_unchanged(self, paper: Paper) -> int | None:
        """If ``paper`` is a new version whose title/abstract did not change, the version to reuse work from."""
        with self._read() as conn:
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

    def update_metadata(self, items: Iterable[Paper]) -> None:
        """Store comments / journal reference / DOI learnt later (from the API) on existing rows."""
        with self._tx() as conn:
            for p in items:
                conn.execute(
                    papers.update()
                    .where(and_(papers.c.id == p.id, papers.c.version == p.version))
                    .values(comment=p.comment, journal_ref=p.journal_ref, doi=p.doi)
                )

    def count_papers(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(papers)).scalar() or 0)

    # --- days ----------------------------------------------------------------------------
    def record_day(self, day: dt.date, state: DayState, source: DaySource, fetched: int, check: bool = False) -> None:
        """What a fetch found for ``day``; ``check`` counts one more look at an empty weekday."""
        with self._tx() as conn:
            prev = conn.execute(select(days.c.checks).where(days.c.date == day)).scalar()
            checks = (prev or 0) + (1 if check else 0)
            row = {
                "date": day,
                "state": state.value,
                "source": source.value,
                "fetched": fetched,
                "fetched_at": utcnow(),
                "checks": checks,
            }
            self.upsert(conn, days, [row], ["date"])

    def day_info(self, day: dt.date) -> DayInfo | None:
        with self._read() as conn:
            r = conn.execute(select(days).where(days.c.date == day)).first()
        if r is None:
            return None
        return DayInfo(DayState(r.state), DaySource(r.source), r.fetched, r.checks or 0, r.fetched_at)

    def days_between(self, start: dt.date, end: dt.date) -> dict[dt.date, DayInfo]:
        with self._read() as conn:
            rows = conn.execute(select(days).where(and_(days.c.date >= start, days.c.date <= end))).all()
        return {
            r.date: DayInfo(DayState(r.state), DaySource(r.source), r.fetched, r.checks or 0, r.fetched_at)
            for r in rows
        }

    # --- embeddings ----------------------------------------------------------------------
    def get_embeddings(self, keys: list[tuple[str, int]], embedder: str) -> dict[tuple[str, int], np.ndarray]:
        out: dict[tuple[str, int], np.ndarray] = {}
        ids = sorted({k[0] for k in keys})
        wanted = set(keys)
        with self._read() as conn:
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
        rows = []
        for (pid, ver), vec in items.items():
            v = np.asarray(vec, dtype=np.float32)
            rows.append({"id": pid, "version": ver, "embedder": embedder, "dim": v.shape[0], "vector": v.tobytes()})
        with self._tx() as conn:
            self.upsert(conn, embeddings, rows, ["id", "version", "embedder"])

    # --- relevance -----------------------------------------------------------------------
    def save_relevance(self, items: Iterable[Relevance]) -> None:
        rows = [to_row(r, relevance, scored_at=utcnow()) for r in items]
        with self._tx() as conn:
            self.upsert(conn, relevance, rows, ["id", "version"])

    def get_relevance(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Relevance]:
        out: dict[tuple[str, int], Relevance] = {}
        ids = sorted({k[0] for k in keys})
        wanted = set(keys)
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                for r in conn.execute(select(relevance).where(relevance.c.id.in_(ids[i : i + 500]))):
                    if (r.id, r.version) in wanted:
                        out[(r.id, r.version)] = from_row(Relevance, r)
        return out

    # --- summaries -----------------------------------------------------------------------
    def get_summary(self, paper_id: str, version: int, model: str, prompt_hash: str) -> Summary | None:
        with self._read() as conn:
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
        return from_row(Summary, r) if r else None

    def summaries_of(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[Summary]]:
        """Every stored summary of each (id, version), newest first."""
        out: dict[tuple[str, int], list[Summary]] = {k: [] for k in keys}
        ids = sorted({k[0] for k in keys})
        with self._read() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(
                    select(summaries).where(summaries.c.id.in_(ids[i : i + 500])).order_by(summaries.c.created.desc())
                ).all()
                for r in rows:
                    if (r.id, r.version) in out:
                        out[(r.id, r.version)].append(from_row(Summary, r))
        return out

    def save_summary(self, s: Summary) -> None:
        row = to_row(s, summaries, created=utcnow())
        with self._tx() as conn:
            self.upsert(conn, summaries, [row], ["id", "version", "model", "prompt_hash"])

    # --- digests -------------------------------------------------------------------------
    def save_digest(self, day: dt.date, entries: int, paths: list[str]) -> None:
        with self._tx() as conn:
            row = {"date": day, "entries": entries, "paths": paths, "rendered_at": utcnow()}
            self.upsert(conn, digests, [row], ["date"])

    def digest_days(self) -> list[tuple[dt.date, int]]:
        with self._read() as conn:
            return [(r.date, r.entries) for r in conn.execute(select(digests).order_by(digests.c.date.desc()))]

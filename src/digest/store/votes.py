"""The reader's votes: up/down per paper and topic ("any" = every topic), latest vote wins."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import and_, select

from digest.store.base import StoreBase
from digest.store.rows import from_row, to_row, utcnow
from digest.store.schema import unsubscribes, votes

ANY = "any"


class Vote(BaseModel):
    paper_id: str
    topic: str = ANY
    vote: Literal["up", "down"]
    who: str = ""
    source: Literal["cli", "import", "web", "email"] = "cli"
    created: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))


class VoteStore(StoreBase):
    def add_votes(self, items: list[Vote]) -> int:
        """Record votes atomically (all or nothing)."""
        with self._tx() as conn:
            for v in items:
                conn.execute(votes.insert().values(**to_row(v, votes)))
        return len(items)

    def all_votes(self) -> list[Vote]:
        with self._read() as conn:
            return [from_row(Vote, r) for r in conn.execute(select(votes).order_by(votes.c.vote_id))]

    def current_votes(self) -> list[Vote]:
        """The latest vote per (paper, topic, who)."""
        latest: dict[tuple[str, str, str], Vote] = {}
        for v in self.all_votes():
            latest[(v.paper_id, v.topic, v.who)] = v
        return list(latest.values())

    def latest_vote(self, paper_id: str, topic: str, who: str) -> Vote | None:
        """The latest vote of ``who`` on a paper and topic (through the paper index: cost independent of the
        number of votes)."""
        with self._read() as conn:
            r = conn.execute(
                select(votes)
                .where(and_(votes.c.paper_id == paper_id, votes.c.topic == topic, votes.c.who == who))
                .order_by(votes.c.vote_id.desc())
                .limit(1)
            ).first()
        return from_row(Vote, r) if r is not None else None

    def delete_votes(self, who: str) -> int:
        """Forget every vote of ``who`` (a reader's reset)."""
        with self._tx() as conn:
            return int(conn.execute(votes.delete().where(votes.c.who == who)).rowcount or 0)

    def count_votes(self) -> int:
        return len(self.all_votes())

    def unsubscribe(self, address: str) -> None:
        with self._tx() as conn:
            self.insert_new(conn, unsubscribes, {"address": address, "at": utcnow()})

    def unsubscribed(self) -> set[str]:
        with self._read() as conn:
            return {r.address for r in conn.execute(select(unsubscribes))}

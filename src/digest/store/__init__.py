"""The store: the only package that touches the database.

SQLAlchemy 2.x Core; a SQLite file by default, any SQLAlchemy URL (PostgreSQL with ``psycopg``) when
scaled out. Named, frozen migrations (:mod:`.migrations`) are applied when the store is opened; rows map
to and from the pydantic records in one place (:mod:`.rows`); writes are insert-on-conflict upserts;
coordination between processes (leases, claims, the email outbox) lives in :mod:`.coord`.
"""

from __future__ import annotations

from digest.store.coord import Claim, CoordStore, LeaseHolder
from digest.store.papers import DayInfo, PaperStore
from digest.store.votes import ANY, Vote, VoteStore


class Store(PaperStore, CoordStore, VoteStore):
    """All persistence. Open once per process and pass it down; safe across threads and processes."""


def open_store(url: str) -> Store:
    return Store(url)


__all__ = ["ANY", "Claim", "DayInfo", "LeaseHolder", "Store", "Vote", "open_store"]

"""The engine, transactions and dialect-neutral upserts that every part of the store builds on."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from digest.errors import StoreError, mask_secrets
from digest.store.migrations import migrate


class StoreBase:
    """Opens the engine and applies migrations; ``_tx()`` is a write transaction, ``_read()`` a read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.safe_url = mask_secrets(url)
        try:
            u = make_url(url)
        except Exception:
            raise StoreError(f"DIGEST_DB_URL {self.safe_url!r} is not a SQLAlchemy URL") from None
        self.dialect = u.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if u.database and u.database != ":memory:":
                folder = Path(u.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the store's folder {folder} ({exc.strerror}): check DIGEST_DB_URL"
                    ) from None
                _refuse_emptied(Path(u.database))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
        self._lock = threading.RLock()  # one writer per process; across processes the database decides
        try:
            self.engine: Engine = create_engine(url, **kwargs)
            if self.dialect == "sqlite":
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            migrate(self.engine)
        except SQLAlchemyError as exc:
            detail = mask_secrets(str(exc.__cause__ or exc).splitlines()[0])[:200]
            raise StoreError(
                f"cannot open the store at {self.safe_url} ({exc.__class__.__name__}: {detail}); check DIGEST_DB_URL"
            ) from None
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"the driver for {self.safe_url} is not installed ({exc.name}): "
                "for PostgreSQL install `arxiv-digest[postgres]` (psycopg 3) and use postgresql+psycopg://…"
            ) from None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite: writers queue instead of failing on upgrade)."""
        with self._lock, self.engine.connect() as conn:
            conn.execution_options(digest_write=True)
            try:
                with conn.begin():
                    yield conn
            except OperationalError as exc:
                raise wrap_errors(exc, self.url) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _insert(self, table: Table) -> Insert:
        """``INSERT`` in the store's dialect, so callers can add ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
        mod: Any = postgresql if self.dialect == "postgresql" else sqlite
        return mod.insert(table)

    def insert_new(self, conn: Connection, table: Table, row: dict[str, Any]) -> bool:
        """``INSERT … ON CONFLICT DO NOTHING``; True when this call inserted the row (one of two racers wins)."""
        pk = next(iter(table.primary_key.columns))
        stmt: Any = self._insert(table).values(**row)
        stmt = stmt.on_conflict_do_nothing().returning(pk)
        return conn.execute(stmt).first() is not None

    def upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        """Insert ``rows``, replacing the non-key columns of rows that already exist (insert-on-conflict)."""
        if not rows:
            return
        for row in rows:
            stmt: Any = self._insert(table).values(**row)
            update = {c: stmt.excluded[c] for c in row if c not in keys}
            stmt = (
                stmt.on_conflict_do_update(index_elements=keys, set_=update)
                if update
                else stmt.on_conflict_do_nothing()
            )
            conn.execute(stmt)

    def close(self) -> None:
        self.engine.dispose()


def _refuse_emptied(path: Path) -> None:
    """A store file that exists but is empty (truncated, a failed copy) is not a fresh install: taking it for one
    would re-fetch, re-pay and re-email everything and forget every vote and unsubscribe."""
    try:
        st = path.stat()
    except OSError:
        return
    if st.st_size == 0 and time.time() - st.st_mtime > 10:  # not a file another process is creating right now
        raise StoreError(
            f"the store {path} exists but is empty (0 bytes): restore it from a backup, or delete it to start afresh "
            "(every paper is fetched, paid for and emailed again; votes and unsubscribes are lost)"
        )


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=60000")  # writers wait for each other, also on a loaded machine
    for attempt in range(20):  # switching a new file to WAL needs a moment alone: two first runs may meet
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.25)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("digest_write") else "BEGIN")


def wrap_errors(exc: SQLAlchemyError, url: str) -> StoreError:
    """One line that says what to do, never SQL text."""
    detail = str(exc.__cause__ or exc).splitlines()[0]
    where = mask_secrets(url)
    if "readonly" in detail or "read-only" in detail:
        return StoreError(f"the store {where} is read-only: give this user write access to the file and its folder")
    if "locked" in detail or "could not obtain lock" in detail:
        return StoreError(
            f"the store {where} stayed locked by another process for 60 s: is a run or backup holding it? try again"
        )
    if "disk" in detail and ("full" in detail or "I/O" in detail):
        return StoreError(f"the store {where} cannot be written ({detail[:80]}): free disk space and run again")
    return StoreError(f"the store {where} failed ({exc.__class__.__name__}: {mask_secrets(detail)[:120]})")

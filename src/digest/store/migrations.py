"""Named, forward-only migrations with frozen DDL, recorded in ``schema_migrations``, applied in order.

Each migration is a function of alembic's :class:`~alembic.operations.Operations` that spells out its own
columns: it never refers to the live tables of :mod:`digest.store.schema`, so a migration written today
still creates today's shape when it runs on an old database years later. Never edit a released
migration; add the next one.

Two processes opening a brand-new database at once is safe: the whole run is one transaction under a
lock (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL), and the set of
applied migrations is read again inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine

Migration = Callable[[Operations], None]
_PG_LOCK = 7244011  # any constant: the advisory lock id of "arxiv-digest migrations"


def m0001_papers_days_runs(op: Operations) -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("primary_category", sa.String(40)),
        sa.Column("announce_type", sa.String(20)),
        sa.Column("announced", sa.Date),
        sa.Column("published", sa.DateTime),
        sa.Column("updated", sa.DateTime),
        sa.Column("comment", sa.Text),
        sa.Column("abs_url", sa.Text),
        sa.Column("pdf_url", sa.Text),
        sa.Column("source", sa.String(10)),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("changed", sa.Boolean, nullable=False),
    )
    op.create_index("ix_papers_announced", "papers", ["announced"])
    op.create_table(
        "days",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("fetched", sa.Integer, nullable=False),
        sa.Column("fetched_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("date", sa.Date),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", sa.DateTime, nullable=False),
        sa.Column("finished", sa.DateTime),
        sa.Column("report", sa.JSON, nullable=False),
    )


def m0002_embeddings_relevance(op: Operations) -> None:
    op.create_table(
        "embeddings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("embedder", sa.String(100), primary_key=True),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "relevance",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("relevant", sa.Boolean, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("neighbours", sa.JSON, nullable=False),
        sa.Column("scored_at", sa.DateTime, nullable=False),
    )


def m0003_summaries(op: Operations) -> None:
    op.create_table(
        "summaries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("prompt_hash", sa.String(64), primary_key=True),
        sa.Column("tldr_en", sa.Text, nullable=False),
        sa.Column("title_zh", sa.Text, nullable=False),
        sa.Column("tldr_zh", sa.Text, nullable=False),
        sa.Column("abstract_zh", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )


def m0004_digests_deliveries(op: Operations) -> None:
    op.create_table(
        "digests",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("rendered_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("recipient", sa.String(320), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempted_at", sa.DateTime, nullable=False),
    )


def m0005_coordination(op: Operations) -> None:
    """Per-day run leases, per-paper LLM claims, and who runs what (runs killed without cleanup show as crashed)."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "llm_claims",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.add_column("runs", sa.Column("owner", sa.String(200)))
    op.add_column("runs", sa.Column("heartbeat", sa.DateTime))
    op.add_column("runs", sa.Column("flow_run_id", sa.String(64)))


def m0006_summary_tiers(op: Operations) -> None:
    """An explicit summary tier (llm / translated / extractive) instead of a sentinel model name ``none``."""
    op.add_column("summaries", sa.Column("tier", sa.String(12), nullable=False, server_default="extractive"))
    op.add_column("summaries", sa.Column("llm_answered", sa.Boolean, nullable=False, server_default="0"))
    op.execute(
        "UPDATE summaries SET tier = CASE WHEN status = 'ok' THEN 'llm' "
        "WHEN backend = 'google-translate' THEN 'translated' ELSE 'extractive' END"
    )
    op.execute("UPDATE summaries SET llm_answered = (tokens_in > 0)")
    op.execute("UPDATE summaries SET status = 'fallback' WHERE status = 'failed'")
    op.execute("UPDATE summaries SET status = 'ok' WHERE model = 'none'")
    op.execute("UPDATE summaries SET model = '', prompt_hash = '' WHERE model = 'none'")


def m0007_day_checks(op: Operations) -> None:
    """How often an empty weekday channel was checked (unconfirmed days are re-checked, not holidays for good)."""
    op.add_column("days", sa.Column("checks", sa.Integer, nullable=False, server_default="0"))


def m0008_outbox(op: Operations) -> None:
    """An email outbox (claim → send → mark) for every edition, replacing the per-day deliveries table."""
    op.create_table(
        "outbox",
        sa.Column("edition", sa.String(40), primary_key=True),
        sa.Column("recipient", sa.String(320), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_at", sa.DateTime),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("message_id", sa.String(300)),
    )
    op.execute(
        "INSERT INTO outbox (edition, recipient, status, error, attempts, sent_at) "
        "SELECT 'daily:' || CAST(date AS VARCHAR), recipient, status, error, 1, "
        "CASE WHEN status = 'sent' THEN attempted_at END FROM deliveries"
    )
    op.drop_table("deliveries")


def m0009_paper_venue(op: Operations) -> None:
    """The API's journal reference and DOI (shown as the venue line)."""
    op.add_column("papers", sa.Column("journal_ref", sa.Text))
    op.add_column("papers", sa.Column("doi", sa.String(200)))


def m0010_votes(op: Operations) -> None:
    """The reader's votes: up/down per paper and topic (or "any")."""
    op.create_table(
        "votes",
        sa.Column("vote_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("paper_id", sa.String(40), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("vote", sa.String(4), nullable=False),
        sa.Column("who", sa.String(320), nullable=False, server_default=""),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_index("ix_votes_paper_id", "votes", ["paper_id"])


def m0011_unsubscribes(op: Operations) -> None:
    """Addresses that unsubscribed (signed one-click links from the email)."""
    op.create_table(
        "unsubscribes",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
    )


def m0012_relevance_topic(op: Operations) -> None:
    """The topic a paper was decided under (its largest margin over the topic's threshold)."""
    op.add_column("relevance", sa.Column("topic", sa.String(100), nullable=False, server_default=""))


def m0013_summary_attempts(op: Operations) -> None:
    """Paid attempts at one summary key across runs (a rejected answer is asked again, a bounded number of times)."""
    op.add_column("summaries", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))


def m0014_clocks(op: Operations) -> None:
    """Shared clocks: the next free turn of a rate-limited service (arXiv) for every process using this store."""
    op.create_table(
        "clocks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("next_at", sa.DateTime, nullable=False),
    )


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_papers_days_runs", m0001_papers_days_runs),
    ("0002_embeddings_relevance", m0002_embeddings_relevance),
    ("0003_summaries", m0003_summaries),
    ("0004_digests_deliveries", m0004_digests_deliveries),
    ("0005_coordination", m0005_coordination),
    ("0006_summary_tiers", m0006_summary_tiers),
    ("0007_day_checks", m0007_day_checks),
    ("0008_outbox", m0008_outbox),
    ("0009_paper_venue", m0009_paper_venue),
    ("0010_votes", m0010_votes),
    ("0011_unsubscribes", m0011_unsubscribes),
    ("0012_relevance_topic", m0012_relevance_topic),
    ("0013_summary_attempts", m0013_summary_attempts),
    ("0014_clocks", m0014_clocks),
]

_LEDGER = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)


def applied(conn: Connection) -> set[str]:
    if not sa.inspect(conn).has_table("schema_migrations"):
        return set()
    return {r.name for r in conn.execute(sa.select(_LEDGER.c.name))}


def pending(engine: Engine, upto: str | None = None) -> list[str]:
    with engine.connect() as conn:
        done = applied(conn)
    return [n for n, _ in _selected(upto) if n not in done]


def _selected(upto: str | None) -> list[tuple[str, Migration]]:
    if upto is None:
        return MIGRATIONS
    names = [n for n, _ in MIGRATIONS]
    if upto not in names:
        raise ValueError(f"unknown migration {upto!r}")
    return MIGRATIONS[: names.index(upto) + 1]


def migrate(engine: Engine, upto: str | None = None) -> list[str]:
    """Apply the pending migrations (up to ``upto``, for tests) in one locked transaction; their names."""
    if not pending(engine, upto):  # the common case: no write lock needed
        return []
    done_now: list[str] = []
    with engine.connect() as conn:
        conn.execution_options(digest_write=True)  # BEGIN IMMEDIATE on SQLite (see Store)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK})"))
            ops = Operations(MigrationContext.configure(conn))
            if not sa.inspect(conn).has_table("schema_migrations"):
                ops.create_table(
                    "schema_migrations",
                    sa.Column("name", sa.String(100), primary_key=True),
                    sa.Column("applied_at", sa.DateTime, nullable=False),
                )
            done = applied(conn)  # again, under the lock: another process may have just migrated
            for name, fn in _selected(upto):
                if name in done:
                    continue
                fn(ops)
                conn.execute(
                    _LEDGER.insert().values(name=name, applied_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
                )
                done_now.append(name)
    return done_now

"""The store's tables as they are *now*, for queries. Their history lives in :mod:`digest.store.migrations`
(frozen DDL); ``tests/store/test_migrations.py`` checks that migrating an empty database yields exactly this.
"""

from __future__ import annotations

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
)

metadata = MetaData()

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
    Column("abs_url", Text),  # unused since 0009 (derived from the id); kept for old rows
    Column("pdf_url", Text),
    Column("source", String(10)),
    Column("first_seen", DateTime, nullable=False),
    Column("changed", Boolean, nullable=False),
    Column("journal_ref", Text),
    Column("doi", String(200)),
)
days = Table(
    "days",
    metadata,
    Column("date", Date, primary_key=True),
    Column("state", String(20), nullable=False),
    Column("source", String(10), nullable=False),
    Column("fetched", Integer, nullable=False),
    Column("fetched_at", DateTime, nullable=False),
    Column("checks", Integer, nullable=False, server_default="0"),
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
    Column("topic", String(100), nullable=False, server_default=""),
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
    Column("tier", String(12), nullable=False, server_default="extractive"),
    Column("llm_answered", Boolean, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),  # paid attempts at this key, across runs
)
digests = Table(
    "digests",
    metadata,
    Column("date", Date, primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("paths", JSON, nullable=False),
    Column("rendered_at", DateTime, nullable=False),
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
    Column("owner", String(200)),
    Column("heartbeat", DateTime),
    Column("flow_run_id", String(64)),
)
clocks = Table(
    "clocks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("next_at", DateTime, nullable=False),  # the next free turn (UTC)
)
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
llm_claims = Table(
    "llm_claims",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
outbox = Table(
    "outbox",
    metadata,
    Column("edition", String(40), primary_key=True),  # "daily:2026-06-02" | "weekly:2026-W23" | "alert:…"
    Column("recipient", String(320), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("error", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(200)),
    Column("claimed_at", DateTime),
    Column("sent_at", DateTime),
    Column("message_id", String(300)),
)
votes = Table(
    "votes",
    metadata,
    Column("vote_id", Integer, primary_key=True, autoincrement=True),
    Column("paper_id", String(40), nullable=False, index=True),
    Column("topic", String(40), nullable=False),  # a topic id, or "any"
    Column("vote", String(4), nullable=False),  # up | down
    Column("who", String(320), nullable=False, server_default=""),
    Column("source", String(20), nullable=False),  # cli | import | web | email
    Column("created", DateTime, nullable=False),
)
unsubscribes = Table(
    "unsubscribes",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("at", DateTime, nullable=False),
)

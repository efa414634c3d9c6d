"""The store on a real PostgreSQL server: a migration that adds a column keeps the rows; coordination holds."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from digest.models import DeliveryStatus
from digest.store import Claim, Store
from digest.store.migrations import MIGRATIONS, migrate


def test_adding_a_column_to_a_postgres_database_of_the_previous_schema(pg_db: str) -> None:
    eng = sa.create_engine(pg_db)
    migrate(eng, upto="0008_outbox")
    with eng.begin() as c:
        c.execute(sa.text(
            "INSERT INTO papers (id, version, title, abstract, authors, categories, announced, first_seen, changed) "
            "VALUES ('2606.00001', 1, 'Old row', 'kept', '[]', '[]', '2026-06-02', now(), false)"
        ))  # fmt: skip
    eng.dispose()
    store = Store(pg_db)
    cols = {c["name"] for c in sa.inspect(store.engine).get_columns("papers")}
    assert {"journal_ref", "doi"} <= cols
    [p] = store.papers_of_day(dt.date(2026, 6, 2))
    assert (p.title, p.abstract, p.doi) == ("Old row", "kept", None)
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM schema_migrations")).scalar() == len(MIGRATIONS)


def test_coordination_on_postgres(pg_db: str) -> None:
    store = Store(pg_db)
    wins: list[str] = []
    gate = threading.Barrier(6)

    def race(name: str) -> None:
        gate.wait()
        if store.acquire_lease("day:2026-06-02", name, 60):
            wins.append(name)

    threads = [threading.Thread(target=race, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.claim_delivery("daily:x", "r@x.org", "a", 60) == Claim.claimed
    assert store.claim_delivery("daily:x", "r@x.org", "b", 60) == Claim.sending
    store.mark_delivery("daily:x", "r@x.org", "a", DeliveryStatus.sent)
    assert store.delivered("daily:x") == {"r@x.org"}

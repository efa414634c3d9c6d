"""Named, frozen migrations: an old database gains columns and keeps its rows; racing processes are safe."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from digest.store import Store
from digest.store.migrations import MIGRATIONS, migrate, pending
from digest.store.schema import metadata


def _engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


def test_fresh_database_has_exactly_the_current_schema(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/x.db")
    insp = sa.inspect(s.engine)
    for table in metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    assert pending(s.engine) == [] and migrate(s.engine) == []


def test_adding_a_column_to_a_database_of_the_previous_schema_keeps_its_rows(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "old.db")
    migrate(eng, upto="0008_outbox")  # the previous schema: papers without journal_ref / doi
    with eng.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO papers (id, version, title, abstract, authors, categories, announced, first_seen, changed) "
                "VALUES ('2606.00001', 1, 'Old row', 'kept', '[]', '[]', '2026-06-02', '2026-06-02 01:00:00', 0)"
            )
        )
    assert "journal_ref" not in {c["name"] for c in sa.inspect(eng).get_columns("papers")}
    store = Store(f"sqlite:///{tmp_path}/old.db")  # opening the store applies the rest
    assert {"journal_ref", "doi"} <= {c["name"] for c in sa.inspect(store.engine).get_columns("papers")}
    [p] = store.papers_of_day(dt.date(2026, 6, 2))
    assert (p.id, p.title, p.abstract, p.journal_ref) == ("2606.00001", "Old row", "kept", None)
    names = [n for n, _ in MIGRATIONS]
    with store.engine.connect() as c:
        assert [r.name for r in c.execute(sa.text("SELECT name FROM schema_migrations ORDER BY name"))] == names


def test_old_summaries_and_deliveries_are_carried_over(tmp_path: Path) -> None:
    eng = _engine(tmp_path / "v4.db")
    migrate(eng, upto="0004_digests_deliveries")
    with eng.begin() as c:
        c.execute(sa.text(
            "INSERT INTO summaries VALUES ('a', 1, 'none', 'no-llm', 'tl', '', '', '', 'fallback', 'extractive', "
            "'no LLM; translation unavailable', 0, 0, 0.0, '2026-06-02 01:00:00')"
        ))  # fmt: skip
        c.execute(sa.text(
            "INSERT INTO summaries VALUES ('b', 1, 'gpt-4o-mini', 'h', 'tl', 't', 'z', 'a', 'ok', 'llm:gpt-4o-mini', "
            "'', 10, 5, 0.1, '2026-06-02 01:00:00')"
        ))  # fmt: skip
        c.execute(sa.text("INSERT INTO deliveries VALUES ('2026-06-02', 'r@x.org', 'sent', '', '2026-06-02 02:00:00')"))
    store = Store(f"sqlite:///{tmp_path}/v4.db")
    got = {k[0]: v[0] for k, v in store.summaries_of([("a", 1), ("b", 1)]).items()}
    assert (got["a"].tier.value, got["a"].model, got["a"].llm_answered) == ("extractive", "", False)
    assert (got["b"].tier.value, got["b"].llm_answered) == ("llm", True)
    assert store.delivered("daily:2026-06-02") == {"r@x.org"}


RACE = """
import sys
from digest.store import Store
s = Store(sys.argv[1])
print(len(s.tables()) if hasattr(s, "tables") else "ok")
"""


def test_two_processes_opening_a_new_database_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/race.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", RACE, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    with _engine(tmp_path / "race.db").connect() as c:
        n = c.execute(sa.text("SELECT count(*) FROM schema_migrations")).scalar()
    assert n == len(MIGRATIONS)

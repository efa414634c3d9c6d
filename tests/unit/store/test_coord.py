"""Leases, claims and the outbox: exactly one of two racers wins, and crashed holders are visible."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from digest.models import DeliveryStatus, RunReport, RunStatus
from digest.store import Claim, Store


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path}/c.db")


def test_lease_one_holder_until_it_expires_or_is_released(tmp_path: Path) -> None:
    s = _store(tmp_path)
    assert s.acquire_lease("day:x", "a", 60)
    assert not s.acquire_lease("day:x", "b", 60)
    assert s.lease_holder("day:x") is not None and s.lease_holder("day:x").owner == "a"  # type: ignore[union-attr]
    assert s.acquire_lease("day:x", "a", 60)  # re-entrant for its owner
    s.release_lease("day:x", "a")
    assert s.acquire_lease("day:x", "b", 0.0)  # expires at once: a crashed holder
    assert s.acquire_lease("day:x", "c", 60)


def test_claims_race_between_threads(tmp_path: Path) -> None:
    s = _store(tmp_path)
    wins: list[str] = []
    start = threading.Barrier(8)

    def go(name: str) -> None:
        start.wait()
        if s.claim_call("p:1:m:h", name, 60):
            wins.append(name)

    threads = [threading.Thread(target=go, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_outbox_claim_send_mark_and_crash_window(tmp_path: Path) -> None:
    s = _store(tmp_path)
    assert s.claim_delivery("daily:d", "r@x", "a", 60) == Claim.claimed
    assert s.claim_delivery("daily:d", "r@x", "b", 60) == Claim.sending  # a live sender: never twice
    s.mark_delivery("daily:d", "r@x", "a", DeliveryStatus.sent, message_id="<m>")
    assert s.claim_delivery("daily:d", "r@x", "b", 60) == Claim.sent
    assert s.claim_delivery("daily:d", "r@x", "b", 60, resend=True) == Claim.claimed
    # a sender that died between claim and mark: shown as unknown, not re-sent by itself
    assert s.claim_delivery("daily:e", "r@x", "dead", 60) == Claim.claimed
    assert s.claim_delivery("daily:e", "r@x", "b", 0.0) == Claim.unknown
    assert [d["status"] for d in s.deliveries("daily:e")] == ["unknown"]
    # a failed send is retried by the next run
    assert s.claim_delivery("daily:f", "r@x", "a", 60) == Claim.claimed
    s.mark_delivery("daily:f", "r@x", "a", DeliveryStatus.failed, "refused")
    assert s.claim_delivery("daily:f", "r@x", "b", 60) == Claim.claimed


def test_a_run_killed_without_cleanup_shows_as_crashed(tmp_path: Path) -> None:
    s = _store(tmp_path)
    assert s.acquire_lease("day:2026-06-02", "host:1", 60)
    rid = s.start_run("day", dt.date(2026, 6, 2), "host:1")
    assert s.last_runs(1, stale_after=60)[0]["status"] == "running"
    assert s.last_runs(1, stale_after=0.0)[0]["status"] == "crashed"  # no heartbeat for too long
    s.release_lease("day:2026-06-02", "host:1")  # its lease lapsed (nobody renewed it)
    assert s.last_runs(1, stale_after=60)[0]["status"] == "crashed"
    s.finish_run(rid, RunReport(date=dt.date(2026, 6, 2), status=RunStatus.ok))
    assert s.last_runs(1, stale_after=0.0)[0]["status"] == "ok"


def test_an_emptied_store_file_is_refused_not_taken_for_a_fresh_install(tmp_path: Path) -> None:
    import os

    import pytest

    from digest.errors import StoreError

    db = tmp_path / "digest.db"
    Store(f"sqlite:///{db}").close()
    db.write_bytes(b"")  # truncated to 0 bytes (a full disk, a failed copy)
    os.utime(db, (0, 0))
    with pytest.raises(StoreError, match="exists but is empty"):
        Store(f"sqlite:///{db}")
    assert db.stat().st_size == 0  # nothing written over it

"""Coordination between processes, in the store (SQLite and PostgreSQL alike, no lock service).

* **Leases** (one per day): a run holds ``day:2026-06-02`` while it works and renews it; a crashed
  holder's lease expires, so the next run takes over.
* **Claims** (one per paid LLM call key): taken before calling, so two runs never pay for the same
  (paper, version, model, prompt).
* **Outbox** (one row per edition and recipient): claimed (``sending``) before SMTP, marked ``sent``
  after. If a process dies between the SMTP server's reply and the mark, the row stays ``sending``;
  once its claim is older than the lease time it is shown as ``unknown`` (in ``digest runs`` /
  ``digest status``) and **not** re-sent automatically — a duplicate email is worse than asking the
  operator to look (``--resend`` sends again on purpose).
* **Runs**: a row per run with a heartbeat; ``running`` with a stale heartbeat is shown as crashed.

Every acquisition is one conditional ``UPDATE`` or an ``INSERT … ON CONFLICT DO NOTHING``: atomic in both
dialects, so exactly one of two racing processes wins.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update

from digest.models import DeliveryStatus, RunReport, RunStatus
from digest.store.base import StoreBase
from digest.store.rows import utcnow
from digest.store.schema import clocks, leases, llm_claims, outbox, runs


class Claim(StrEnum):
    claimed = "claimed"  # this process owns the delivery now: send it, then mark it
    sent = "sent"  # already delivered
    sending = "sending"  # another live process is sending it
    unknown = "unknown"  # a sender died mid-send: not re-sent automatically


def owner_is_dead(owner: str) -> bool:
    """``host:pid`` of a process on this host that no longer exists (a SIGKILL, an OOM kill): its leases and
    claims are free at once instead of after they expire. Another host's owner is never judged dead here."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass(frozen=True)
class LeaseHolder:
    owner: str
    expires_at: dt.datetime


class CoordStore(StoreBase):
    def _take(self, table: Table, key: str, owner: str, seconds: float, **extra: Any) -> bool:
        """Take ``key`` of a (key, owner, expires_at) table if free, expired, or already ours; atomic."""
        now = utcnow()
        until = now + dt.timedelta(seconds=seconds)
        col = next(iter(table.primary_key.columns))
        with self._tx() as conn:
            res = conn.execute(
                update(table)
                .where(and_(col == key, or_(table.c.expires_at < now, table.c.owner == owner)))
                .values(owner=owner, expires_at=until, **extra)
            )
            if res.rowcount:
                return True
            if self.insert_new(conn, table, {col.name: key, "owner": owner, "expires_at": until, **extra}):
                return True
            held = conn.execute(select(table.c.owner).where(col == key)).scalar()
            if held is None or not owner_is_dead(held):
                return False
            res = conn.execute(  # the holder died on this host: take it over now, not when it expires
                update(table)
                .where(and_(col == key, table.c.owner == held))
                .values(owner=owner, expires_at=until, **extra)
            )
            return bool(res.rowcount)

    # --- leases --------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        return self._take(leases, name, owner, seconds, acquired_at=utcnow())

    def renew_lease(self, name: str, owner: str, seconds: float) -> bool:
        with self._tx() as conn:
            res = conn.execute(
                update(leases)
                .where(and_(leases.c.name == name, leases.c.owner == owner))
                .values(expires_at=utcnow() + dt.timedelta(seconds=seconds))
            )
            return bool(res.rowcount)

    def release_lease(self, name: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(leases).where(and_(leases.c.name == name, leases.c.owner == owner)))

    def lease_holder(self, name: str) -> LeaseHolder | None:
        with self._read() as conn:
            r = conn.execute(select(leases).where(leases.c.name == name)).first()
        if r is None or r.expires_at < utcnow() or owner_is_dead(r.owner):
            return None
        return LeaseHolder(r.owner, r.expires_at)

    # --- shared clocks -------------------------------------------------------------------
    def take_turn(self, name: str, spacing: float) -> float:
        """Reserve the next turn of clock ``name`` (turns ``spacing`` seconds apart across every process and
        machine using this store); returns the seconds to wait until it."""
        for _ in range(5):
            now = utcnow()
            with self._tx() as conn:
                q = select(clocks.c.next_at).where(clocks.c.name == name)
                if self.dialect == "postgresql":
                    q = q.with_for_update()
                row = conn.execute(q).first()
                slot = max(now, row.next_at) if row is not None else now
                nxt = slot + dt.timedelta(seconds=spacing)
                if row is not None:
                    conn.execute(update(clocks).where(clocks.c.name == name).values(next_at=nxt))
                elif not self.insert_new(conn, clocks, {"name": name, "next_at": nxt}):
                    continue  # another process created the clock just now: read it again
            return max(0.0, (slot - utcnow()).total_seconds())  # from now: the transaction itself took time
        raise RuntimeError(f"could not take a turn of clock {name}")

    def push_back(self, name: str, seconds: float) -> None:
        """A 429/503: nobody's next turn comes before ``seconds`` from now."""
        until = utcnow() + dt.timedelta(seconds=seconds)
        with self._tx() as conn:
            res = conn.execute(update(clocks).where(and_(clocks.c.name == name, clocks.c.next_at < until))
                               .values(next_at=until))  # fmt: skip
            if not res.rowcount:
                self.insert_new(conn, clocks, {"name": name, "next_at": until})

    # --- LLM claims ----------------------------------------------------------------------
    def claim_call(self, key: str, owner: str, seconds: float) -> bool:
        """Take the right to make the paid call ``key`` (expires, in case the claimer dies)."""
        return self._take(llm_claims, key, owner, seconds)

    def release_call(self, key: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(llm_claims).where(and_(llm_claims.c.key == key, llm_claims.c.owner == owner)))

    # --- outbox --------------------------------------------------------------------------
    def claim_delivery(
        self, edition: str, recipient: str, owner: str, stale_after: float, resend: bool = False
    ) -> Claim:
        """Claim one email before sending it. See the module docstring for what each answer means."""
        now = utcnow()
        with self._tx() as conn:
            row = {
                "edition": edition,
                "recipient": recipient,
                "status": DeliveryStatus.sending.value,
                "error": "",
                "attempts": 1,
                "claimed_by": owner,
                "claimed_at": now,
            }
            if self.insert_new(conn, outbox, row):
                return Claim.claimed
            cur = conn.execute(
                select(outbox).where(and_(outbox.c.edition == edition, outbox.c.recipient == recipient))
            ).one()
            status = DeliveryStatus(cur.status)
            live = (
                cur.claimed_at is not None
                and (now - cur.claimed_at).total_seconds() < stale_after
                and not owner_is_dead(cur.claimed_by or "")
            )
            if status == DeliveryStatus.sending and live:
                return Claim.sending
            if status == DeliveryStatus.sending:  # the sender died: make it visible, do not guess
                conn.execute(
                    update(outbox)
                    .where(and_(outbox.c.edition == edition, outbox.c.recipient == recipient))
                    .values(status=DeliveryStatus.unknown.value, error="sender stopped between claim and mark")
                )
                status = DeliveryStatus.unknown
            retry = status == DeliveryStatus.failed or (
                resend and status in (DeliveryStatus.sent, DeliveryStatus.unknown)
            )
            if not retry:
                return Claim.sent if status == DeliveryStatus.sent else Claim.unknown
            res = conn.execute(
                update(outbox)
                .where(
                    and_(outbox.c.edition == edition, outbox.c.recipient == recipient, outbox.c.status == status.value)
                )
                .values(
                    status=DeliveryStatus.sending.value, claimed_by=owner, claimed_at=now, attempts=cur.attempts + 1
                )
            )
            return Claim.claimed if res.rowcount else Claim.sending

    def mark_delivery(
        self, edition: str, recipient: str, owner: str, status: DeliveryStatus, error: str = "", message_id: str = ""
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                update(outbox)
                .where(and_(outbox.c.edition == edition, outbox.c.recipient == recipient, outbox.c.claimed_by == owner))
                .values(
                    status=status.value,
                    error=error[:500],
                    message_id=message_id or None,
                    sent_at=utcnow() if status == DeliveryStatus.sent else None,
                )
            )

    def deliveries(self, edition: str | None = None) -> list[dict[str, Any]]:
        with self._read() as conn:
            q = select(outbox).order_by(outbox.c.edition.desc(), outbox.c.recipient)
            if edition is not None:
                q = q.where(outbox.c.edition == edition)
            return [dict(r._mapping) for r in conn.execute(q)]

    def delivered(self, edition: str) -> set[str]:
        return {d["recipient"] for d in self.deliveries(edition) if d["status"] == DeliveryStatus.sent.value}

    # --- runs ----------------------------------------------------------------------------
    def start_run(self, kind: str, day: dt.date | None, owner: str = "", flow_run_id: str | None = None) -> int:
        with self._tx() as conn:
            now = utcnow()
            res = conn.execute(
                runs.insert().values(
                    kind=kind,
                    date=day,
                    status=RunStatus.running.value,
                    started=now,
                    heartbeat=now,
                    report={},
                    owner=owner,
                    flow_run_id=flow_run_id,
                )
            )
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def heartbeat(self, run_id: int, day: dt.date | None = None) -> None:
        values: dict[str, Any] = {"heartbeat": utcnow()}
        if day is not None:
            values["date"] = day
        with self._tx() as conn:
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(**values))

    def finish_run(self, run_id: int, report: RunReport) -> None:
        with self._tx() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    status=report.status.value,
                    date=report.date,
                    finished=utcnow(),
                    report=json.loads(report.model_dump_json()),
                )
            )

    def last_runs(self, n: int = 10, stale_after: float = 300.0, kind: str | None = None) -> list[dict[str, Any]]:
        """The newest runs. A ``running`` row is shown as crashed when its process no longer holds its day's
        lease (a run records its day only once it holds the lease, and leases expire when nobody renews them),
        or its heartbeat is older than ``stale_after`` s."""
        q = select(runs).order_by(runs.c.run_id.desc()).limit(n)
        if kind is not None:
            q = q.where(runs.c.kind == kind)
        now = utcnow()
        with self._read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
            held = {
                (r.name, r.owner)
                for r in conn.execute(select(leases.c.name, leases.c.owner).where(leases.c.expires_at >= now))
            }
        for r in rows:
            if r["status"] != RunStatus.running.value:
                continue
            beat = r.get("heartbeat") or r["started"]
            lost = r["date"] is not None and (f"day:{r['date'].isoformat()}", r.get("owner")) not in held
            if lost or owner_is_dead(r.get("owner") or "") or (now - beat).total_seconds() > stale_after:
                r["status"] = RunStatus.crashed.value
        return rows

    def first_run(self) -> dt.datetime | None:
        """When this store's first run started (days before it were never scheduled here)."""
        with self._read() as conn:
            return conn.execute(select(func.min(runs.c.started))).scalar()

    def runs_of_days(self, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        with self._read() as conn:
            q = select(runs).where(and_(runs.c.date >= start, runs.c.date <= end)).order_by(runs.c.run_id)
            return [dict(r._mapping) for r in conn.execute(q)]

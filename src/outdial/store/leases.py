"""Leases on callees, fenced by an epoch, and the heartbeats of the workers that hold them.

A claim moves a callee PENDING -> DIALING and raises its ``lease_epoch``; the claimer keeps
the epoch it was given. Every later write about that attempt (its result, a renewal, a release)
names the epoch and counts only while the callee is still DIALING under it. A worker whose lease
was taken over (it stalled, lost the database, or was declared dead) finds its epoch gone: its
writes are discarded, so an attempt is finished, billed and reported once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, and_, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from outdial.store import schema as s
from outdial.store.arrays import among

_CLAIM_COLUMNS = [
    s.callees.c.id,
    s.callees.c.task_id,
    s.callees.c.number,
    s.callees.c.attempts,
    s.callees.c.lease_epoch,
    *(s.callees.c[f"text{i}"] for i in range(1, 11)),
]


# SQLite: one task's first ``limit`` due pending callees in id order.
_SQLITE_CLAIM_ONE = (
    f"SELECT id FROM callees WHERE task_id = ? AND state = {int(s.CALLEE_PENDING)} "  # noqa: S608
    "AND (next_at IS NULL OR next_at <= ?) ORDER BY id LIMIT ?"
)
# Due pending callees of many tasks at once, each task's first ``limit`` in id order; rows
# another worker is claiming are skipped, not waited for.
_PG_CLAIM_MANY = """
SELECT c.id
FROM unnest(%(tasks)s::bigint[], %(limits)s::int[]) AS w(task_id, lim)
CROSS JOIN LATERAL (
    SELECT callees.id FROM callees
    WHERE callees.task_id = w.task_id AND callees.state = 0
      AND (callees.next_at IS NULL OR callees.next_at <= %(now)s)
    ORDER BY callees.id
    LIMIT w.lim
    FOR UPDATE SKIP LOCKED
) AS c
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A callee taken for dialing: its lease is held by the claiming worker under ``epoch``."""

    callee_id: int
    task_id: int
    number: str
    texts: tuple[str | None, ...]
    attempt: int
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """A callee whose dialing worker stopped (its lease expired, or the worker is known dead),
    with its task's facts."""

    claimed: Claimed
    account_id: int
    display_num: str
    script_id: int
    submit_time: int
    push_url: str | None = None
    worker: str | None = None


def _claimed(row: RowMapping) -> Claimed:
    return Claimed(
        callee_id=int(row["id"]),
        task_id=int(row["task_id"]),
        number=row["number"],
        attempt=int(row["attempts"]),
        epoch=int(row["lease_epoch"]),
        texts=tuple(row[f"text{i}"] for i in range(1, 11)),
    )


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str
    incarnation: str
    heartbeat_at: int
    stopped_at: int | None


class LeaseQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    # --- claiming and fencing ---------------------------------------------------------------
    def claim(
        self, task_id: int, limit: int, owner: str, lease_until: int, now: int
    ) -> list[Claimed]:
        """Take up to ``limit`` due pending callees of one task, in submission order."""
        return self.claim_many({task_id: limit}, owner, lease_until, now).get(task_id, [])

    def claim_many(
        self, wanted: dict[int, int], owner: str, lease_until: int, now: int
    ) -> dict[int, list[Claimed]]:
        """Per task id, take up to ``wanted[task]`` due pending callees in submission order, in
        one statement on PostgreSQL (a LATERAL select per task, rows locked and skipped when
        another worker holds them) and one UPDATE on both engines."""
        wanted = {t: n for t, n in wanted.items() if n > 0}
        if not wanted:
            return {}
        if self.conn.dialect.name == "postgresql":
            ids = [
                int(i)
                for i in self.conn.exec_driver_sql(
                    _PG_CLAIM_MANY,
                    {
                        "tasks": list(wanted),
                        "limits": list(wanted.values()),
                        "now": now,
                    },
                ).scalars()
            ]
        else:
            # A select per task on the driver's own cursor: with a thousand running tasks the
            # statement's trip through the SQL layer cost more than SQLite's index lookup.
            ids = []
            cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                for task_id, limit in wanted.items():
                    cursor.execute(_SQLITE_CLAIM_ONE, (task_id, now, limit))
                    ids.extend(int(r[0]) for r in cursor.fetchall())
            finally:
                cursor.close()
        if not ids:
            return {}
        rows = (
            self.conn.execute(
                update(s.callees)
                .where(
                    among(self.conn, s.callees.c.id, ids, BigInteger()),
                    s.callees.c.state == s.CALLEE_PENDING,
                )
                .values(
                    state=s.CALLEE_DIALING,
                    attempts=s.callees.c.attempts + 1,
                    lease_owner=owner,
                    lease_until=lease_until,
                    lease_epoch=s.callees.c.lease_epoch + 1,
                    next_at=None,
                )
                .returning(*_CLAIM_COLUMNS)
            )
            .mappings()
            .all()
        )
        out: dict[int, list[Claimed]] = {}
        for claimed in sorted((_claimed(r) for r in rows), key=lambda c: c.callee_id):
            out.setdefault(claimed.task_id, []).append(claimed)
        return out

    def held(self, leases: Iterable[tuple[int, int]]) -> set[int]:
        """Of ``(callee_id, epoch)`` pairs, the callees still DIALING under that epoch, locked
        (PostgreSQL) until the transaction ends so the answer stays true while it writes."""
        wanted = dict(leases)
        if not wanted:
            return set()
        stmt = (
            select(s.callees.c.id, s.callees.c.lease_epoch)
            .where(
                among(self.conn, s.callees.c.id, list(wanted), BigInteger()),
                s.callees.c.state == s.CALLEE_DIALING,
            )
            .order_by(s.callees.c.id)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return {int(i) for i, epoch in self.conn.execute(stmt) if wanted[int(i)] == int(epoch)}

    def release(self, claims: Sequence[Claimed], next_at: int | None) -> int:
        """Give claimed callees back without dialing them (their attempt is not counted);
        return how many were still held."""
        kept = self.held((c.callee_id, c.epoch) for c in claims)
        if not kept:
            return 0
        self.conn.execute(
            update(s.callees)
            .where(s.callees.c.id.in_(list(kept)))
            .values(
                state=s.CALLEE_PENDING,
                attempts=s.callees.c.attempts - 1,
                lease_owner=None,
                lease_until=None,
                next_at=next_at,
            )
        )
        return len(kept)

    def renew_leases(self, leases: Iterable[tuple[int, int]], until: int) -> set[int]:
        """Extend the leases still held under their epochs; return the callees renewed (the
        others were taken over: their calls must end)."""
        kept = self.held(leases)
        if kept:
            self.conn.execute(
                update(s.callees)
                .where(among(self.conn, s.callees.c.id, list(kept), BigInteger()))
                .values(lease_until=until)
            )
        return kept

    def lost_leases(
        self,
        now: int,
        limit: int,
        dead_workers: Sequence[str] = (),
        exclude: Iterable[int] = (),
    ) -> list[LeaseLost]:
        """Callees whose dialing worker stopped (the lease expired, or its owner is known dead),
        but for ``exclude``. The call was in flight when it stopped."""
        lost = s.callees.c.lease_until < now
        if dead_workers:
            lost = or_(lost, s.callees.c.lease_owner.in_(list(dead_workers)))
        skip = list(exclude)
        if skip:
            lost = and_(lost, s.callees.c.id.not_in(skip))
        stmt = (
            select(
                *_CLAIM_COLUMNS,
                s.tasks.c.account_id,
                s.tasks.c.display_num,
                s.tasks.c.script_id,
                s.tasks.c.created_at,
                s.apps.c.push_url,
                s.callees.c.lease_owner,
            )
            .join(s.tasks, s.tasks.c.id == s.callees.c.task_id)
            .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            .where(s.callees.c.state == s.CALLEE_DIALING, lost)
            .order_by(s.callees.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=s.callees, skip_locked=True)
        return [
            LeaseLost(
                _claimed(r),
                int(r["account_id"]),
                r["display_num"],
                int(r["script_id"]),
                int(r["created_at"]),
                r["push_url"],
                r["lease_owner"],
            )
            for r in self.conn.execute(stmt).mappings().all()
        ]

    # --- worker heartbeats ------------------------------------------------------------------
    def register_worker(self, worker_id: str, incarnation: str, now: int) -> WorkerRow | None:
        """Record a worker's start; return the row of the previous process with that id."""
        w = s.workers
        stmt = select(w.c.id, w.c.incarnation, w.c.heartbeat_at, w.c.stopped_at).where(
            w.c.id == worker_id
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        values: dict[str, Any] = {
            "incarnation": incarnation,
            "started_at": now,
            "heartbeat_at": now,
            "stopped_at": None,
        }
        if row is None:
            self.conn.execute(insert(w).values(id=worker_id, **values))
            return None
        self.conn.execute(update(w).where(w.c.id == worker_id).values(**values))
        return WorkerRow(row[0], row[1], int(row[2]), row[3])

    def heartbeat(self, worker_id: str, incarnation: str, now: int, fenced: int = 0) -> bool:
        """Say this worker is alive; False when another process has taken its id since."""
        w = s.workers
        result = self.conn.execute(
            update(w)
            .where(w.c.id == worker_id, w.c.incarnation == incarnation)
            .values(heartbeat_at=now, stopped_at=None, fenced_writes=w.c.fenced_writes + fenced)
        )
        return bool(result.rowcount)

    def worker_stopped(self, worker_id: str, incarnation: str, now: int) -> None:
        w = s.workers
        self.conn.execute(
            update(w)
            .where(w.c.id == worker_id, w.c.incarnation == incarnation)
            .values(stopped_at=now, heartbeat_at=now)
        )

    def dead_workers(self, now: int, dead_after_ms: int) -> list[str]:
        """Workers that stopped cleanly or whose heartbeat is older than ``dead_after_ms``, and
        that still own a lease."""
        w = s.workers
        owning = select(s.callees.c.lease_owner).where(
            s.callees.c.state == s.CALLEE_DIALING, s.callees.c.lease_owner == w.c.id
        )
        rows = self.conn.execute(
            select(w.c.id).where(
                or_(w.c.stopped_at.is_not(None), w.c.heartbeat_at < now - dead_after_ms),
                owning.exists(),
            )
        ).scalars()
        return [str(r) for r in rows]

    def fenced_writes(self) -> dict[str, int]:
        """Per worker, how many of its writes were discarded since its rows were made."""
        rows = self.conn.execute(
            select(s.workers.c.id, s.workers.c.fenced_writes).where(s.workers.c.fenced_writes > 0)
        )
        return {str(r[0]): int(r[1]) for r in rows}


__all__ = ["Claimed", "LeaseLost", "LeaseQueries", "WorkerRow"]

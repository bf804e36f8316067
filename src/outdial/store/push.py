"""Queries of push report delivery: claiming due reports under a fenced lease, recording each
try, the delivery log and replays.

Fencing. A claim moves the report's ``next_at`` to the end of the lease and raises its
``lease_epoch``; the claimer gets the new epoch. Every later write of that claim (the try's
result, a release) is an ``UPDATE ... WHERE id = ? AND lease_epoch = <claimed epoch>``, so once
another deliverer has claimed the report again (after the lease ran out) or an operator has
replayed it, the stale claimer's write matches no row and is discarded. The comparison is in the
UPDATE itself, so it holds on SQLite and PostgreSQL alike and for any number of deliverers,
whatever their clocks say.

A fenced try is still logged in ``push_attempts``, because its POST did happen and the receiver
may have acted on it: it keeps its HTTP status and duration, and its ``error`` says
``FENCED_NOTE`` (after the try's own error, if it had one). It changes nothing in the report:
not its status, its ``attempts`` count, its next try nor its last error.

A replay is kept in the delivery log as a try numbered 0 (no HTTP status, no duration): it
starts a new delivery cycle, and the give-up deadline counts from the latest one. A replay also
raises the epoch, so a try still in flight from before it cannot finish the new cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from outdial.store import schema as s
from outdial.store.secrets import SecretBox

REPLAY_ATTEMPT = 0
"""The attempt number of the log entry a replay leaves."""
REPLAY_NOTE = "replayed by operator"
FENCED_NOTE = "lease taken over: result discarded"
"""How the delivery log marks a try whose claim had been taken over when its result came."""
_MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class DuePush:
    """A report claimed for delivery, with what signing and the retry policy need."""

    outbox_id: int
    lease_epoch: int
    """The epoch this claim raised the report to: its writes count only while it holds."""
    lease_until: int
    """When the lease ends (epoch ms); another deliverer may claim the report from then on."""
    url: str
    payload: str
    attempt: int
    """The number of the try about to be made (1 for the first of a cycle)."""
    cycle_start: int
    """When the current delivery cycle began: the report's creation or its latest replay."""
    secret: str


@dataclass(frozen=True, slots=True)
class PushTry:
    """The outcome of one delivery try and the state it leaves its report in."""

    outbox_id: int
    lease_epoch: int
    """The epoch of the claim the try was made under (``DuePush.lease_epoch``)."""
    attempt: int
    at: int
    http_status: int | None
    error: str | None
    duration_ms: int
    status: int
    """PUSH_DELIVERED, PUSH_PENDING (retry at ``next_at``) or PUSH_GAVE_UP."""
    next_at: int | None = None


@dataclass(frozen=True, slots=True)
class PushLogTry:
    """One entry of a report's delivery log."""

    attempt: int
    at: int
    http_status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PushLogEntry:
    """A report in the outbox with its delivery log."""

    id: int
    account_id: int
    call_id: int
    task_id: int
    url: str
    status: int
    attempts: int
    next_at: int
    created_at: int
    delivered_at: int | None
    last_error: str | None
    tries: tuple[PushLogTry, ...]


_PG_DELIVERED = (
    "UPDATE push_outbox SET status = %(delivered)s, attempts = u.attempt, delivered_at = u.at, "
    "last_error = NULL "
    "FROM unnest(%(ids)s::bigint[], %(epochs)s::bigint[], %(attempts)s::int[], "
    "%(ats)s::bigint[]) AS u(id, epoch, attempt, at) "
    "WHERE push_outbox.id = u.id AND push_outbox.lease_epoch = u.epoch "
    "AND push_outbox.status = %(pending)s RETURNING push_outbox.id"
)


class PushQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection
    secrets: SecretBox

    def claim_push(self, now: int, limit: int, lease_until: int) -> list[DuePush]:
        """Take up to ``limit`` pending reports due at ``now``, earliest due first, and lease them:
        their next try moves to ``lease_until`` so that no other deliverer takes them, and a
        deliverer that dies mid-delivery only delays them. Each claim raises the report's
        epoch; the claim's writes must name it (see the module's docstring)."""
        o = s.push_outbox
        replayed = (
            select(func.max(s.push_attempts.c.at))
            .where(
                s.push_attempts.c.outbox_id == o.c.id,
                s.push_attempts.c.attempt == REPLAY_ATTEMPT,
            )
            .scalar_subquery()
        )
        stmt = (
            select(
                o.c.id,
                o.c.url,
                o.c.payload,
                o.c.attempts,
                func.coalesce(replayed, o.c.created_at),
                s.apps.c.push_secret,
            )
            .select_from(
                o.join(s.calls, s.calls.c.id == o.c.call_id)
                .join(s.tasks, s.tasks.c.id == s.calls.c.task_id)
                .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            )
            .where(o.c.status == s.PUSH_PENDING, o.c.next_at <= now)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            # Due order only: ties in ``next_at`` (a result batch's reports, a replay of many)
            # come in index order. Ordering them by id too made PostgreSQL sort every due
            # report at each claim (90 ms for 20,000 tied ones, against 2 ms); ``(status,
            # next_at)`` has no id in it, where SQLite's index ends with the rowid.
            stmt = stmt.order_by(o.c.next_at).with_for_update(of=o, skip_locked=True)
        else:
            stmt = stmt.order_by(o.c.next_at, o.c.id)
        rows = self.conn.execute(stmt).all()
        if not rows:
            return []
        # RETURNING gives the epoch each row was raised to: the claim's token (SQLite >= 3.35).
        claimed = {
            int(outbox_id): int(epoch)
            for outbox_id, epoch in self.conn.execute(
                update(o)
                .where(o.c.id.in_([r[0] for r in rows]), o.c.status == s.PUSH_PENDING)
                .values(next_at=lease_until, lease_epoch=o.c.lease_epoch + 1)
                .returning(o.c.id, o.c.lease_epoch)
            )
        }
        return [
            DuePush(
                outbox_id=int(r[0]),
                lease_epoch=claimed[int(r[0])],
                lease_until=lease_until,
                url=r[1],
                payload=r[2],
                attempt=int(r[3]) + 1,
                cycle_start=int(r[4]),
                secret=self.secrets.open(r[5]),
            )
            for r in rows
            if int(r[0]) in claimed
        ]

    def record_push_tries(self, tries: Sequence[PushTry]) -> int:
        """Log each try and move its report on, if the try's claim still holds (same epoch,
        report pending); return how many tries were fenced off. A fenced try is logged with
        ``FENCED_NOTE`` and leaves its report as the newer claim or the replay left it."""
        if not tries:
            return 0
        o = s.push_outbox
        fenced: set[int] = set()
        rest = list(tries)
        if self.conn.dialect.name == "postgresql":
            # Delivered tries, the common case, in one statement: a round trip per report
            # was most of a pass's database time.
            done = [t for t in tries if t.status == s.PUSH_DELIVERED]
            rest = [t for t in tries if t.status != s.PUSH_DELIVERED]
            if done:
                kept = set(
                    self.conn.exec_driver_sql(
                        _PG_DELIVERED,
                        {
                            "ids": [t.outbox_id for t in done],
                            "epochs": [t.lease_epoch for t in done],
                            "attempts": [t.attempt for t in done],
                            "ats": [t.at for t in done],
                            "pending": s.PUSH_PENDING,
                            "delivered": s.PUSH_DELIVERED,
                        },
                    ).scalars()
                )
                fenced.update(t.outbox_id for t in done if t.outbox_id not in kept)
        for t in rest:
            values: dict[str, object] = {"status": t.status, "attempts": t.attempt}
            if t.status == s.PUSH_DELIVERED:
                values.update(delivered_at=t.at, last_error=None)
            else:
                values["last_error"] = t.error
            if t.status == s.PUSH_PENDING and t.next_at is not None:
                values["next_at"] = t.next_at
            result = self.conn.execute(
                update(o)
                .where(
                    o.c.id == t.outbox_id,
                    o.c.lease_epoch == t.lease_epoch,
                    o.c.status == s.PUSH_PENDING,
                )
                .values(**values)
            )
            if result.rowcount == 0:
                fenced.add(t.outbox_id)
        self.conn.execute(
            insert(s.push_attempts),
            [
                {
                    "outbox_id": t.outbox_id,
                    "attempt": t.attempt,
                    "at": t.at,
                    "http_status": t.http_status,
                    "error": _fenced_error(t.error) if t.outbox_id in fenced else t.error,
                    "duration_ms": t.duration_ms,
                }
                for t in tries
            ],
        )
        return len(fenced)

    def release_push(self, claims: Sequence[tuple[int, int]], now: int) -> int:
        """Give back claims (``(outbox_id, lease_epoch)``) that were not tried: each report whose
        claim still holds is due again at ``now``; return how many were released."""
        o = s.push_outbox
        released = 0
        for outbox_id, epoch in claims:
            result = self.conn.execute(
                update(o)
                .where(o.c.id == outbox_id, o.c.lease_epoch == epoch, o.c.status == s.PUSH_PENDING)
                .values(next_at=now)
            )
            released += result.rowcount
        return released

    def push_log(
        self,
        *,
        account_id: int | None = None,
        status: int | None = None,
        since_id: int | None = None,
        limit: int = 50,
    ) -> list[PushLogEntry]:
        """Reports with their tries, in id order: the first ``limit`` after ``since_id``, or
        without it the latest ``limit``."""
        o = s.push_outbox
        stmt = select(
            o.c.id,
            o.c.account_id,
            o.c.call_id,
            s.calls.c.task_id,
            o.c.url,
            o.c.status,
            o.c.attempts,
            o.c.next_at,
            o.c.created_at,
            o.c.delivered_at,
            o.c.last_error,
        ).select_from(o.join(s.calls, s.calls.c.id == o.c.call_id))
        if account_id is not None:
            stmt = stmt.where(o.c.account_id == account_id)
        if status is not None:
            stmt = stmt.where(o.c.status == status)
        if since_id is not None:
            stmt = stmt.where(o.c.id > since_id).order_by(o.c.id)
        else:
            stmt = stmt.order_by(o.c.id.desc())
        rows = sorted(self.conn.execute(stmt.limit(limit)).mappings().all(), key=lambda r: r["id"])
        if not rows:
            return []
        a = s.push_attempts
        tries: dict[int, list[PushLogTry]] = defaultdict(list)
        for t in self.conn.execute(
            select(a.c.outbox_id, a.c.attempt, a.c.at, a.c.http_status, a.c.error, a.c.duration_ms)
            .where(a.c.outbox_id.in_([r["id"] for r in rows]))
            .order_by(a.c.outbox_id, a.c.id)
        ):
            tries[int(t[0])].append(PushLogTry(int(t[1]), int(t[2]), t[3], t[4], int(t[5])))
        return [PushLogEntry(**r, tries=tuple(tries[int(r["id"])])) for r in rows]

    def replayable_push(
        self, *, ids: Sequence[int] = (), account_id: int | None = None, gave_up_only: bool
    ) -> list[int]:
        """Which reports a replay would reset: those of ``ids`` (all reports when empty) in
        ``account_id`` (any account when None), only given-up ones if ``gave_up_only``."""
        o = s.push_outbox
        stmt = select(o.c.id).order_by(o.c.id)
        if ids:
            stmt = stmt.where(o.c.id.in_(list(ids)))
        if account_id is not None:
            stmt = stmt.where(o.c.account_id == account_id)
        if gave_up_only:
            stmt = stmt.where(o.c.status == s.PUSH_GAVE_UP)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return [int(i) for i in self.conn.execute(stmt).scalars()]

    def replay_push(self, ids: Sequence[int], now: int) -> int:
        """Start a new delivery cycle for reports, delivered or not: due at ``now``, tries
        counted from 1 again, the replay itself logged."""
        if not ids:
            return 0
        o = s.push_outbox
        result = self.conn.execute(
            update(o)
            .where(o.c.id.in_(list(ids)))
            .values(
                status=s.PUSH_PENDING,
                attempts=0,
                next_at=now,
                delivered_at=None,
                last_error=None,
                lease_epoch=o.c.lease_epoch + 1,
            )
        )
        self.conn.execute(
            insert(s.push_attempts),
            [
                {
                    "outbox_id": i,
                    "attempt": REPLAY_ATTEMPT,
                    "at": now,
                    "http_status": None,
                    "error": REPLAY_NOTE,
                    "duration_ms": 0,
                }
                for i in ids
            ],
        )
        return int(result.rowcount)


def _fenced_error(error: str | None) -> str:
    if not error:
        return FENCED_NOTE
    return f"{error[: _MAX_ERROR_CHARS - len(FENCED_NOTE) - 2]}; {FENCED_NOTE}"


__all__ = [
    "FENCED_NOTE",
    "REPLAY_ATTEMPT",
    "DuePush",
    "PushLogEntry",
    "PushLogTry",
    "PushQueries",
    "PushTry",
]

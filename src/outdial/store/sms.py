"""Queries of hang-up SMS delivery: claiming due messages under a fenced lease and recording
each send.

Fencing, as for push reports (``outdial.store.push``): a claim moves the message's ``next_at``
to the end of the lease and raises its ``lease_epoch``; ``sms_sent``, ``sms_failed`` and
``release_sms`` change the message only ``WHERE id = ? AND lease_epoch = <claimed epoch>`` (and
it is still pending), so a sender whose claim was taken over after its lease ran out cannot
mark a message sent or failed over the newer claim's result. They answer whether the write
counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from outdial.store import schema as s

_MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class PendingSms:
    """A message claimed for sending."""

    id: int
    account_id: int
    call_id: int
    to_number: str
    text: str
    attempts: int
    lease_epoch: int
    """The epoch this claim raised the message to: its writes count only while it holds."""
    lease_until: int
    """When the lease ends (epoch ms); another sender may claim the message from then on."""


class SmsQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def claim_sms(self, now: int, lease_until: int, limit: int) -> list[PendingSms]:
        """Take up to ``limit`` pending messages due at ``now``, oldest first, leased until
        ``lease_until``; each claim raises the message's epoch."""
        m = s.sms_messages
        stmt = (
            select(m.c.id, m.c.account_id, m.c.call_id, m.c.to_number, m.c.text, m.c.attempts)
            .where(m.c.status == s.SMS_PENDING, m.c.next_at <= now)
            .order_by(m.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = self.conn.execute(stmt).all()
        if not rows:
            return []
        claimed = {
            int(sms_id): int(epoch)
            for sms_id, epoch in self.conn.execute(
                update(m)
                .where(m.c.id.in_([r[0] for r in rows]), m.c.status == s.SMS_PENDING)
                .values(next_at=lease_until, lease_epoch=m.c.lease_epoch + 1)
                .returning(m.c.id, m.c.lease_epoch)
            )
        }
        return [
            PendingSms(
                id=int(r[0]),
                account_id=int(r[1]),
                call_id=int(r[2]),
                to_number=r[3],
                text=r[4],
                attempts=int(r[5]),
                lease_epoch=claimed[int(r[0])],
                lease_until=lease_until,
            )
            for r in rows
            if int(r[0]) in claimed
        ]

    def _fenced_update(self, sms_id: int, epoch: int, values: dict[str, object]) -> bool:
        m = s.sms_messages
        result = self.conn.execute(
            update(m)
            .where(m.c.id == sms_id, m.c.lease_epoch == epoch, m.c.status == s.SMS_PENDING)
            .values(**values)
        )
        return bool(result.rowcount)

    def sms_sent(self, sms_id: int, epoch: int, provider_id: str | None, now: int) -> bool:
        """Mark a message sent, if the claim of ``epoch`` still holds; return whether it did."""
        return self._fenced_update(
            sms_id,
            epoch,
            {
                "status": s.SMS_SENT,
                "provider_id": provider_id,
                "sent_at": now,
                "attempts": s.sms_messages.c.attempts + 1,
                "last_error": None,
            },
        )

    def sms_failed(self, sms_id: int, epoch: int, error: str, retry_at: int | None) -> bool:
        """Count a failed send and retry at ``retry_at`` (None: give the message up), if the
        claim of ``epoch`` still holds; return whether it did."""
        values: dict[str, object] = {
            "attempts": s.sms_messages.c.attempts + 1,
            "last_error": error[:_MAX_ERROR_CHARS],
        }
        if retry_at is None:
            values["status"] = s.SMS_FAILED
        else:
            values["next_at"] = retry_at
        return self._fenced_update(sms_id, epoch, values)

    def release_sms(self, claims: Sequence[tuple[int, int]], now: int) -> int:
        """Give back claims (``(sms_id, lease_epoch)``) that were not sent: each message whose
        claim still holds is due again at ``now``; return how many were released."""
        return sum(self._fenced_update(i, epoch, {"next_at": now}) for i, epoch in claims)

    def sms_of_call(self, call_id: int) -> dict[str, object] | None:
        row = (
            self.conn.execute(select(s.sms_messages).where(s.sms_messages.c.call_id == call_id))
            .mappings()
            .first()
        )
        return dict(row) if row else None

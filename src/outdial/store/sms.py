"""Queries of hang-up SMS delivery."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from outdial.store import schema as s


@dataclass(frozen=True, slots=True)
class PendingSms:
    id: int
    account_id: int
    call_id: int
    to_number: str
    text: str
    attempts: int


class SmsQueries:
    """Mixed into the repository's transaction class."""

    conn: Connection

    def claim_sms(self, now: int, lease_until: int, limit: int) -> list[PendingSms]:
        stmt = (
            select(
                s.sms_messages.c.id,
                s.sms_messages.c.account_id,
                s.sms_messages.c.call_id,
                s.sms_messages.c.to_number,
                s.sms_messages.c.text,
                s.sms_messages.c.attempts,
            )
            .where(s.sms_messages.c.status == s.SMS_PENDING, s.sms_messages.c.next_at <= now)
            .order_by(s.sms_messages.c.id)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = [PendingSms(*r) for r in self.conn.execute(stmt).all()]
        if rows:
            self.conn.execute(
                update(s.sms_messages)
                .where(s.sms_messages.c.id.in_([r.id for r in rows]))
                .values(next_at=lease_until)
            )
        return rows

    def sms_sent(self, sms_id: int, provider_id: str | None, now: int) -> None:
        self.conn.execute(
            update(s.sms_messages)
            .where(s.sms_messages.c.id == sms_id)
            .values(
                status=s.SMS_SENT,
                provider_id=provider_id,
                sent_at=now,
                attempts=s.sms_messages.c.attempts + 1,
                last_error=None,
            )
        )

    def sms_failed(self, sms_id: int, error: str, retry_at: int | None) -> None:
        values: dict[str, object] = {
            "attempts": s.sms_messages.c.attempts + 1,
            "last_error": error[:200],
        }
        if retry_at is None:
            values["status"] = s.SMS_FAILED
        else:
            values["next_at"] = retry_at
        self.conn.execute(
            update(s.sms_messages).where(s.sms_messages.c.id == sms_id).values(**values)
        )

    def sms_of_call(self, call_id: int) -> dict[str, object] | None:
        row = (
            self.conn.execute(select(s.sms_messages).where(s.sms_messages.c.call_id == call_id))
            .mappings()
            .first()
        )
        return dict(row) if row else None

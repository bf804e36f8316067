"""SIP trunks: where calls go out, kept by name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from outdial.errors import Conflict
from outdial.store import schema as s
from outdial.store.records import TrunkRecord


class TrunkQueries:
    conn: Connection

    def save_trunk(self, **values: Any) -> TrunkRecord:
        """Create the trunk ``values["name"]``, or replace its settings."""
        name = values["name"]
        found = self.conn.execute(
            select(s.sip_trunks.c.id).where(s.sip_trunks.c.name == name)
        ).scalar()
        if found is None:
            self.conn.execute(insert(s.sip_trunks).values(**values))
        else:
            values = {k: v for k, v in values.items() if k != "created_at"}
            self.conn.execute(
                update(s.sip_trunks).where(s.sip_trunks.c.id == found).values(**values)
            )
        trunk = self.trunk(name)
        assert trunk is not None
        return trunk

    def trunk(self, name: str) -> TrunkRecord | None:
        row = (
            self.conn.execute(select(s.sip_trunks).where(s.sip_trunks.c.name == name))
            .mappings()
            .first()
        )
        return TrunkRecord(**row) if row else None

    def trunks(self) -> list[TrunkRecord]:
        rows = self.conn.execute(select(s.sip_trunks).order_by(s.sip_trunks.c.name)).mappings()
        return [TrunkRecord(**r) for r in rows]

    def set_registration(self, name: str, state: str, code: int | None, at: int) -> None:
        """Note a trunk's registration state as a worker last saw it."""
        self.conn.execute(
            update(s.sip_trunks)
            .where(s.sip_trunks.c.name == name)
            .values(registration=state, registration_code=code, registration_at=at)
        )

    def take_trunk_line(
        self, name: str, worker: str, limit: int, now: int, until: int
    ) -> int | None:
        """One of the trunk's ``limit`` lines until ``until`` (epoch ms), or None when all are
        taken. Takers serialise on the trunk's row (PostgreSQL) or the write lock (SQLite)."""
        t, lines = s.sip_trunks, s.trunk_lines
        self.conn.execute(select(t.c.id).where(t.c.name == name).with_for_update())
        self.conn.execute(delete(lines).where(lines.c.trunk == name, lines.c.expires_at <= now))
        used = self.conn.execute(
            select(func.count()).select_from(lines).where(lines.c.trunk == name)
        ).scalar_one()
        if used >= limit:
            return None
        found = self.conn.execute(
            insert(lines).values(trunk=name, worker=worker, expires_at=until)
        ).inserted_primary_key
        return int(found[0]) if found else None

    def reserve_trunk_slot(self, name: str, now: int, interval: int) -> int | None:
        """The trunk's next dialing slot (epoch ms, at least ``now``), moving the slot after it
        ``interval`` ms on; ``None`` when the trunk is not in the database. Reservers serialise
        on the trunk's row (PostgreSQL) or the write lock (SQLite)."""
        t = s.sip_trunks
        row = self.conn.execute(
            select(t.c.next_dial_at).where(t.c.name == name).with_for_update()
        ).first()
        if row is None:
            return None
        slot = max(now, int(row[0] or 0))
        self.conn.execute(update(t).where(t.c.name == name).values(next_dial_at=slot + interval))
        return slot

    def free_trunk_line(self, line: int) -> None:
        self.conn.execute(delete(s.trunk_lines).where(s.trunk_lines.c.id == line))

    def delete_trunk(self, name: str) -> bool:
        used = self.conn.execute(
            select(s.accounts.c.id).where(s.accounts.c.sip_trunk == name).limit(1)
        ).first()
        if used is not None:
            raise Conflict(f"trunk {name!r} is used by account {used[0]}")
        return (
            self.conn.execute(delete(s.sip_trunks).where(s.sip_trunks.c.name == name)).rowcount > 0
        )

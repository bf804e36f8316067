"""SIP trunks: where calls go out, kept by name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

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

    def delete_trunk(self, name: str) -> bool:
        used = self.conn.execute(
            select(s.accounts.c.id).where(s.accounts.c.sip_trunk == name).limit(1)
        ).first()
        if used is not None:
            raise Conflict(f"trunk {name!r} is used by account {used[0]}")
        return (
            self.conn.execute(delete(s.sip_trunks).where(s.sip_trunks.c.name == name)).rowcount > 0
        )

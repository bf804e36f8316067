"""The shared simulated timeline (OUTDIAL_SIM_SPEED): one row, written by the first process
that starts with a speed-up and read by every process using the database."""

from __future__ import annotations

from sqlalchemy import Connection, Executable, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from outdial.store import schema as s
from outdial.store.records import SimClockRecord

_ROW_ID = 1


class SimClockQueries:
    conn: Connection

    def sim_clock(self) -> SimClockRecord | None:
        """The database's simulated timeline, if one was started."""
        row = (
            self.conn.execute(
                select(
                    s.sim_clock.c.speed, s.sim_clock.c.real_epoch_ms, s.sim_clock.c.sim_epoch_ms
                ).where(s.sim_clock.c.id == _ROW_ID)
            )
            .mappings()
            .first()
        )
        return SimClockRecord(**row) if row else None

    def start_sim_clock(
        self, speed: float, real_epoch_ms: int, sim_epoch_ms: int
    ) -> SimClockRecord:
        """Start the timeline unless one exists; return the one that is stored.

        Race-safe: processes starting together each insert if absent, and all read back the
        row that won, whatever they asked for.
        """
        values = {
            "id": _ROW_ID,
            "speed": speed,
            "real_epoch_ms": real_epoch_ms,
            "sim_epoch_ms": sim_epoch_ms,
        }
        stmt: Executable
        if self.conn.dialect.name == "postgresql":
            stmt = postgresql.insert(s.sim_clock).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite.insert(s.sim_clock).values(values).on_conflict_do_nothing()
        self.conn.execute(stmt)
        stored = self.sim_clock()
        assert stored is not None
        return stored

    def reset_sim_clock(self) -> SimClockRecord | None:
        """Remove the timeline; return what was removed (None: there was none)."""
        found = self.sim_clock()
        self.conn.execute(delete(s.sim_clock).where(s.sim_clock.c.id == _ROW_ID))
        return found

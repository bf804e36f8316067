"""Bulk insert of a task's callees: executemany on SQLite, COPY on PostgreSQL.

200,000 callees must land in well under a second, so this bypasses SQLAlchemy's per-row
parameter processing and hands tuples straight to the driver.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from outdial.store.schema import CALLEE_COLUMNS

_COLUMNS = ", ".join(CALLEE_COLUMNS)
# Built from constant column names only; no input reaches this text.
_PLACEHOLDERS = ", ".join("?" for _ in CALLEE_COLUMNS)
_SQLITE_INSERT = f"INSERT INTO callees ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
_PG_COPY = f"COPY callees ({_COLUMNS}) FROM STDIN"


def insert_callees(conn: Connection, task_id: int, rows: Sequence[tuple[str | None, ...]]) -> None:
    """Insert ``rows`` of (number, text1..text10) for ``task_id``; seq is the row's position."""
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(_PG_COPY) as copy:
            write = copy.write_row
            for seq, row in enumerate(rows):
                write((task_id, seq, *row))
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT, ((task_id, seq, *row) for seq, row in enumerate(rows)))
    finally:
        cursor.close()

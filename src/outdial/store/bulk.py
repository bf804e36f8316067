"""Bulk insert of a task's callees: executemany on SQLite, COPY on PostgreSQL.

200,000 callees must land in well under a second, so this bypasses SQLAlchemy's per-row
parameter processing and hands tuples straight to the driver.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from outdial.store.schema import CALLEE_COLUMNS

_COLUMNS = ", ".join(CALLEE_COLUMNS)
_PG_COPY = f"COPY callees ({_COLUMNS}) FROM STDIN"


def insert_callees(conn: Connection, task_id: int, rows: Iterable[tuple[str | None, ...]]) -> None:
    """Insert ``rows`` of (number, text1..text10) for ``task_id``, keeping their order.

    ``rows`` may be a lazy iterable; an exception it raises aborts the insert.
    """
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(_PG_COPY) as copy:
            write = copy.write_row
            for row in rows:
                write((task_id, *row))
        return
    # The task id is written into the statement (it is an int we just generated, never input)
    # so that the parsed rows go to the driver as they are, without a new tuple per callee.
    placeholders = ", ".join("?" for _ in CALLEE_COLUMNS[1:])
    sql = f"INSERT INTO callees ({_COLUMNS}) VALUES ({int(task_id)}, {placeholders})"  # noqa: S608
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()

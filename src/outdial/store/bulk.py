"""Bulk insert of a task's callees: JSON unpacked by json_each on SQLite, COPY on PostgreSQL.

200,000 callees must land in well under a second, so this bypasses SQLAlchemy's per-row
parameter processing and hands the rows straight to the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice

import orjson
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from outdial.store.schema import CALLEE_COLUMNS, calls

_COLUMNS = ", ".join(CALLEE_COLUMNS)
_PG_COPY = f"COPY callees ({_COLUMNS}) FROM STDIN"
# Callees per statement on SQLite: a 200,000-callee task takes twenty statements, and each
# chunk's JSON text stays under a megabyte.
_SQLITE_CHUNK = 10_000


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
    # SQLite: the rows go in as JSON arrays unpacked by json_each, a statement per chunk. A
    # statement is one call into the library, so a writer on a busy interpreter waits for the
    # GIL once per chunk instead of once per row (executemany), which kept the database's one
    # write lock held ten times longer than the work. The task id is written into the
    # statement: it is an int we just generated, never input.
    sql = (
        f"INSERT INTO callees ({_COLUMNS}) SELECT {int(task_id)}, "  # noqa: S608
        + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(CALLEE_COLUMNS) - 1))
        + " FROM json_each(?) ORDER BY key"
    )
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        it = iter(rows)
        while chunk := list(islice(it, _SQLITE_CHUNK)):
            cursor.execute(sql, (orjson.dumps(chunk).decode(),))
    finally:
        cursor.close()


def insert_calls(conn: Connection, records: Sequence[dict[str, object]]) -> list[int]:
    """Insert call records; return their ids in the same order.

    On PostgreSQL the ids are drawn from the sequence first and the rows go in by COPY: a
    multi-row INSERT ... RETURNING of hundreds of rows costs the driver more to build and parse
    than the database to execute.
    """
    if conn.dialect.name == "postgresql":
        ids = [
            int(i)
            for i in conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('calls', 'id')) "
                "FROM generate_series(1, %(n)s)",
                {"n": len(records)},
            ).scalars()
        ]
        columns = ["id", *records[0].keys()]
        driver = conn.connection.driver_connection
        assert driver is not None
        with (
            driver.cursor() as cur,
            cur.copy(f"COPY calls ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for call_id, record in zip(ids, records, strict=True):
                copy.write_row((call_id, *record.values()))
        return ids
    result = conn.execute(
        insert(calls).returning(calls.c.id, sort_by_parameter_order=True), list(records)
    )
    return [int(i) for i in result.scalars()]


def set_callee_states(conn: Connection, changes: Sequence[tuple[int, int]]) -> None:
    """Give callees their new state and drop their leases, in one statement per engine."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "UPDATE callees SET state = u.state, lease_owner = NULL, lease_until = NULL "
            "FROM unnest(%(ids)s::bigint[], %(states)s::smallint[]) AS u(id, state) "
            "WHERE callees.id = u.id",
            {"ids": [c[0] for c in changes], "states": [c[1] for c in changes]},
        )
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            "UPDATE callees SET state = ?, lease_owner = NULL, lease_until = NULL WHERE id = ?",
            [(state, callee_id) for callee_id, state in changes],
        )
    finally:
        cursor.close()


_PG_ADD_COUNTERS = (
    "UPDATE tasks SET call_num = tasks.call_num + u.calls, success = tasks.success + u.success, "
    "fail = tasks.fail + u.fail, blocked_cnt = tasks.blocked_cnt + u.blocked, "
    "call_duration = tasks.call_duration + u.talk, cost = tasks.cost + u.cost, "
    "updated_at = %(now)s "
    "FROM unnest(%(ids)s::bigint[], %(calls)s::int[], %(success)s::int[], %(fail)s::int[], "
    "%(blocked)s::int[], %(talk)s::bigint[], %(cost)s::bigint[]) "
    "AS u(id, calls, success, fail, blocked, talk, cost) WHERE tasks.id = u.id"
)
_SQLITE_ADD_COUNTERS = (
    "UPDATE tasks SET call_num = call_num + ?, success = success + ?, fail = fail + ?, "
    "blocked_cnt = blocked_cnt + ?, call_duration = call_duration + ?, cost = cost + ?, "
    "updated_at = ? WHERE id = ?"
)


def add_task_counters(
    conn: Connection, deltas: Sequence[tuple[int, int, int, int, int, int, int]], now: int
) -> None:
    """Add (task id, calls, success, fail, blocked, talk seconds, cost) to each task's
    counters in one statement per engine, whatever the number of tasks."""
    if not deltas:
        return
    if conn.dialect.name == "postgresql":
        columns = list(zip(*deltas, strict=True))
        conn.exec_driver_sql(
            _PG_ADD_COUNTERS,
            {
                "ids": list(columns[0]),
                "calls": list(columns[1]),
                "success": list(columns[2]),
                "fail": list(columns[3]),
                "blocked": list(columns[4]),
                "talk": list(columns[5]),
                "cost": list(columns[6]),
                "now": now,
            },
        )
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_ADD_COUNTERS, [(*d[1:], now, d[0]) for d in deltas])
    finally:
        cursor.close()

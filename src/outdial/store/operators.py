"""Queries over console operators and the console's signing key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from outdial.store import schema as s


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    id: int
    username: str
    password_hash: str
    role: str
    account_id: int | None
    session_version: int
    failed_logins: int
    locked_until: int | None


_COLUMNS = [s.operators.c[name] for name in OperatorRecord.__slots__]


def insert_operator(
    conn: Connection,
    username: str,
    password_hash: str,
    role: str,
    account_id: int | None,
    now: int,
) -> int:
    result = conn.execute(
        insert(s.operators).values(
            username=username,
            password_hash=password_hash,
            role=role,
            account_id=account_id,
            created_at=now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def operator_named(conn: Connection, username: str) -> OperatorRecord | None:
    row = conn.execute(select(*_COLUMNS).where(s.operators.c.username == username)).first()
    return OperatorRecord(*row) if row else None


def operator(conn: Connection, operator_id: int) -> OperatorRecord | None:
    row = conn.execute(select(*_COLUMNS).where(s.operators.c.id == operator_id)).first()
    return OperatorRecord(*row) if row else None


def update_operator(conn: Connection, operator_id: int, **values: object) -> None:
    conn.execute(update(s.operators).where(s.operators.c.id == operator_id).values(**values))


def console_secret(conn: Connection, make: str, now: int) -> str:
    """The signing key; ``make`` becomes it if there is none yet (first writer wins)."""
    found = conn.execute(select(s.console_keys.c.secret).where(s.console_keys.c.id == 1)).first()
    if found:
        return str(found[0])
    try:
        with conn.begin_nested():
            conn.execute(insert(s.console_keys).values(id=1, secret=make, created_at=now))
    except IntegrityError:
        pass
    return str(
        conn.execute(select(s.console_keys.c.secret).where(s.console_keys.c.id == 1)).one()[0]
    )

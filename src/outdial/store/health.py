"""What readiness checks and metrics read from the database: the schema's revision and the
outboxes' backlog. Every query here is cheap: an index range or ``SELECT 1``."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, func, select, text

from outdial.store import schema as s
from outdial.store.db import alembic_config
from outdial.store.repo import Store


@dataclass(frozen=True, slots=True)
class Readiness:
    database: bool
    schema: str | None
    """The database's revision (None: unreachable or never migrated)."""
    head: str

    @property
    def ready(self) -> bool:
        return self.database and self.schema == self.head


@dataclass(frozen=True, slots=True)
class Backlog:
    """Rows waiting in one outbox: how many, and the creation time of the oldest (epoch ms)."""

    pending: int
    oldest_ms: int | None
    failed: int


def head_revision(store: Store) -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
    return str(head)


def readiness(store: Store, head: str) -> Readiness:
    """Whether the database answers and its schema is at ``head``; never raises for a database
    that is away (it is reported not ready)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError:
        return Readiness(False, None, head)
    return Readiness(True, current, head)


def _backlog(conn: Connection, table: Table, pending: int, failed: int) -> Backlog:
    # (status, next_at) is indexed: both counts are index range scans.
    row = conn.execute(
        select(func.count(), func.min(table.c.created_at)).where(table.c.status == pending)
    ).one()
    gave_up = conn.execute(select(func.count()).where(table.c.status == failed)).scalar_one()
    return Backlog(int(row[0]), None if row[1] is None else int(row[1]), int(gave_up))


def push_backlog(conn: Connection) -> Backlog:
    """Push reports not yet delivered, and those given up."""
    return _backlog(conn, s.push_outbox, s.PUSH_PENDING, s.PUSH_GAVE_UP)


def sms_backlog(conn: Connection) -> Backlog:
    """Hang-up SMS not yet sent, and those that failed for good."""
    return _backlog(conn, s.sms_messages, s.SMS_PENDING, s.SMS_FAILED)

"""The repository: every query outdial runs, on one connection inside one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from outdial.domain.codes import UNFINISHED_STATUSES
from outdial.domain.rates import Rate
from outdial.store import schema as s
from outdial.store.bulk import insert_callees
from outdial.store.calls import CallQueries
from outdial.store.db import make_engine, upgrade
from outdial.store.dialing import DialerQueries
from outdial.store.operator import AuditQueries
from outdial.store.push import PushQueries
from outdial.store.recall import RecallQueries
from outdial.store.records import (
    AccountRecord,
    AppRecord,
    KeyRecord,
    NewTask,
    ScriptRecord,
    TaskFilter,
    TaskRecord,
)
from outdial.store.results import ResultQueries
from outdial.store.secrets import PLAIN, SecretBox
from outdial.store.simclock import SimClockQueries
from outdial.store.sms import SmsQueries
from outdial.store.trunks import TrunkQueries

__all__ = ["IntegrityError", "Store", "Tx"]


class Store:
    """Owns the engine; hands out transactions."""

    def __init__(self, engine: Engine, secrets: SecretBox = PLAIN) -> None:
        self.engine = engine
        self.secrets = secrets

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, secrets: SecretBox = PLAIN) -> Store:
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine, secrets)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.engine.connect() as conn, conn.begin():
            yield Tx(conn, self.secrets)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield Tx(conn, self.secrets)

    def close(self) -> None:
        self.engine.dispose()


# The first key of the two-key advisory locks that serialise task creation per account (the
# second is the account id). Two-key locks never collide with the one-key migration lock.
TASK_CREATION_LOCK = 0x7A5C


def _task_columns() -> list[Any]:
    return [*s.tasks.c, s.apps.c.app_id]


def _task(row: RowMapping) -> TaskRecord:
    data = {k: row[k] for k in TaskRecord.__slots__}
    return TaskRecord(**data)


class Tx(
    DialerQueries,
    ResultQueries,
    CallQueries,
    RecallQueries,
    PushQueries,
    SmsQueries,
    TrunkQueries,
    SimClockQueries,
    AuditQueries,
):
    """Queries bound to one connection and transaction."""

    def __init__(self, conn: Connection, secrets: SecretBox = PLAIN) -> None:
        self.conn = conn
        self.secrets = secrets

    # --- accounts, apps, keys -------------------------------------------------------------
    def insert_account(self, **values: Any) -> int:
        result = self.conn.execute(insert(s.accounts).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def account(self, account_id: int, *, lock: bool = False) -> AccountRecord | None:
        stmt = select(s.accounts).where(s.accounts.c.id == account_id)
        if lock:
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).mappings().first()
        return AccountRecord(**row) if row else None

    def account_for_new_task(self, account_id: int) -> AccountRecord | None:
        """The account, with the creation of tasks on it serialised until the transaction
        ends: its limits (unfinished tasks, the long-TTS quota) are checked against the
        tasks it has. On PostgreSQL this is an advisory lock, not the account row: the
        dialer locks that row in every step to count the account's lines, and a submission
        of many callees must not hold it up. On SQLite the write transaction already
        excludes every other writer."""
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(%(kind)s, %(account)s)",
                {"kind": TASK_CREATION_LOCK, "account": account_id},
            )
        return self.account(account_id)

    def update_account(self, account_id: int, **values: Any) -> None:
        self.conn.execute(update(s.accounts).where(s.accounts.c.id == account_id).values(**values))

    def insert_app(
        self, account_id: int, app_id: str, push_url: str | None, push_secret: str, now: int
    ) -> int:
        result = self.conn.execute(
            insert(s.apps).values(
                account_id=account_id,
                app_id=app_id,
                push_url=push_url,
                push_secret=self.secrets.seal(push_secret),
                created_at=now,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def app(self, account_id: int, app_id: str) -> AppRecord | None:
        row = (
            self.conn.execute(
                select(s.apps.c.id, s.apps.c.account_id, s.apps.c.app_id, s.apps.c.push_url).where(
                    s.apps.c.app_id == app_id, s.apps.c.account_id == account_id
                )
            )
            .mappings()
            .first()
        )
        return AppRecord(**row) if row else None

    def apps_of(self, account_id: int) -> list[AppRecord]:
        rows = self.conn.execute(
            select(s.apps.c.id, s.apps.c.account_id, s.apps.c.app_id, s.apps.c.push_url)
            .where(s.apps.c.account_id == account_id)
            .order_by(s.apps.c.id)
        ).mappings()
        return [AppRecord(**r) for r in rows]

    def insert_key(
        self, account_id: int, api_key: str, api_secret: str, ip_allow: Sequence[str], now: int
    ) -> None:
        self.conn.execute(
            insert(s.api_keys).values(
                account_id=account_id,
                api_key=api_key,
                api_secret=self.secrets.seal(api_secret),
                ip_allow=json.dumps(list(ip_allow)),
                created_at=now,
            )
        )

    def key(self, api_key: str) -> KeyRecord | None:
        row = (
            self.conn.execute(select(s.api_keys).where(s.api_keys.c.api_key == api_key))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return KeyRecord(
            id=row["id"],
            account_id=row["account_id"],
            api_key=row["api_key"],
            api_secret=self.secrets.open(row["api_secret"]),
            ip_allow=tuple(json.loads(row["ip_allow"])),
            disabled=bool(row["disabled"]),
        )

    def keys_of(self, account_id: int) -> list[KeyRecord]:
        rows = self.conn.execute(
            select(s.api_keys.c.api_key).where(s.api_keys.c.account_id == account_id)
        ).scalars()
        return [k for k in (self.key(r) for r in rows) if k is not None]

    # --- rates ------------------------------------------------------------------------------
    def replace_rates(self, account_id: int, rates: Iterable[Rate]) -> int:
        self.conn.execute(delete(s.rates).where(s.rates.c.account_id == account_id))
        return self.upsert_rates(account_id, rates)

    def upsert_rates(self, account_id: int, rates: Iterable[Rate]) -> int:
        rows = [
            {
                "account_id": account_id,
                "prefix": r.prefix,
                "price": r.price,
                "bill_period": r.bill_period,
                "currency": r.currency,
            }
            for r in rates
        ]
        if not rows:
            return 0
        self.conn.execute(
            delete(s.rates).where(
                s.rates.c.account_id == account_id,
                s.rates.c.prefix.in_([r["prefix"] for r in rows]),
            )
        )
        self.conn.execute(insert(s.rates), rows)
        return len(rows)

    def rates_of(self, account_id: int) -> list[Rate]:
        rows = self.conn.execute(
            select(s.rates.c.prefix, s.rates.c.price, s.rates.c.bill_period, s.rates.c.currency)
            .where(s.rates.c.account_id == account_id)
            .order_by(s.rates.c.prefix)
        ).mappings()
        return [Rate(**r) for r in rows]

    # --- scripts ----------------------------------------------------------------------------
    def insert_script(self, **values: Any) -> int:
        result = self.conn.execute(insert(s.scripts).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def script(self, account_id: int, script_id: int) -> ScriptRecord | None:
        row = (
            self.conn.execute(
                select(s.scripts).where(
                    s.scripts.c.id == script_id, s.scripts.c.account_id == account_id
                )
            )
            .mappings()
            .first()
        )
        return ScriptRecord(**row) if row else None

    def scripts_of(self, account_id: int) -> list[ScriptRecord]:
        rows = self.conn.execute(
            select(s.scripts).where(s.scripts.c.account_id == account_id).order_by(s.scripts.c.id)
        ).mappings()
        return [ScriptRecord(**r) for r in rows]

    # --- do-not-call ------------------------------------------------------------------------
    def add_dnc(self, account_id: int, numbers: Iterable[str], reason: str | None, now: int) -> int:
        wanted = sorted(set(numbers))
        if not wanted:
            return 0
        have = set(
            self.conn.execute(
                select(s.dnc.c.number).where(
                    s.dnc.c.account_id == account_id, s.dnc.c.number.in_(wanted)
                )
            ).scalars()
        )
        rows = [
            {"account_id": account_id, "number": n, "reason": reason, "created_at": now}
            for n in wanted
            if n not in have
        ]
        if rows:
            self.conn.execute(insert(s.dnc), rows)
        return len(rows)

    def remove_dnc(self, account_id: int, numbers: Iterable[str]) -> int:
        result = self.conn.execute(
            delete(s.dnc).where(s.dnc.c.account_id == account_id, s.dnc.c.number.in_(list(numbers)))
        )
        return int(result.rowcount)

    def dnc_page(
        self, account_id: int, number: str | None, offset: int, limit: int
    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        conds = [s.dnc.c.account_id == account_id]
        if number:
            conds.append(s.dnc.c.number == number)
        total = self.conn.execute(select(func.count()).where(*conds)).scalar_one()
        rows = self.conn.execute(
            select(s.dnc.c.number, s.dnc.c.reason, s.dnc.c.created_at)
            .where(*conds)
            .order_by(s.dnc.c.created_at.desc(), s.dnc.c.number)
            .offset(offset)
            .limit(limit)
        ).all()
        return int(total), [(r[0], r[1], int(r[2])) for r in rows]

    def has_dnc(self, account_id: int) -> bool:
        stmt = select(s.dnc.c.number).where(s.dnc.c.account_id == account_id).limit(1)
        return self.conn.execute(stmt).first() is not None

    # --- tasks ------------------------------------------------------------------------------
    def count_unfinished(self, account_id: int) -> int:
        stmt = select(func.count()).where(
            s.tasks.c.account_id == account_id,
            s.tasks.c.status.in_([int(x) for x in UNFINISHED_STATUSES]),
        )
        return int(self.conn.execute(stmt).scalar_one())

    def task_name_taken(self, account_id: int, name: str, *, other_than: int | None = None) -> bool:
        stmt = select(s.tasks.c.id).where(
            s.tasks.c.account_id == account_id, s.tasks.c.task_name == name
        )
        if other_than is not None:
            stmt = stmt.where(s.tasks.c.id != other_than)
        return self.conn.execute(stmt.limit(1)).first() is not None

    def insert_task(self, task: NewTask, updated_at: int) -> int:
        values = {k: getattr(task, k) for k in NewTask.__slots__}
        result = self.conn.execute(insert(s.tasks).values(**values, updated_at=updated_at))
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def insert_callees(self, task_id: int, rows: Iterable[tuple[str | None, ...]]) -> None:
        insert_callees(self.conn, task_id, rows)

    def block_dnc_callees(self, task_id: int, account_id: int) -> int:
        """Mark this task's callees that are on the account's do-not-call list as blocked."""
        listed = select(s.dnc.c.number).where(s.dnc.c.account_id == account_id)
        result = self.conn.execute(
            update(s.callees)
            .where(s.callees.c.task_id == task_id, s.callees.c.number.in_(listed))
            .values(state=s.CALLEE_BLOCKED)
        )
        return int(result.rowcount)

    def task(self, account_id: int, task_id: int, *, lock: bool = False) -> TaskRecord | None:
        stmt = (
            select(*_task_columns())
            .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
            .where(s.tasks.c.id == task_id, s.tasks.c.account_id == account_id)
        )
        if lock:
            stmt = stmt.with_for_update(of=s.tasks)
        row = self.conn.execute(stmt).mappings().first()
        return _task(row) if row else None

    def task_app_pk(self, task_id: int) -> int:
        return int(
            self.conn.execute(select(s.tasks.c.app_pk).where(s.tasks.c.id == task_id)).scalar_one()
        )

    def task_any(self, task_id: int) -> TaskRecord | None:
        """A task by id whatever its account (operator commands only, never the API)."""
        row = (
            self.conn.execute(
                select(*_task_columns())
                .join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
                .where(s.tasks.c.id == task_id)
            )
            .mappings()
            .first()
        )
        return _task(row) if row else None

    def tasks(self, f: TaskFilter, offset: int, limit: int) -> tuple[int, list[TaskRecord]]:
        conds = [s.tasks.c.account_id == f.account_id]
        if f.created_from is not None:
            conds.append(s.tasks.c.created_at >= f.created_from)
        if f.created_to is not None:
            conds.append(s.tasks.c.created_at <= f.created_to)
        if f.statuses:
            conds.append(s.tasks.c.status.in_(f.statuses))
        if f.app_id:
            conds.append(s.apps.c.app_id == f.app_id)
        if f.task_type is not None:
            conds.append(s.tasks.c.task_type == f.task_type)
        if f.search:
            pattern = "%" + f.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(s.tasks.c.task_name.like(pattern + "%", escape="\\"))
        joined = s.tasks.join(s.apps, s.apps.c.id == s.tasks.c.app_pk)
        where = and_(*conds)
        total = self.conn.execute(select(func.count()).select_from(joined).where(where))
        rows = self.conn.execute(
            select(*_task_columns())
            .select_from(joined)
            .where(where)
            .order_by(s.tasks.c.id.desc())
            .offset(offset)
            .limit(limit)
        ).mappings()
        return int(total.scalar_one()), [_task(r) for r in rows]

    def update_task(self, task_id: int, **values: Any) -> None:
        self.conn.execute(update(s.tasks).where(s.tasks.c.id == task_id).values(**values))

    def first_callee_without_text(self, task_id: int, n: int) -> str | None:
        column = s.callees.c[f"text{n}"]
        stmt = (
            select(s.callees.c.number)
            .where(s.callees.c.task_id == task_id, (column.is_(None)) | (column == ""))
            .order_by(s.callees.c.id)
            .limit(1)
        )
        return self.conn.execute(stmt).scalar()

    def callee_numbers(self, task_id: int) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            select(s.callees.c.number, s.callees.c.state)
            .where(s.callees.c.task_id == task_id)
            .order_by(s.callees.c.id)
        )
        return [(r[0], r[1]) for r in rows]

    # --- idempotency ------------------------------------------------------------------------
    def idempotent_task(self, account_id: int, key: str) -> tuple[str, int] | None:
        row = self.conn.execute(
            select(s.idempotency_keys.c.body_hash, s.idempotency_keys.c.task_id).where(
                s.idempotency_keys.c.account_id == account_id, s.idempotency_keys.c.key == key
            )
        ).first()
        return (row[0], int(row[1])) if row else None

    def insert_idempotency(
        self, account_id: int, key: str, body_hash: str, task_id: int, now: int
    ) -> None:
        self.conn.execute(
            insert(s.idempotency_keys).values(
                account_id=account_id, key=key, body_hash=body_hash, task_id=task_id, created_at=now
            )
        )

    # --- long-TTS quota ---------------------------------------------------------------------
    def tts_used(self, account_id: int, day: str) -> int:
        used = self.conn.execute(
            select(s.tts_usage.c.used).where(
                s.tts_usage.c.account_id == account_id, s.tts_usage.c.day == day
            )
        ).scalar()
        return int(used or 0)

    def add_tts_use(self, account_id: int, day: str) -> None:
        done = self.conn.execute(
            update(s.tts_usage)
            .where(s.tts_usage.c.account_id == account_id, s.tts_usage.c.day == day)
            .values(used=s.tts_usage.c.used + 1)
        )
        if done.rowcount == 0:
            self.conn.execute(insert(s.tts_usage).values(account_id=account_id, day=day, used=1))

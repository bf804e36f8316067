"""The store: migrations match the schema, and a write transaction is all or nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from outdial.store import schema
from outdial.store.repo import Store


def schema_diff(store: Store) -> list[Any]:
    """What the database's schema has that the declared one has not (or the reverse)."""
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    if store.dialect == "sqlite":
        # SQLite keeps the callees' key to their task (see migration 0014).
        kept = [d for d in diff if d[0] == "remove_fk" and d[1].name == "fk_callees_task_id_tasks"]
        assert len(kept) == 1, diff
        diff = [d for d in diff if d not in kept]
    return list(diff)


def test_migrations_produce_exactly_the_declared_schema(store: Store) -> None:
    assert schema_diff(store) == []


def test_sqlite_runs_in_wal_mode(store: Store) -> None:
    if store.dialect != "sqlite":
        return
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_process_killed_mid_submission_leaves_nothing(store: Store, db_url: str) -> None:
    """SIGKILL the writer after the task and half its callees are written, before commit."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from outdial.store.records import NewTask
        from outdial.store.repo import Store
        from outdial.testing import FakeClock, make_account
        store = Store.open({db_url!r})
        acc = make_account(store, FakeClock(), name="doomed")
        print(acc.account_id, flush=True)
        with store.write() as tx:
            app = tx.app(acc.account_id, acc.app_id)
            sid = tx.insert_script(account_id=acc.account_id, name="s", language="en",
                                   source="", definition="{{}}", created_at=0)
            task = NewTask(account_id=acc.account_id, app_pk=app.id, task_name="doomed",
                           status=0, script_id=sid, display_num="", send_at=None,
                           allow_send_time="[]", timezone="UTC", max_calls=30,
                           max_ringing_time=60, enable_recording=0, callout_rate=1,
                           num_cnt=20000, submitted_cnt=20000, created_at=0)
            task_id = tx.insert_task(task, updated_at=0)
            rows = [(str(8613000000000 + i),) + (None,) * 10 for i in range(10000)]
            tx.insert_callees(task_id, rows)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    account_id = int(proc.stdout.split()[0])
    with store.read() as tx:
        tasks = tx.conn.execute(
            select(func.count()).where(schema.tasks.c.account_id == account_id)
        ).scalar_one()
        orphans = tx.conn.execute(
            select(func.count())
            .select_from(schema.callees)
            .where(~schema.callees.c.task_id.in_(select(schema.tasks.c.id)))
        ).scalar_one()
        scripts = tx.conn.execute(
            select(func.count()).where(schema.scripts.c.account_id == account_id)
        ).scalar_one()
    assert (tasks, orphans, scripts) == (0, 0, 0)
    # The database is healthy afterwards: a new write goes through.
    with store.write() as tx:
        tx.update_account(account_id, name="survivor")


def test_the_task_tallies_migration_goes_down_and_up(fresh_db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from outdial.store.db import alembic_config

    store = Store.open(fresh_db_url)
    try:
        cfg = alembic_config(store.engine)
        command.downgrade(cfg, "0011")
        assert "task_tallies" not in inspect(store.engine).get_table_names()
        command.upgrade(cfg, "head")
        assert "task_tallies" in inspect(store.engine).get_table_names()
        assert schema_diff(store) == []
    finally:
        store.close()


def test_runnable_task_columns_are_in_the_fields_order() -> None:
    """runnable_tasks builds its rows positionally."""
    from dataclasses import fields

    from outdial.store.dialing import RUNNABLE_COLUMNS, RunnableTask

    assert [c.name for c in RUNNABLE_COLUMNS] == [f.name for f in fields(RunnableTask)]


def test_the_callees_key_migration_goes_down_and_up(fresh_db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from outdial.store.db import alembic_config

    store = Store.open(fresh_db_url)
    try:

        def keys() -> list[str | None]:
            return [fk["name"] for fk in inspect(store.engine).get_foreign_keys("callees")]

        cfg = alembic_config(store.engine)
        command.downgrade(cfg, "0013")
        assert keys() == ["fk_callees_task_id_tasks"]
        command.upgrade(cfg, "head")
        assert keys() == ([] if store.dialect == "postgresql" else ["fk_callees_task_id_tasks"])
        assert schema_diff(store) == []
    finally:
        store.close()

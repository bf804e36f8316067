"""Helpers to run real ``outdial worker`` processes against a database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
from sqlalchemy import func, select

from outdial.api.bodies import task_submission
from outdial.client import published_example
from outdial.clock import SystemClock
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import make_account

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def submit_task(store: Store, callees: int, lines: int) -> tuple[int, int]:
    """A task of ``callees`` numbers with no window; returns (account id, task id)."""
    clock = SystemClock()
    acc = make_account(store, clock, lines=lines, balance="100000")
    source = (EXAMPLES / "templates" / "simple-notice.yaml").read_text()
    script = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
    script_id = int(script.import_script(acc.account_id, source)["scriptId"])
    body = published_example(acc.app_id, script_id)
    body["allowSendTime"] = []
    body["numberInfoList"] = [
        {"calleeNumber": f"8613{i:09d}", "text1": "x"} for i in range(callees)
    ]
    task_id = SubmitService(store, clock, SubmitPolicy()).submit(
        acc.account_id, task_submission(orjson.dumps(body))
    )
    return acc.account_id, task_id


def start_worker(
    db_url: str, worker_id: str, log: Path, **extra_env: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    env.update(
        OUTDIAL_DATABASE_URL=db_url,
        OUTDIAL_WORKER_ID=worker_id,
        OUTDIAL_SIM_INSTANT="true",
        OUTDIAL_LEASE_SECONDS="2",
        OUTDIAL_PUSH_ENABLED="false",
        OUTDIAL_LOG_LEVEL="WARNING",
    )
    env.update(extra_env)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "outdial", "worker"], env=env, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def count(store: Store, table: str, **where: int) -> int:
    t = schema.metadata.tables[table]
    with store.read() as tx:
        stmt = select(func.count()).select_from(t)
        for column, value in where.items():
            stmt = stmt.where(t.c[column] == value)
        return int(tx.conn.execute(stmt).scalar_one())


def wait_for_status(store: Store, task_id: int, status: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(store, "tasks", id=task_id, status=status) == 1:
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not reach status {status} in {timeout} s")

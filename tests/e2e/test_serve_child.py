"""`outdial serve`'s dialer is a supervised child process: restarted when it dies, drained and
stopped with the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
from sqlalchemy import select

from outdial.store import schema
from outdial.store.repo import Store
from tests.e2e.workers import count, submit_task, wait_for_status
from tests.helpers import wait_until_serving


def _child(pid: int, timeout: float = 30) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = psutil.Process(pid).children()
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise AssertionError("serve started no dialer process")


def test_the_dialer_child_is_restarted_and_stopped_with_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    store = Store.open(url)
    try:
        _account, task_id = submit_task(store, callees=3000, lines=20)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
        env.update(
            OUTDIAL_DATABASE_URL=url,
            OUTDIAL_SIM_INSTANT="true",
            OUTDIAL_SIM_MAX_CPS="500",
            OUTDIAL_PUSH_ENABLED="false",
            OUTDIAL_LOG_LEVEL="WARNING",
        )
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "outdial", "serve", "--port", "0"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_serving(log)
            first = _child(server.pid)
            # The request-serving thread runs below the dialer's priority (cli/priority.py).
            # (Its first line is printed just before the server starts: wait for the start.)
            until = time.monotonic() + 30
            while os.getpriority(os.PRIO_PROCESS, server.pid) != 5 and time.monotonic() < until:
                time.sleep(0.05)
            assert os.getpriority(os.PRIO_PROCESS, server.pid) == 5
            assert first.nice() == 0
            deadline = time.monotonic() + 60
            while count(store, "calls", task_id=task_id) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            second = _child(server.pid)
            assert second.pid != first.pid, "the dialer was started again"
            assert second.nice() == 0, "a restarted dialer keeps the normal priority"
            wait_for_status(store, task_id, 2, timeout=120)
            server.send_signal(signal.SIGTERM)
            assert server.wait(60) == 0
            assert not second.is_running() or second.status() == psutil.STATUS_ZOMBIE
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        with store.read() as tx:
            rows = tx.conn.execute(
                select(schema.calls.c.callee_id, schema.calls.c.outcome).where(
                    schema.calls.c.task_id == task_id
                )
            ).all()
        finals = Counter(callee for callee, outcome in rows if outcome != "interrupted")
        assert len(finals) == 3000 and set(finals.values()) == {1}
        assert "restarting it" in log.read_text()
    finally:
        store.close()

"""Crash safety and shared work between real worker processes."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from outdial.store import schema
from outdial.store.repo import Store
from tests.e2e.workers import count, start_worker, stop, submit_task, wait_for_status


def _kill_mid_call(store: Store, db_url: str, task_id: int, log: Path) -> int:
    """Start a worker and SIGKILL it while callees are being dialed; return how many were."""
    for attempt in range(8):
        proc = start_worker(db_url, f"doomed-{attempt}", log)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if count(store, "callees", task_id=task_id, state=schema.CALLEE_DIALING) > 0:
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=30)
        finally:
            stop(proc)
        in_flight = count(store, "callees", task_id=task_id, state=schema.CALLEE_DIALING)
        if in_flight:
            return in_flight
    pytest.fail("could not catch the worker with a call in flight")


def test_sigkill_mid_task_loses_nothing_and_dials_nothing_twice(
    fresh_db_url: str, tmp_path: Path
) -> None:
    store = Store.open(fresh_db_url)
    try:
        _account, task_id = submit_task(store, callees=10_000, lines=50)
        in_flight = _kill_mid_call(store, fresh_db_url, task_id, tmp_path / "worker.log")
        done_before = count(store, "calls", task_id=task_id)
        assert done_before < 10_000
        survivor = start_worker(fresh_db_url, "survivor", tmp_path / "worker.log")
        try:
            wait_for_status(store, task_id, 2, timeout=120)
        finally:
            stop(survivor)
        with store.read() as tx:
            calls = tx.conn.execute(
                select(
                    schema.calls.c.callee_id, schema.calls.c.attempt, schema.calls.c.outcome
                ).where(schema.calls.c.task_id == task_id)
            ).all()
            states = Counter(
                tx.conn.execute(
                    select(schema.callees.c.state).where(schema.callees.c.task_id == task_id)
                ).scalars()
            )
        per_callee: dict[int, list[tuple[int, str]]] = {}
        for callee_id, attempt, outcome in calls:
            per_callee.setdefault(callee_id, []).append((attempt, outcome))
        assert len(per_callee) == 10_000, "a callee was lost"
        interrupted = 0
        for history in per_callee.values():
            finals = [h for h in history if h[1] != "interrupted"]
            assert len(finals) == 1, f"dialed twice or never finished: {history}"
            if len(history) == 2:
                interrupted += 1
                assert sorted(history)[0] == (1, "interrupted")
                assert finals[0][0] == 2, "the retry is the second attempt"
            else:
                assert len(history) == 1 and history[0][0] == 1
        assert interrupted == in_flight
        assert states[schema.CALLEE_DIALING] == 0 and states[schema.CALLEE_PENDING] == 0
        detail = count(store, "calls", task_id=task_id)
        assert detail == 10_000 + interrupted
    finally:
        store.close()


def test_two_workers_share_a_task_without_dialing_twice(fresh_pg_url: str, tmp_path: Path) -> None:
    fresh_db_url = fresh_pg_url
    store = Store.open(fresh_db_url)
    try:
        _account, task_id = submit_task(store, callees=20_000, lines=200)
        log = tmp_path / "workers.log"
        workers = [start_worker(fresh_db_url, name, log) for name in ("w-a", "w-b")]
        try:
            wait_for_status(store, task_id, 2, timeout=180)
        finally:
            for w in workers:
                stop(w)
        with store.read() as tx:
            rows = tx.conn.execute(
                select(schema.calls.c.callee_id, schema.calls.c.worker).where(
                    schema.calls.c.task_id == task_id
                )
            ).all()
        callees = Counter(r[0] for r in rows)
        assert len(callees) == 20_000 and max(callees.values()) == 1, "a callee was dialed twice"
        by_worker = Counter(r[1] for r in rows)
        assert set(by_worker) == {"w-a", "w-b"}
        assert min(by_worker.values()) > 20_000 * 0.1, f"the work was not shared: {by_worker}"
    finally:
        store.close()

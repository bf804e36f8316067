"""Simulated speed-up across processes: real `outdial worker` processes share the database's
timeline, so leases, records and push reports agree whenever each process started."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from outdial.api.bodies import task_submission
from outdial.client import PUSH_SIGNATURE_HEADER, published_example, verify_push_signature
from outdial.clock import Clock, SimTimeline, SystemClock, epoch_ms
from outdial.dialer.timeline import timeline
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import make_account
from tests.e2e.workers import EXAMPLES, start_worker, stop, wait_for_status

REALISTIC = {
    "OUTDIAL_SIM_INSTANT": "false",
    # 90 simulated seconds: 3 s of real time at x30, renewed every second.
    "OUTDIAL_LEASE_SECONDS": "90",
}


def _wait_for_timeline(store: Store, timeout: float = 30) -> SimTimeline:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.read() as tx:
            found = tx.sim_clock()
        if found is not None:
            return timeline(found, SystemClock())
        time.sleep(0.05)
    raise AssertionError("no worker started the simulated timeline")


def _submit(store: Store, clock: Clock, callees: int, lines: int, **account: Any) -> int:
    acc = make_account(store, clock, lines=lines, balance="100000", **account)
    source = (EXAMPLES / "templates" / "simple-notice.yaml").read_text()
    script = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
    script_id = int(script.import_script(acc.account_id, source)["scriptId"])
    body = published_example(acc.app_id, script_id)
    body["allowSendTime"] = []
    body["numberInfoList"] = [
        {"calleeNumber": f"8613{i:09d}", "text1": "x"} for i in range(callees)
    ]
    return SubmitService(store, clock, SubmitPolicy()).submit(
        acc.account_id, task_submission(orjson.dumps(body))
    )


def test_two_workers_at_x30_started_apart_share_one_timeline(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    """Started 4 s apart at x30, separate clocks would disagree by 116 simulated seconds, more
    than the 90 s lease: each would take the other's fresh leases for expired ones."""
    store = Store.open(fresh_pg_url)
    log = tmp_path / "workers.log"
    env = {**REALISTIC, "OUTDIAL_SIM_SPEED": "30"}
    workers = [start_worker(fresh_pg_url, "early", log, **env)]
    try:
        clock = _wait_for_timeline(store)
        task_id = _submit(store, clock, callees=600, lines=60)
        time.sleep(4)
        # The second worker does not set a speed: it follows the database's timeline.
        workers.append(start_worker(fresh_pg_url, "late", log, **REALISTIC))
        wait_for_status(store, task_id, 2, timeout=90)
    finally:
        for w in workers:
            stop(w)
    try:
        with store.read() as tx:
            rows = tx.conn.execute(
                select(
                    schema.calls.c.callee_id,
                    schema.calls.c.worker,
                    schema.calls.c.outcome,
                    schema.calls.c.ring_duration,
                    schema.calls.c.call_duration,
                ).where(schema.calls.c.task_id == task_id)
            ).all()
            stored = tx.sim_clock()
    finally:
        store.close()
    assert stored is not None and stored.speed == 30
    outcomes = Counter(r.outcome for r in rows)
    assert outcomes["interrupted"] == 0, f"fresh leases taken for expired ones: {outcomes}"
    per_callee = Counter(r.callee_id for r in rows)
    assert len(per_callee) == 600 and max(per_callee.values()) == 1, "a callee was dialed twice"
    by_worker = Counter(r.worker for r in rows)
    assert set(by_worker) == {"early", "late"}, by_worker
    assert outcomes["connected"] > 0 and outcomes["no_answer"] > 0, outcomes
    # The published example's limits: maxRingingTime 60, maxCalls 40.
    assert max(r.ring_duration for r in rows) <= 60
    assert max(r.call_duration for r in rows) <= 40


class _Receiver(BaseHTTPRequestHandler):
    """Answers 500 to each report's first try and 200 to the next."""

    seen: list[dict[str, Any]]
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        attempt = int(self.headers["X-Outdial-Attempt"])
        with self.lock:
            self.seen.append(
                {
                    "attempt": attempt,
                    "delivery": self.headers["X-Outdial-Delivery"],
                    "signature": self.headers[PUSH_SIGNATURE_HEADER],
                    "body": body,
                    "received": time.time(),
                }
            )
        self.send_response(500 if attempt == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    # A deliverer opens up to 32 connections at once: the default backlog (5) refuses some.
    request_queue_size = 128


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"seen": seen})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/push", seen
    server.shutdown()
    server.server_close()


def test_push_reports_at_x60_are_stamped_and_retried_on_the_shared_timeline(
    fresh_db_url: str, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = receiver
    profile = tmp_path / "profile.yaml"
    profile.write_text("ring_seconds: [2, 10]\ntalk_seconds: [5, 20]\n")
    store = Store.open(fresh_db_url)
    worker = start_worker(
        fresh_db_url,
        "pusher",
        tmp_path / "worker.log",
        OUTDIAL_SIM_INSTANT="false",
        OUTDIAL_SIM_SPEED="60",
        OUTDIAL_SIM_PROFILE=str(profile),
        OUTDIAL_LEASE_SECONDS="300",
        OUTDIAL_PUSH_ENABLED="true",
        OUTDIAL_PUSH_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
    )
    try:
        clock = _wait_for_timeline(store)
        began = epoch_ms(clock.now())
        task_id = _submit(store, clock, callees=20, lines=20, push_url=url)
        wait_for_status(store, task_id, 2, timeout=60)
        finished_real = time.monotonic()
        outbox = schema.push_outbox
        while time.monotonic() - finished_real < 15:
            with store.read() as tx:
                pending = tx.conn.execute(
                    select(outbox.c.id).where(outbox.c.status != schema.PUSH_DELIVERED)
                ).all()
            if not pending:
                break
            time.sleep(0.1)
        delivered_after = time.monotonic() - finished_real
        with store.read() as tx:
            reports = tx.conn.execute(select(outbox)).mappings().all()
            tries = tx.conn.execute(select(schema.push_attempts)).mappings().all()
            secret = tx.conn.execute(select(schema.apps.c.push_secret)).scalar_one()
        ended = epoch_ms(clock.now())
    finally:
        stop(worker)
        store.close()
    assert len(reports) == 20
    assert all(r["status"] == schema.PUSH_DELIVERED for r in reports), reports
    # The first try fails; its retry is due 10 simulated seconds later, a sixth of a real
    # second at x60: every report is delivered within a few real seconds of the calls.
    assert delivered_after < 10
    by_report: dict[int, list[Any]] = {}
    for t in tries:
        by_report.setdefault(t["outbox_id"], []).append(t)
    for r in reports:
        assert len(by_report[r["id"]]) == 2, [dict(t) for t in by_report[r["id"]]]
        first, second = sorted(by_report[r["id"]], key=lambda t: t["attempt"])
        assert began <= r["created_at"] <= first["at"] < second["at"] <= ended
        assert second["at"] - first["at"] >= 10_000, "the retry waits 10 s of the timeline"
        assert r["delivered_at"] is not None and second["at"] <= r["delivered_at"] <= ended
        payload = orjson.loads(r["payload"])
        assert began <= payload["hangupTime"] <= r["created_at"]
    # Signatures carry real time: receivers verify them against their own clocks.
    assert len(seen) == 40
    assert all(
        verify_push_signature(secret, s["signature"], s["body"], s["received"]) for s in seen
    )

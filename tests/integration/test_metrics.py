"""Prometheus metrics and readiness: a worker's collector after real dialing on virtual time,
the outbox backlog read from the database, the API's /metrics and /readyz, and a worker
process serving its own port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text

from outdial.dialer.metrics import DialerCollector, Latency
from outdial.domain.outcome import Outcome
from outdial.service.metrics import OutboxCollector
from outdial.store.health import head_revision, readiness
from outdial.store.repo import Store
from outdial.testing import Scripted, ScriptedCarrier
from tests.integration import test_dialer

# The dialer tests' fixtures: a fresh database per test and a virtual-time rig over it.
store = test_dialer.store
rig = test_dialer.rig

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_workers_collector_reads_its_counters(rig: Any) -> None:
    r = rig(START)
    acc = r.account(lines=2, push_url="http://127.0.0.1:9/push")
    script = r.template(acc)
    r.submit(acc, script, ["8613000000001", "8613000000002", "8613000000003"])
    carrier = ScriptedCarrier(
        r.clock,
        {"8613000000002": Scripted(Outcome.BUSY, ring=3)},
        default=Scripted(Outcome.CONNECTED, ring=5, talk=20),
    )
    dialer = r.dialer(carrier)
    registry = CollectorRegistry()
    registry.register(DialerCollector(dialer, "scripted"))
    registry.register(OutboxCollector(r.store, r.clock))
    r.drain(dialer)

    w = {"worker": "w1"}
    wc = {"worker": "w1", "carrier": "scripted"}
    assert sample(registry, "outdial_calls_placed_total", **wc) == 3
    assert sample(registry, "outdial_call_outcomes_total", **wc, outcome="connected") == 2
    assert sample(registry, "outdial_call_outcomes_total", **wc, outcome="busy") == 1
    assert sample(registry, "outdial_calls_in_flight", **w) == 0
    assert sample(registry, "outdial_fenced_writes_total", **w) == 0
    assert sample(registry, "outdial_recovered_calls_total", **w) == 0
    assert sample(registry, "outdial_db_errors_total", **w) == 0
    claims = sample(registry, "outdial_claim_seconds_count", **w)
    assert claims is not None and claims >= 1
    assert sample(registry, "outdial_claim_seconds_bucket", **w, le="+Inf") == claims
    # Three reports wait for a receiver nobody delivers to (no push loop runs here).
    assert sample(registry, "outdial_database_up") == 1
    assert sample(registry, "outdial_push_queue_depth") == 3
    age = sample(registry, "outdial_push_queue_age_seconds")
    assert age is not None and age >= 0
    assert sample(registry, "outdial_sms_queue_depth") == 0
    assert sample(registry, "outdial_sms_queue_age_seconds") == 0
    page = generate_latest(registry).decode()
    assert "# TYPE outdial_claim_seconds histogram" in page
    assert "8613000000001" not in page


def test_lines_in_use_while_calls_are_in_flight(rig: Any) -> None:
    r = rig(START)
    acc = r.account(lines=2)
    script = r.template(acc)
    r.submit(acc, script, ["8613000000011", "8613000000012", "8613000000013"])
    carrier = ScriptedCarrier(r.clock, default=Scripted(Outcome.CONNECTED, ring=5, talk=600))
    dialer = r.dialer(carrier)
    registry = CollectorRegistry()
    registry.register(DialerCollector(dialer, "scripted"))
    r.run(dialer.step())
    r.run(asyncio.sleep(10))
    w = {"worker": "w1"}
    # One claim takes at most half an account's lines: one call of the two lines here.
    assert sample(registry, "outdial_calls_in_flight", **w) == 1
    assert sample(registry, "outdial_lines_in_use", **w, account=str(acc.account_id)) == 1
    r.drain(dialer)
    assert sample(registry, "outdial_lines_in_use", **w, account=str(acc.account_id)) is None


def test_latency_buckets_are_cumulative() -> None:
    lat = Latency()
    for s in (0.0005, 0.003, 0.003, 7.0):
        lat.observe(s)
    cum = dict(lat.cumulative())
    assert (cum["0.001"], cum["0.005"], cum["5.0"], cum["+Inf"]) == (1, 3, 3, 4)
    assert lat.total == pytest.approx(7.0065)


def test_readiness_reports_an_old_schema_and_a_missing_database(tmp_path: Path) -> None:
    s = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    head = head_revision(s)
    assert readiness(s, head).ready
    with s.write() as tx:
        tx.conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    r = readiness(s, head)
    assert (r.ready, r.database, r.schema) == (False, True, "0002")
    s.close()
    gone = Store.open(f"sqlite:///{tmp_path / 'no' / 'such.db'}", migrate=False)
    assert readiness(gone, head).database is False
    gone.close()


def test_api_serves_metrics_and_readiness(api: Any) -> None:
    page = api.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    assert "outdial_database_up 1.0" in page.text
    assert "outdial_push_queue_depth" in page.text and "outdial_sms_queue_age_seconds" in page.text
    ready = api.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["database"] is True
    assert body["schema"] == body["head"]
    assert api.get("/v3/metrics").status_code == 404


def test_a_worker_process_serves_metrics_on_its_own_port(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUTDIAL_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "OUTDIAL_METRICS_PORT": "0",
        "OUTDIAL_SMS_FILE": str(tmp_path / "sms.jsonl"),
        "OUTDIAL_RECORDINGS_DIR": str(tmp_path / "rec"),
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "outdial", "worker"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        url = first["metrics"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        deadline = time.monotonic() + 10
        while True:
            try:
                page = httpx.get(url, timeout=2).text
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        worker = first["worker"]
        assert f'outdial_calls_in_flight{{worker="{worker}"}} 0.0' in page
        assert f'outdial_calls_placed_total{{carrier="sim",worker="{worker}"}} 0.0' in page
        assert "outdial_push_queue_depth 0.0" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    import re

    from outdial.dialer import metrics as dialer_metrics
    from outdial.service import metrics as service_metrics

    dash = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\boutdial_[a-z_]+", e)}
    source = Path(dialer_metrics.__file__).read_text() + Path(service_metrics.__file__).read_text()
    suffixes = ("_total", "_bucket", "_sum", "_count")
    for name in used:
        base = next((name[: -len(x)] for x in suffixes if name.endswith(x)), name)
        family = re.sub(r"^outdial_(push|sms)_", "outdial_{kind}_", base)
        assert f'"{base}"' in source or f'"{family}"' in source or f'f"{family}"' in source, name
    assert len(dash["panels"]) >= 10

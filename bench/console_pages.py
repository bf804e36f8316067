"""Benchmark: server time of the console's campaign page and calls table with 1,000,000 call
records in the database, on SQLite and PostgreSQL. The baseline, measured in the same run on
the same database before the bulk rows are added, is the same pages with the seeded few
records: the ratio says how much the million rows cost each page.

    python bench/console_pages.py [--engine sqlite|postgresql|both] [--rows 1000000] [--runs 15]
                                  [--fresh 3]

Rows are generated inside the database (a recursive CTE on SQLite, generate_series on
PostgreSQL), all ended within the last hour (the overview's worst case: today's figures
and the calls-per-minute chart read all of them). Two accounts share them; the campaign
measured holds half of them. The overview is measured signed in as the account user.

Then the first view in a fresh process (a new store, app and console on the same database:
nothing in memory), ``--fresh`` times each: with the campaign's tally stored in task_tallies
(as the first process left it) and without (its row deleted first, so every call record of
the campaign is counted); the ratio is without / with.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.console.seed import PASSWORD, Seeded, seed

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.console.app import install
from outdial.store.repo import Store
from outdial.testing import FakeClock

PG_ADMIN = os.environ.get(
    "OUTDIAL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

COLUMNS = (
    "account_id, task_id, callee_id, attempt, callee, display_num, script_id, outcome, "
    "submit_time, call_time, answer_time, hangup_time, call_duration, ring_duration, "
    "charged_duration, cost, termination_code, termination_reason, sip_code, intent, grade, "
    "path, hangup_side, created_at"
)

# The answered rows walk appointment-reminder.yaml (the seeded campaign's template) five ways,
# so the campaign page's template funnel groups real paths.
WALKS = (
    ("'[\"remind\"]'", "'callee'"),
    ('\'["remind","confirmed"]\'', "'bot'"),
    ('\'["remind","identify","confirmed"]\'', "'bot'"),
    ('\'["remind","reschedule"]\'', "'callee'"),
    ('\'["remind","goodbye"]\'', "'limit'"),
)


def _values(x: str, acc: Seeded, callee_a: int, callee_b: int, now: int) -> str:
    def walk(part: int) -> str:
        return " ".join(f"WHEN {x} % 5 = {i} THEN {w[part]}" for i, w in enumerate(WALKS))

    # Even rows: the measured campaign (account A); odd rows: the other account's.
    a, b = acc.acme.account_id, acc.other.account_id
    return (
        f"CASE WHEN {x} % 2 = 0 THEN {a} ELSE {b} END, "
        f"CASE WHEN {x} % 2 = 0 THEN {acc.task_id} ELSE {acc.other_task_id} END, "
        f"CASE WHEN {x} % 2 = 0 THEN {callee_a} ELSE {callee_b} END, 1, "
        f"'4479' || CAST(1000000 + {x} AS TEXT), '100', 0, "
        f"CASE WHEN {x} % 3 = 0 THEN 'busy' ELSE 'connected' END, "
        f"{now - 4_000_000}, {now - 4_000_000}, {now - 3_500_000}, {now - 3_000_000} + {x}, "
        f"{x} % 120, 5, 60, 200, 0, 'ok', 200, "
        f"CASE WHEN {x} % 3 = 0 THEN NULL ELSE 'yes' END, "
        f"CASE WHEN {x} % 3 = 0 THEN NULL ELSE 'A' END, "
        f"CASE WHEN {x} % 3 = 0 THEN NULL {walk(0)} END, "
        f"CASE WHEN {x} % 3 = 0 THEN 'system' {walk(1)} END, "
        f"{now - 3_000_000} + {x}"
    )


def bulk(store: Store, data: Seeded, rows: int, now: int) -> float:
    started = time.perf_counter()
    with store.write() as tx:
        ids = {
            task: tx.conn.execute(
                text("SELECT MIN(id) FROM callees WHERE task_id = :t"), {"t": task}
            ).scalar_one()
            for task in (data.task_id, data.other_task_id)
        }
        vals = _values("x", data, ids[data.task_id], ids[data.other_task_id], now)
        if store.dialect == "sqlite":
            sql = (
                f"WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt "
                f"WHERE x < {rows}) INSERT INTO calls ({COLUMNS}) SELECT {vals} FROM cnt"
            )
        else:
            # The driver reads % as a placeholder: doubled, it is the modulo operator.
            vals = vals.replace("%", "%%")
            sql = f"INSERT INTO calls ({COLUMNS}) SELECT {vals} FROM generate_series(1, {rows}) x"
        tx.conn.exec_driver_sql(sql)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return time.perf_counter() - started


def timed(client: TestClient, url: str, runs: int) -> tuple[float, float]:
    """(the first request, the median of the next ``runs``) in ms, server and client in
    one process (TestClient), so the time is the server's plus a few tenths of a ms."""
    t0 = time.perf_counter()
    assert client.get(url).status_code == 200
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
    return first, statistics.median(times)


def sign_in(client: TestClient, username: str) -> None:
    page = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token
    resp = client.post(
        "/console/login",
        data={"csrf": token.group(1), "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text


def pages(data: Seeded) -> dict[str, str]:
    return {
        # Its snapshot is shared for 5 s: the first request is its real cost.
        "overview (snapshot)": "/console/",
        "campaign page": f"/console/campaigns/{data.task_id}",
        "calls table": "/console/calls",
        "calls, page 100 (keyset)": "/console/calls?before={before}",
        "calls filtered (campaign, busy)": f"/console/calls?task={data.task_id}&outcome=busy",
    }


Results = list[tuple[str, float, float, float]]
Fresh = dict[str, list[float]]


def first_view(url: str, settings: Settings, clock: FakeClock, data: Seeded, page: str) -> float:
    """The first request of ``page`` in a fresh process (ms): a new engine, app and console."""
    store = Store.open(url)
    try:
        app = create_app(settings, store, clock)
        install(app, settings, store, clock)
        with TestClient(app) as client:
            sign_in(client, data.user)
            t0 = time.perf_counter()
            resp = client.get(page)
            ms = (time.perf_counter() - t0) * 1000
            assert resp.status_code == 200, (page, resp.status_code, resp.text[:300])
    finally:
        store.close()
    return ms


def fresh_views(url: str, settings: Settings, clock: FakeClock, data: Seeded, times: int) -> Fresh:
    campaign = f"/console/campaigns/{data.task_id}"
    out: Fresh = {"stored": [], "none": [], "calls": []}
    admin = Store.open(url, migrate=False)
    try:
        for _ in range(times):
            with admin.read() as tx:
                assert tx.conn.execute(text("SELECT COUNT(*) FROM task_tallies")).scalar_one()
            out["stored"].append(first_view(url, settings, clock, data, campaign))
            with admin.write() as tx:
                tx.conn.execute(text("DELETE FROM task_tallies"))
            # Counts every record of the campaign, then stores the tally again.
            out["none"].append(first_view(url, settings, clock, data, campaign))
            out["calls"].append(first_view(url, settings, clock, data, "/console/calls"))
    finally:
        admin.close()
    return out


def run(url: str, rows: int, runs: int, folder: Path, fresh: int) -> tuple[Results, Fresh]:
    store = Store.open(url)
    clock = FakeClock()
    settings = Settings(_env_file=None, recordings_dir=str(folder / "rec"))  # type: ignore[call-arg]
    app = create_app(settings, store, clock)
    install(app, settings, store, clock)
    out = []
    with TestClient(app) as client:
        data = seed(client, store, clock, folder / "rec", secrets.token_hex(3))
        sign_in(client, data.user)
        urls = pages(data)
        small = {
            n: timed(client, u.format(before=data.call_ids[-1]), runs) for n, u in urls.items()
        }
        seconds = bulk(store, data, rows, int(clock.now().timestamp() * 1000))
        print(f"  inserted {rows:,} call records in {seconds:.1f} s", flush=True)
        # Every record is then older than a minute: settled, as in a campaign that ran before.
        clock.advance(seconds=120)
        with store.read() as tx:
            top = tx.conn.execute(text("SELECT MAX(id) FROM calls")).scalar_one()
        # Page 100 of the account's calls, newest first, 50 a page (two accounts alternate).
        before = int(top) - 2 * 50 * 100
        for name, u in urls.items():
            first, big = timed(client, u.format(before=before), runs)
            out.append((name, first, big, big / small[name][1]))
    store.close()
    return out, fresh_views(url, settings, clock, data, fresh)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--fresh", type=int, default=3, help="fresh-process first views of each kind")
    args = p.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    for engine in engines:
        folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
        print(f"{engine}: {args.rows:,} call records; median of {args.runs} requests", flush=True)
        if engine == "sqlite":
            results = run(
                f"sqlite:///{folder / 'bench.db'}", args.rows, args.runs, folder, args.fresh
            )
        else:
            import psycopg
            from sqlalchemy.engine import make_url

            admin = make_url(PG_ADMIN)
            dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            name = f"wt_console_bench_{secrets.token_hex(3)}"
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                url = admin.set(database=name).render_as_string(hide_password=False)
                results = run(url, args.rows, args.runs, folder, args.fresh)
            finally:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pages_run, fresh = results
        for page, first, ms, ratio in pages_run:
            flag = "ok" if ms < 300 else "OVER 300 ms"
            print(
                f"  {page:32s} first {first:7.1f} ms, then {ms:7.1f} ms   "
                f"x{ratio:5.1f} vs the seeded few   {flag}"
            )

        stored, none = statistics.median(fresh["stored"]), statistics.median(fresh["none"])
        print(f"  first view in a fresh process (median of {args.fresh}):")
        for label, ms in (
            ("campaign page, tally stored", stored),
            ("campaign page, no tally stored", none),
            ("calls table", statistics.median(fresh["calls"])),
        ):
            flag = "ok" if ms < 300 else "OVER 300 ms"
            print(f"    {label:32s} {ms:7.1f} ms   {flag}")
        print(f"    stored tally: the first view x{none / stored:.1f} faster")


if __name__ == "__main__":
    main()

"""Benchmark: the database work one call costs on PostgreSQL, and what it implies.

One `outdial worker` dials a task on the simulated carrier with instant calls against a private
PostgreSQL server of the bench's own (pg_stat_statements loaded, nothing else connected). From
the server's statistics it prints, per finished call: statements, transactions, rows written,
WAL bytes and the CPU time of the PostgreSQL backends, the worker's own CPU time, and the
statements that cost the most. From those: the calls/s at which one PostgreSQL core saturates,
and the number of workers that reach it. The baseline in the same run is a bare loop of the
same calls' minimum work (one INSERT of the record and one UPDATE of the callee per call, in
transactions of the dialer's batch size).

    python bench/db_work_per_call.py [--callees 20000] [--lines 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.workers import start_worker, stop, submit_task
from tests.faults.harness import PrivateCluster

from outdial.store.repo import Store

TICKS = os.sysconf("SC_CLK_TCK")
BATCH = 200


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, in seconds (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def postmaster_pid(cluster: PrivateCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def server_cpu(cluster: PrivateCluster, seen: dict[int, float]) -> float:
    """CPU seconds of every backend of ``cluster`` so far, remembering backends that ended."""
    for pid in children_of(postmaster_pid(cluster)):
        seen[pid] = max(seen.get(pid, 0.0), cpu_seconds(pid))
    return sum(seen.values())


STATS = (
    "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted, "
    "(SELECT wal_bytes FROM pg_stat_wal) FROM pg_stat_database WHERE datname = current_database()"
)


def snapshot(psql: object) -> tuple[int, int, int]:
    row = psql.execute(STATS).fetchone()  # type: ignore[attr-defined]
    return int(row[0]), int(row[1]), int(row[2])


def dialer_run(cluster: PrivateCluster, callees: int, lines: int, folder: Path) -> dict[str, float]:
    import psycopg

    url = cluster.create_database("dialer")
    store = Store.open(url)
    _account, task_id = submit_task(store, callees=callees, lines=lines)
    store.close()
    raw = url.replace("+psycopg", "")
    with psycopg.connect(raw, autocommit=True) as psql:
        psql.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        psql.execute("SELECT pg_stat_statements_reset()")
        psql.execute("SELECT pg_stat_reset()")
        time.sleep(0.6)  # statistics reach pg_stat_database within the stats interval
        before = snapshot(psql)
        seen: dict[int, float] = {}
        cpu_before = server_cpu(cluster, seen)
        worker = start_worker(url, "db-work", folder / "worker.log", OUTDIAL_LOG_LEVEL="WARNING")
        t0 = time.perf_counter()
        polls = 0
        try:
            while True:
                time.sleep(0.5)
                polls += 1
                (done,) = psql.execute(
                    "SELECT count(*) /* bench-poll */ FROM calls WHERE task_id = %s", (task_id,)
                ).fetchone()
                server_cpu(cluster, seen)
                if done >= callees or worker.poll() is not None:
                    break
            elapsed = time.perf_counter() - t0
            worker_cpu = cpu_seconds(worker.pid)
            cpu_after = server_cpu(cluster, seen)
        finally:
            stop(worker)
        time.sleep(0.6)
        after = snapshot(psql)
        statements = psql.execute(
            "SELECT sum(calls) FROM pg_stat_statements "
            "WHERE query NOT LIKE '%%bench-poll%%' AND query NOT LIKE '%%pg_stat%%'"
        ).fetchone()[0]
        top = psql.execute(
            "SELECT calls, total_exec_time, rows, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
            "FROM pg_stat_statements WHERE query NOT LIKE '%%bench-poll%%' "
            "AND query NOT LIKE '%%pg_stat%%' ORDER BY total_exec_time DESC LIMIT 6"
        ).fetchall()
    done_calls = float(done)
    return {
        "calls": done_calls,
        "seconds": elapsed,
        "cps": done_calls / elapsed,
        "statements": float(statements) / done_calls,
        "transactions": (after[0] - before[0] - polls - 2) / done_calls,
        "rows": (after[1] - before[1]) / done_calls,
        "wal": (after[2] - before[2]) / done_calls,
        "db_cpu_ms": (cpu_after - cpu_before) * 1000 / done_calls,
        "worker_cpu_ms": worker_cpu * 1000 / done_calls,
        "top": top,  # type: ignore[dict-item]
    }


def bare_run(cluster: PrivateCluster, calls: int) -> dict[str, float]:
    """The least a call must write: its record and its callee's new state."""
    import psycopg

    url = cluster.create_database("bare").replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE c (id bigserial PRIMARY KEY, state smallint NOT NULL)")
        conn.execute("CREATE TABLE r (id bigserial PRIMARY KEY, callee bigint, outcome text)")
        conn.execute("INSERT INTO c (state) SELECT 0 FROM generate_series(1, %s)", (calls,))
    seen: dict[int, float] = {}
    with psycopg.connect(url) as conn:
        cpu0 = server_cpu(cluster, seen)
        t0 = time.perf_counter()
        for start in range(1, calls + 1, BATCH):
            ids = list(range(start, min(start + BATCH, calls + 1)))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO r (callee, outcome) VALUES (%s, 'connected')", [(i,) for i in ids]
                )
                cur.execute("UPDATE c SET state = 2 WHERE id = ANY(%s)", (ids,))
            conn.commit()
        elapsed = time.perf_counter() - t0
        cpu1 = server_cpu(cluster, seen)
    return {"cps": calls / elapsed, "db_cpu_ms": (cpu1 - cpu0) * 1000 / calls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callees", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=5_000)
    args = parser.parse_args()
    cluster = PrivateCluster("shared_preload_libraries=pg_stat_statements")
    cluster.start()
    folder = cluster.dir
    try:
        r = dialer_run(cluster, args.callees, args.lines, folder)
        base = bare_run(cluster, args.callees)
    finally:
        cluster.destroy()
    cores = os.cpu_count() or 1
    saturation = 1000 / r["db_cpu_ms"]
    per_worker = 1000 / r["worker_cpu_ms"]
    print(
        f"one worker, {r['calls']:.0f} instant calls on a private PostgreSQL "
        f"({cores} cores on this machine, shared with the worker)"
    )
    print(
        f"dialer: {r['cps']:.0f} calls/s; per call {r['statements']:.2f} statements, "
        f"{r['transactions']:.3f} transactions, {r['rows']:.2f} rows written, "
        f"{r['wal']:.0f} WAL bytes, {r['db_cpu_ms']:.3f} ms PostgreSQL CPU, "
        f"{r['worker_cpu_ms']:.3f} ms worker CPU"
    )
    print(
        f"bare minimum (record INSERT + callee UPDATE, {BATCH} per transaction): "
        f"{base['cps']:.0f} calls/s, {base['db_cpu_ms']:.3f} ms PostgreSQL CPU per call -> "
        f"the dialer costs PostgreSQL {r['db_cpu_ms'] / base['db_cpu_ms']:.1f}x the bare minimum"
    )
    print(
        f"implied: one PostgreSQL core saturates at ~{saturation:.0f} calls/s; one worker "
        f"core at ~{per_worker:.0f} calls/s, so ~{saturation / per_worker:.1f} worker cores "
        "per PostgreSQL core (before locks, I/O and network)"
    )
    print("statements by total time (calls, ms, rows, text):")
    for calls, total, rows, text in r["top"]:  # type: ignore[attr-defined]
        print(f"  {calls:8d} {total:9.0f} {rows:9d}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: POST a 200,000-callee send/ai task (two text variables each, ~16 MB) to a running
outdial server and time it to the response; in the same run time the floor: orjson parse of the
same body plus a plain insert of the same rows into the callees table (executemany on SQLite,
COPY on PostgreSQL), and the bare-table floor: stdlib json parse plus a plain executemany of the
same rows (COPY on PostgreSQL) into a table with the same columns and no index or constraint.
Also reports the server's peak resident memory (VmHWM).

    python bench/submit_200k.py [--engine sqlite|postgresql|both] [--numbers 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from outdial.client import sign
from outdial.store.repo import Store
from outdial.store.schema import CALLEE_COLUMNS
from outdial.testing import FakeClock, make_account

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("OUTDIAL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_RATIO = 1.5
TARGET_BARE_RATIO = 2.0
TARGET_MB = 300


def build_body(app_id: str, script_id: int, n: int, name: str) -> bytes:
    numbers = [
        {
            "calleeNumber": f"86{13000000000 + i * 7}",
            "text1": f"Customer {i}",
            "text2": "June 21 10am",
        }
        for i in range(n)
    ]
    return orjson.dumps(
        {
            "appId": app_id,
            "taskName": name,
            "maxCalls": 60,
            "scriptId": script_id,
            "numberInfoList": numbers,
            "maxRingingTime": 60,
            "allowSendTime": [{"strTime": "09:00", "endTime": "20:00"}],
        }
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_database(engine: str, workdir: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    import psycopg

    name = f"outdial_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle(engine: str, url: str) -> None:
    """Flush the previous insert's write-ahead log so each timed step starts from the same state."""
    if engine == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            conn.execute("VACUUM ANALYZE callees")
    time.sleep(0.5)


def floor_seconds(engine: str, url: str, body: bytes, task_id: int) -> tuple[float, float]:
    """(orjson parse, plain insert) of the same body and rows, in seconds."""
    t0 = time.perf_counter()
    data = orjson.loads(body)
    parse = time.perf_counter() - t0
    texts = (None,) * 8
    rows = [
        (task_id, e["calleeNumber"], e["text1"], e["text2"], *texts) for e in data["numberInfoList"]
    ]
    del data
    cols = ", ".join(CALLEE_COLUMNS)
    if engine == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        marks = ", ".join("?" for _ in CALLEE_COLUMNS)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO callees ({cols}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        insert = time.perf_counter() - t0
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY callees ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            insert = time.perf_counter() - t0
    return parse, insert


def bare_floor_seconds(engine: str, url: str, body: bytes, task_id: int) -> float:
    """stdlib json parse plus a plain insert (executemany; COPY on PostgreSQL, where
    executemany is slower than the server) into an unindexed table of the callee columns."""
    cols = ", ".join(CALLEE_COLUMNS)
    t0 = time.perf_counter()
    data = json.loads(body)
    texts = (None,) * 8
    rows = [
        (task_id, e["calleeNumber"], e["text1"], e["text2"], *texts) for e in data["numberInfoList"]
    ]
    del data
    if engine == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS bare_callees AS SELECT {cols} FROM callees WHERE 0"
        )
        marks = ", ".join("?" for _ in CALLEE_COLUMNS)
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO bare_callees ({cols}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE bare_callees")
        conn.close()
        return elapsed
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS bare_callees AS SELECT {cols} FROM callees WHERE false"
        )
        conn.commit()
        with conn.cursor() as cur, cur.copy(f"COPY bare_callees ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE bare_callees")
        conn.commit()
    return elapsed


def bench_engine(engine: str, n: int, runs: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="outdial-bench-"))
    url = make_database(engine, workdir)
    store = Store.open(url)
    clock = FakeClock()
    acc = make_account(store, clock, name="bench", max_tasks=1000)
    from outdial.service.scripts import ScriptService

    template = (ROOT / "examples/templates/appointment-reminder.yaml").read_text()
    script_id = ScriptService(store, clock, tts_languages=["en"], long_chars=200).import_script(
        acc.account_id, template
    )["scriptId"]
    store.close()
    port = free_port()
    env = {**os.environ, "OUTDIAL_DATABASE_URL": url, "OUTDIAL_LOG_LEVEL": "WARNING"}
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "outdial", "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        baseline_mb = vm_hwm_mb(server.pid)
        times, floors, parses, inserts, bares = [], [], [], [], []
        with httpx.Client(timeout=300) as http:
            for run in range(runs):
                body = build_body(acc.app_id, script_id, n, f"bench run {run}")
                ts = str(int(time.time()))
                headers = {
                    "Api-Key": acc.api_key,
                    "Timestamp": ts,
                    "Sign": sign(acc.api_key, acc.api_secret, ts),
                    "Content-Type": "application/json;charset=UTF-8",
                }
                settle(engine, url)
                t0 = time.perf_counter()
                resp = http.post(
                    f"{base}/v3/voice/group/call/send/ai", content=body, headers=headers
                )
                elapsed = time.perf_counter() - t0
                answer = resp.json()
                if answer.get("status") != "0":
                    raise SystemExit(f"send/ai failed: {answer}")
                times.append(elapsed)
                settle(engine, url)
                parse, insert = floor_seconds(engine, url, body, int(answer["data"]))
                parses.append(parse)
                inserts.append(insert)
                floors.append(parse + insert)
                settle(engine, url)
                bares.append(bare_floor_seconds(engine, url, body, int(answer["data"])))
        peak_mb = vm_hwm_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        drop_database(url)
    median = statistics.median(times)
    floor = statistics.median(floors)
    bare = statistics.median(bares)
    return {
        "mb": len(body) / 1e6,
        "server_s": median,
        "floor_s": floor,
        "parse_s": statistics.median(parses),
        "insert_s": statistics.median(inserts),
        "ratio": median / floor,
        "bare_s": bare,
        "bare_ratio": median / bare,
        "peak_mb": peak_mb,
        "idle_mb": baseline_mb,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--numbers", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    ok = True
    print(f"send/ai with {args.numbers} callees, median of {args.runs} runs")
    for engine in engines:
        r = bench_engine(engine, args.numbers, args.runs)
        good = (
            r["ratio"] <= TARGET_RATIO
            and r["bare_ratio"] <= TARGET_BARE_RATIO
            and r["peak_mb"] < TARGET_MB
        )
        ok &= good
        print(
            f"{engine:10s} body {r['mb']:.1f} MB  server {r['server_s']:.3f} s  "
            f"floor {r['floor_s']:.3f} s (parse {r['parse_s']:.3f} + insert {r['insert_s']:.3f})  "
            f"ratio {r['ratio']:.2f}x (target <= {TARGET_RATIO}x)  "
            f"bare-table floor {r['bare_s']:.3f} s ratio {r['bare_ratio']:.2f}x "
            f"(target <= {TARGET_BARE_RATIO}x)  "
            f"server peak RSS {r['peak_mb']:.0f} MB (idle {r['idle_mb']:.0f}; target < {TARGET_MB})"
            f"  {'OK' if good else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

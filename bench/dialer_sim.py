"""Benchmark: one `outdial worker` process dials a 200,000-callee task on the simulated carrier
with instant calls. Prints finished calls per second, the total time and the worker's memory
(resident set sampled through the run: it must stay flat), and compares, in the same run, with
the same worker committing each call in its own transaction (batch 1, flush 1) on a smaller task.

    python bench/dialer_sim.py [--engine sqlite|postgresql|both] [--callees 200000]
                               [--per-call-callees 5000]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.workers import count, start_worker, stop, submit_task

from outdial.store.repo import Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_CPS = 2000
TARGET_SECONDS = 120


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def database(engine: str, folder: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{folder / f'dialer-{secrets.token_hex(3)}.db'}"
    import psycopg

    name = f"outdial_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def run(engine: str, callees: int, folder: Path, **env: str) -> dict[str, float]:
    url = database(engine, folder)
    store = Store.open(url)
    try:
        _account, task_id = submit_task(store, callees=callees, lines=5000)
        worker = start_worker(url, "bench", folder / "worker.log", **env)
        samples: list[tuple[float, int, float]] = []
        t0 = time.perf_counter()
        try:
            while True:
                done = count(store, "calls", task_id=task_id)
                samples.append((time.perf_counter() - t0, done, rss_mb(worker.pid)))
                if done >= callees or worker.poll() is not None:
                    break
                time.sleep(0.5)
        finally:
            stop(worker)
        total = samples[-1][0]
        # Memory while dialing: from the first finished calls to the end.
        dialing = [s for s in samples if s[1] > 0] or samples
        return {
            "seconds": total,
            "cps": samples[-1][1] / total,
            "rss_first": dialing[0][2],
            "rss_max": max(s[2] for s in dialing),
            "rss_last": dialing[-1][2],
            "done": samples[-1][1],
        }
    finally:
        store.close()
        drop(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--callees", type=int, default=200_000)
    parser.add_argument("--per-call-callees", type=int, default=5_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outdial-dialer-bench-"))
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    ok = True
    print(f"one worker, simulated carrier with instant calls, {args.callees} callees")
    for engine in engines:
        batched = run(engine, args.callees, folder)
        per_call = run(
            engine,
            args.per_call_callees,
            folder,
            OUTDIAL_DIALER_BATCH="1",
            OUTDIAL_DIALER_FLUSH="1",
        )
        good = batched["cps"] >= TARGET_CPS and batched["seconds"] < TARGET_SECONDS
        ok &= good
        print(
            f"{engine:10s} {batched['done']:.0f} calls in {batched['seconds']:.1f} s = "
            f"{batched['cps']:.0f} calls/s (target >= {TARGET_CPS}, < {TARGET_SECONDS} s)  "
            f"worker RSS {batched['rss_first']:.0f} -> max {batched['rss_max']:.0f} -> "
            f"{batched['rss_last']:.0f} MB  | one transaction per call: "
            f"{per_call['cps']:.0f} calls/s -> batching is {batched['cps'] / per_call['cps']:.1f}x"
            f"  {'OK' if good else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

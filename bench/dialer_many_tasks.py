"""Benchmark: one `outdial worker` process dials many running tasks across many accounts with
instant simulated calls, and, in the same run, one task of the same total size on one account
with the same total lines. The dialer's cost per call must not grow with the number of running
tasks: the target is a many-task throughput >= 80% of the one-task figure.

    python bench/dialer_many_tasks.py [--engine sqlite|postgresql|both] [--tasks 1000]
                                      [--accounts 100] [--callees-per-task 2000]
                                      [--lines-per-account 50] [--measure 200000]

Throughput is taken over the first ``--measure`` calls (every task still running meanwhile)
against one task of that many callees: a single task may hold at most 200,000 callees, so
"one task of the same total size" as 1,000 x 2,000 cannot be submitted; both sides are timed
over the same number of calls.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from tests.e2e.workers import EXAMPLES, count, start_worker, stop

from dialer_sim import database, drop, rss_mb
from outdial.api.bodies import task_submission
from outdial.client import published_example
from outdial.clock import SystemClock
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store.repo import Store
from outdial.testing import make_account

TARGET_RATIO = 0.8


def submit(store: Store, accounts: int, tasks: int, per_task: int, lines: int) -> int:
    """``tasks`` tasks of ``per_task`` callees spread over ``accounts`` accounts of ``lines``
    lines each; returns the total number of callees."""
    clock = SystemClock()
    source = (EXAMPLES / "templates" / "simple-notice.yaml").read_text()
    scripts = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
    submitter = SubmitService(store, clock, SubmitPolicy())
    made = []
    for a in range(accounts):
        acc = make_account(
            store, clock, f"bench {a}", lines=lines, balance="1000000", max_tasks=tasks
        )
        made.append((acc, int(scripts.import_script(acc.account_id, source)["scriptId"])))
    number = 0
    for t in range(tasks):
        acc, script_id = made[t % accounts]
        body = published_example(acc.app_id, script_id)
        body["taskName"] = f"bench task {t}"
        body["allowSendTime"] = []
        body["sendTime"] = "2020-01-01 00:00:00"
        body["numberInfoList"] = [
            {"calleeNumber": f"86{number + i:011d}", "text1": "x"} for i in range(per_task)
        ]
        number += per_task
        submitter.submit(acc.account_id, task_submission(orjson.dumps(body)))
    return number


def run(
    engine: str,
    folder: Path,
    accounts: int,
    tasks: int,
    per_task: int,
    lines: int,
    measure: int | None = None,
) -> dict:
    url = database(engine, folder)
    store = Store.open(url)
    try:
        total = submit(store, accounts, tasks, per_task, lines)
        if measure is not None:
            total = min(total, measure)
        worker = start_worker(url, "bench", folder / "worker.log")
        t0 = time.perf_counter()
        first = None
        rss = 0.0
        try:
            while True:
                done = count(store, "calls")
                now = time.perf_counter() - t0
                if done and first is None:
                    first = (now, done)
                rss = max(rss, rss_mb(worker.pid))
                if done >= total or worker.poll() is not None:
                    break
                time.sleep(0.5)
        finally:
            stop(worker)
        assert first is not None, "nothing was dialed"
        # Throughput from the first finished call on (the worker's start-up is not dialing).
        seconds = now - first[0]
        return {"calls": done, "seconds": now, "cps": (done - first[1]) / seconds, "rss": rss}
    finally:
        store.close()
        drop(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--callees-per-task", type=int, default=2000)
    parser.add_argument("--lines-per-account", type=int, default=50)
    parser.add_argument("--measure", type=int, default=200_000, help="calls timed on each side")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outdial-many-tasks-"))
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    total = min(args.tasks * args.callees_per_task, args.measure, 200_000)
    total_lines = args.accounts * args.lines_per_account
    print(
        f"one worker, instant calls: {args.tasks} tasks x {args.callees_per_task} callees over "
        f"{args.accounts} accounts x {args.lines_per_account} lines, against one task of "
        f"{total} callees on one account of {total_lines} lines; {total} calls timed on each"
    )
    ok = True
    for engine in engines:
        many = run(
            engine,
            folder,
            args.accounts,
            args.tasks,
            args.callees_per_task,
            args.lines_per_account,
            measure=total,
        )
        one = run(engine, folder, 1, 1, total, total_lines)
        ratio = many["cps"] / one["cps"]
        good = ratio >= TARGET_RATIO
        ok &= good
        print(
            f"{engine:10s} many tasks {many['cps']:.0f} calls/s ({many['calls']} calls, "
            f"{many['seconds']:.1f} s, RSS max {many['rss']:.0f} MB) | one task "
            f"{one['cps']:.0f} calls/s ({one['seconds']:.1f} s) -> ratio {ratio:.2f} "
            f"(target >= {TARGET_RATIO})  {'OK' if good else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

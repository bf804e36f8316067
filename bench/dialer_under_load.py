"""Benchmark: does the dialer keep its pace while the API is busy?

A 100,000-callee task dials on the simulated carrier (x60, 50 lines). The dialer's pace is
measured idle, then for ``--seconds`` while 32 clients read task detail, task lists, call
records and balances and 5 clients each submit a 100-callee task every second. Two layouts on
each engine: ``serve`` as shipped (the API process with its dialer child) and ``apart`` (an API
process started with ``--no-worker`` beside one ``outdial worker``). Prints the dialer's calls/s
idle and under load with their ratio (target >= 80%), read p99 (target < 300 ms) and submit p99
(target < 1 s).

    python bench/dialer_under_load.py [--engine sqlite|postgresql|both]
                                      [--layout serve|apart|both] [--seconds 60] [--idle 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.workers import count

from outdial.api.bodies import task_submission
from outdial.client import published_example, sign
from outdial.clock import SystemClock
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store.repo import Store
from outdial.testing import make_account

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("OUTDIAL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_SHARE = 0.8
TARGET_READ_P99 = 0.300
TARGET_SUBMIT_P99 = 1.0
READERS = 32
SUBMITTERS = 5
LINES = 50
SPEED = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database(engine: str, folder: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{folder / f'load-{secrets.token_hex(3)}.db'}"
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


class Caller:
    """Signs LAAFFIC requests for one account."""

    def __init__(self, base: str, api_key: str, api_secret: str, app_id: str, script_id: int):
        self.base = base
        self.api_key = api_key
        self.api_secret = api_secret
        self.app_id = app_id
        self.script_id = script_id

    def headers(self) -> dict[str, str]:
        ts = str(int(time.time()))
        return {
            "Api-Key": self.api_key,
            "Timestamp": ts,
            "Sign": sign(self.api_key, self.api_secret, ts),
            "Content-Type": "application/json;charset=UTF-8",
        }

    def task_body(self, name: str, callees: int, first: int) -> bytes:
        body = published_example(self.app_id, self.script_id)
        body["taskName"] = name
        body["maxCalls"] = LINES
        body["allowSendTime"] = []
        body.pop("sendTime", None)
        body["numberInfoList"] = [
            {"calleeNumber": f"8613{first + i:09d}", "text1": "x"} for i in range(callees)
        ]
        return orjson.dumps(body)


def setup(url: str, callees: int) -> tuple[Caller, int]:
    store = Store.open(url)
    clock = SystemClock()
    try:
        acc = make_account(
            store, clock, name="load", lines=LINES, balance="10000000", max_tasks=100_000
        )
        source = (ROOT / "examples" / "templates" / "simple-notice.yaml").read_text()
        script_id = int(
            ScriptService(store, clock, tts_languages=["en"], long_chars=200).import_script(
                acc.account_id, source
            )["scriptId"]
        )
        caller = Caller("", acc.api_key, acc.api_secret, acc.app_id, script_id)
        task_id = SubmitService(store, clock, SubmitPolicy()).submit(
            acc.account_id, task_submission(caller.task_body("the big one", callees, 0))
        )
    finally:
        store.close()
    return caller, task_id


def start(args: list[str], url: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    env.update(
        OUTDIAL_DATABASE_URL=url,
        OUTDIAL_SIM_SPEED=str(SPEED),
        OUTDIAL_PUSH_ENABLED="false",
        OUTDIAL_LOG_LEVEL="WARNING",
        **extra,
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "outdial", *args], env=env, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def calls_so_far(store: Store) -> int:
    return count(store, "calls")


def pace(store: Store, seconds: float) -> float:
    """Finished calls per real second over ``seconds``."""
    before, t0 = calls_so_far(store), time.perf_counter()
    time.sleep(seconds)
    return (calls_so_far(store) - before) / (time.perf_counter() - t0)


async def load(
    caller: Caller, task_id: int, seconds: float
) -> tuple[dict[str, list[float]], list[float]]:
    """Run the readers and submitters for ``seconds``; (read latencies by kind, submit
    latencies)."""
    reads: dict[str, list[float]] = {}
    submits: list[float] = []
    errors: list[str] = []
    end = time.perf_counter() + seconds
    now = datetime.now(UTC)
    record_params = {
        "strTime": (now - timedelta(days=1)).isoformat(timespec="seconds"),
        "endTime": (now + timedelta(days=1)).isoformat(timespec="seconds"),
        "taskId": task_id,
    }
    requests = [
        ("detail", "GET", f"/v3/voice/group/call/detail/{task_id}", None),
        ("list", "POST", "/v3/voice/group/call/query", orjson.dumps({"current": 1, "size": 20})),
        (
            "records",
            "POST",
            "/v3/voice/recordGroupQuery",
            orjson.dumps({"current": 1, "size": 25, "params": record_params}),
        ),
        ("balance", "GET", "/v3/getBalance", None),
    ]

    def client() -> httpx.AsyncClient:
        # A connection per client, never idle for long: a pool shared by all hands out
        # connections the server may have closed after its keep-alive timeout.
        return httpx.AsyncClient(base_url=caller.base, timeout=60)

    async def reader(n: int) -> None:
        i = n
        async with client() as http:
            while time.perf_counter() < end:
                kind, method, path, body = requests[i % len(requests)]
                i += 1
                t0 = time.perf_counter()
                resp = await http.request(method, path, content=body, headers=caller.headers())
                reads.setdefault(kind, []).append(time.perf_counter() - t0)
                answer = resp.json()
                # Style A answers {"status": "0"}, style B {"code": 0}.
                if answer.get("status") != "0" and answer.get("code") != 0:
                    errors.append(resp.text[:200])

    async def submitter(n: int) -> None:
        i = 0
        async with client() as http:
            while time.perf_counter() < end:
                started = time.perf_counter()
                first = 200_000_000 + (n * 1_000_000) + i * 100
                body = caller.task_body(f"load {n}-{i}", 100, first)
                resp = await http.post(
                    "/v3/voice/group/call/send/ai", content=body, headers=caller.headers()
                )
                submits.append(time.perf_counter() - started)
                if resp.json().get("status") != "0":
                    errors.append(resp.text[:200])
                i += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))

    await asyncio.gather(
        *(reader(n) for n in range(READERS)), *(submitter(n) for n in range(SUBMITTERS))
    )
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return reads, submits


def cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds used so far by the API process, the dialer (serve's child or the worker
    process) and this load generator."""
    import psutil

    used: dict[str, float] = {}
    for proc in procs:
        parent = psutil.Process(proc.pid)
        for p in [parent, *parent.children(recursive=True)]:
            name = "dialer" if "worker" in p.cmdline() else "api"
            t = p.cpu_times()
            used[name] = used.get(name, 0.0) + t.user + t.system
    me = psutil.Process().cpu_times()
    used["load"] = me.user + me.system
    return used


def profile(
    procs: list[subprocess.Popen[bytes]], seconds: float, folder: Path | None, tag: str
) -> list[subprocess.Popen[bytes]]:
    """With ``--profile``: py-spy (``pip install py-spy``) samples every process of the
    layout during the load, only the thread holding the interpreter lock, so the samples
    show where CPU goes (collapsed stacks, one file a process)."""
    if folder is None:
        return []
    import psutil

    folder.mkdir(parents=True, exist_ok=True)
    spies = []
    for proc in procs:
        parent = psutil.Process(proc.pid)
        for p in [parent, *parent.children(recursive=True)]:
            role = "dialer" if "worker" in p.cmdline() else "api"
            out = folder / f"{tag}-{role}-{p.pid}.txt"
            spies.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(p.pid),
                        "--duration",
                        str(int(seconds)),
                        "--format",
                        "raw",
                        "--rate",
                        "100",
                        "--gil",
                        "--output",
                        str(out),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return spies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


def scenario(
    engine: str, layout: str, folder: Path, seconds: float, idle: float, spy: Path | None = None
) -> dict[str, float]:
    url = database(engine, folder)
    procs: list[subprocess.Popen[bytes]] = []
    store: Store | None = None
    try:
        caller, task_id = setup(url, 100_000)
        port = free_port()
        caller.base = f"http://127.0.0.1:{port}"
        log = folder / f"{engine}-{layout}.log"
        if layout == "serve":
            procs.append(start(["serve", "--port", str(port)], url, log))
        else:
            procs.append(start(["serve", "--no-worker", "--port", str(port)], url, log))
            procs.append(start(["worker"], url, log, OUTDIAL_WORKER_ID="bench-apart"))
        for _ in range(600):
            try:
                httpx.get(f"{caller.base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        store = Store.open(url)
        # Let the dialer fill its lines before the idle pace is taken.
        deadline = time.perf_counter() + 60
        while calls_so_far(store) < LINES and time.perf_counter() < deadline:
            time.sleep(0.2)
        idle_t0, idle_cpu0 = time.perf_counter(), cpu_seconds(procs)
        idle_cps = pace(store, idle)
        idle_cpu = {
            k: (v - idle_cpu0.get(k, 0.0)) / (time.perf_counter() - idle_t0)
            for k, v in cpu_seconds(procs).items()
        }
        before, t0, cpu0 = calls_so_far(store), time.perf_counter(), cpu_seconds(procs)
        spies = profile(procs, seconds, spy, f"{engine}-{layout}")
        by_kind, submits = asyncio.run(load(caller, task_id, seconds))
        for s in spies:
            s.wait()
        reads = [t for times in by_kind.values() for t in times]
        spent = time.perf_counter() - t0
        loaded_cps = (calls_so_far(store) - before) / spent
        cpu = {k: (v - cpu0.get(k, 0.0)) / spent for k, v in cpu_seconds(procs).items()}
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"a process of the {layout} layout exited; see {log}")
        return {
            "idle": idle_cps,
            "loaded": loaded_cps,
            "share": loaded_cps / idle_cps if idle_cps else float("nan"),
            "read_p99": p99(reads),
            "read_p50": statistics.median(reads),
            "reads": len(reads),
            **{f"p99_{kind}": p99(times) for kind, times in by_kind.items()},
            "submit_p99": p99(submits),
            "submits": len(submits),
            **{f"cpu_{k}": v for k, v in cpu.items()},
            "idle_cpu_dialer": idle_cpu.get("dialer", 0.0),
        }
    finally:
        for proc in reversed(procs):
            stop(proc)
        if store is not None:
            store.close()
        drop(url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--layout", choices=["serve", "apart", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--idle", type=float, default=20)
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy profiles of each process under load"
    )
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    layouts = ["serve", "apart"] if args.layout == "both" else [args.layout]
    folder = Path(tempfile.mkdtemp(prefix="outdial-load-bench-"))
    print(
        f"100,000-callee task, simulated carrier x{SPEED}, {LINES} lines; load for "
        f"{args.seconds:.0f} s: {READERS} readers, {SUBMITTERS} submitters of 100-callee tasks/s"
    )
    ok = True
    for engine in engines:
        for layout in layouts:
            r = scenario(engine, layout, folder, args.seconds, args.idle, args.profile)
            good = (
                r["share"] >= TARGET_SHARE
                and r["read_p99"] < TARGET_READ_P99
                and r["submit_p99"] < TARGET_SUBMIT_P99
            )
            ok &= good
            print(
                f"{engine:10s} {layout:5s} dialer idle {r['idle']:.1f} calls/s, under load "
                f"{r['loaded']:.1f} calls/s = {r['share']:.0%} of idle (target >= "
                f"{TARGET_SHARE:.0%})  reads {r['reads']:.0f}: p50 {r['read_p50'] * 1000:.0f} ms "
                f"p99 {r['read_p99'] * 1000:.0f} ms (target < {TARGET_READ_P99 * 1000:.0f})  "
                f"submits {r['submits']:.0f}: p99 {r['submit_p99'] * 1000:.0f} ms "
                f"(target < {TARGET_SUBMIT_P99 * 1000:.0f})  {'OK' if good else 'MISSED'}"
            )
            kinds = ("detail", "list", "records", "balance")
            print(
                "           read p99 by kind: "
                + ", ".join(f"{k} {r[f'p99_{k}'] * 1000:.0f} ms" for k in kinds if f"p99_{k}" in r)
            )
            print(
                f"           cores used: dialer idle {r['idle_cpu_dialer']:.2f}; under load "
                + ", ".join(f"{k} {r[f'cpu_{k}']:.2f}" for k in ("api", "dialer", "load"))
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

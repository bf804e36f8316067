"""Benchmark: push reports per second delivered to a local receiver from a 200,000-call task,
and after a kill -9 of the delivering process mid-way (no report lost, duplicates counted).

The receiver is a separate process (a minimal keep-alive HTTP/1.1 server on asyncio) that
answers 200 and counts deliveries by ``X-Outdial-Delivery``. The outbox is filled directly
through the store (a submitted task, then one call and one report per callee by INSERT ...
SELECT). The deliverer is a separate process running ``PushDelivery.run`` with its defaults,
as ``outdial worker`` does. Phase 1 times it until nothing is pending; phase 2 resets the outbox,
SIGKILLs the deliverer when the receiver has half the reports, restarts it and checks, from the
receiver's counts and the database, that every report arrived (duplicates are allowed: at
least once). The baseline, in the same run, is the receiver's raw capacity: the same number of
POSTs from a plain client (aiohttp, as the deliverer uses) with the deliverer's concurrency.

    python bench/push_delivery.py [--reports 200000] [--database-url URL]
                                  [--batch N] [--concurrency N]

Use an empty database: the default is a new SQLite file; a PostgreSQL URL is used as given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import httpx
import orjson
from sqlalchemy import delete, func, insert, literal, select, update

from outdial.api.bodies import task_submission
from outdial.client import published_example
from outdial.clock import SystemClock, epoch_ms
from outdial.notify.push import PushDelivery
from outdial.notify.ssrf import PushTargets
from outdial.service.accounts import AccountService
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store import schema as s
from outdial.store.repo import Store
from outdial.testing import make_account

ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS = 1000
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

# --- the receiver (its own process) --------------------------------------------------------


async def serve_receiver() -> None:
    """Answer every POST 200 and count it by delivery id; ``GET /count`` answers how many
    arrived, ``GET /stats`` the counts and ids, ``POST /reset`` clears them. Prints the
    port, then serves until killed."""
    counts: dict[int, int] = {}
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ", 2)[1]
                length, delivery = 0, None
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"x-outdial-delivery":
                        delivery = int(value)
                if length:
                    await reader.readexactly(length)
                if path == b"/count":
                    body = b"%d" % requests
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                elif path == b"/stats":
                    body = orjson.dumps(
                        {"requests": requests, "ids": counts}, option=orjson.OPT_NON_STR_KEYS
                    )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                elif path == b"/reset":
                    counts.clear()
                    requests = 0
                    writer.write(OK_RESPONSE)
                else:
                    requests += 1
                    if delivery is not None:
                        counts[delivery] = counts.get(delivery, 0) + 1
                    writer.write(OK_RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# --- the deliverer (its own process) -------------------------------------------------------


async def run_deliverer(url: str, batch: int | None, concurrency: int | None) -> None:
    """``PushDelivery.run`` over ``url`` until SIGTERM, with its defaults unless overridden."""
    store = Store.open(url, migrate=False)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    options: dict[str, Any] = {}
    if batch is not None:
        options["batch"] = batch
    if concurrency is not None:
        options["concurrency"] = concurrency
    try:
        async with PushDelivery(store, SystemClock(), **options) as delivery:
            await delivery.run(stop, idle_seconds=0.2)
    finally:
        store.close()


# --- the benchmark -------------------------------------------------------------------------


def fill(store: Store, n: int, push_url: str) -> int:
    """An account, an app pushing to ``push_url``, a task of ``n`` callees, and one finished
    call and one pending report per callee; returns the account id."""
    clock = SystemClock()
    acc = make_account(store, clock, name="push bench", balance="100000")
    app_id = str(
        AccountService(store, clock, push_targets=PushTargets(allow_private=True)).create_app(
            acc.account_id, push_url
        )["appId"]
    )
    source = (ROOT / "examples/templates/simple-notice.yaml").read_text()
    script = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
    script_id = int(script.import_script(acc.account_id, source)["scriptId"])
    body = published_example(app_id, script_id)
    body["taskName"] = "push bench"
    body["numberInfoList"] = [{"calleeNumber": f"8613{i:09d}", "text1": "x"} for i in range(n)]
    task_id = SubmitService(store, clock, SubmitPolicy()).submit(
        acc.account_id, task_submission(orjson.dumps(body))
    )
    now = epoch_ms(clock.now())
    payload = orjson.dumps(_sample_payload(task_id, script_id, now)).decode()
    c, k = s.calls, s.callees
    call_columns = {
        "account_id": literal(acc.account_id),
        "task_id": k.c.task_id,
        "callee_id": k.c.id,
        "attempt": literal(1),
        "callee": k.c.number,
        "display_num": literal("1008122211"),
        "script_id": literal(script_id),
        "outcome": literal("connected"),
        "submit_time": literal(now),
        "call_time": literal(now),
        "call_duration": literal(30),
        "ring_duration": literal(5),
        "charged_duration": literal(60),
        "cost": literal(0),
        "termination_code": literal(200),
        "termination_reason": literal("normal"),
        "sip_code": literal(200),
        "created_at": literal(now),
    }
    with store.write() as tx:
        tx.conn.execute(
            insert(c).from_select(
                list(call_columns),
                select(*call_columns.values()).where(k.c.task_id == task_id).order_by(k.c.id),
            )
        )
        tx.conn.execute(
            insert(s.push_outbox).from_select(
                ["account_id", "call_id", "url", "payload", "next_at", "created_at"],
                select(
                    c.c.account_id,
                    c.c.id,
                    literal(push_url),
                    literal(payload),
                    c.c.created_at,
                    c.c.created_at,
                )
                .where(c.c.task_id == task_id)
                .order_by(c.c.id),
            )
        )
        tx.update_task(task_id, status=2)
    return acc.account_id


def _sample_payload(task_id: int, script_id: int, now: int) -> dict[str, Any]:
    # The shape and size of a connected call's report (see domain/report.py).
    return {
        "voiceId": "1", "type": 1, "taskId": task_id, "callee": "8613000000000",
        "displayNum": "1008122211", "submitTime": now, "callTime": now, "ringingTime": now,
        "answerTime": now, "hangupTime": now + 35_000, "callDuration": 30, "ringDuration": 5,
        "chargedDuration": 60, "billPeriod": "60+60", "rate": "0.0300", "cost": "0.0300",
        "currency": "USD", "terminationCode": "200", "terminationReason": "normal",
        "sipCode": "200", "feedbackValue": "-1", "calledInfo": None, "recordingFileId": None,
        "scriptId": script_id, "intent": "confirm", "grade": "A",
        "transcript": [{"role": "bot", "text": "Hello, this is a reminder."},
                       {"role": "callee", "text": "Yes, thank you."}],
        "hangupSide": "callee", "path": ["greet", "end"], "smsText": None, "attempt": 1,
        "outcome": "connected",
    }  # fmt: skip


def count(store: Store, account_id: int, status: int) -> int:
    o = s.push_outbox
    with store.read() as tx:
        stmt = select(func.count()).where(o.c.account_id == account_id, o.c.status == status)
        return int(tx.conn.execute(stmt).scalar_one())


def any_pending(store: Store) -> bool:
    """Whether a report is still pending (the bench's database holds only its own). Polled
    while the deliverer runs, so it reads one row of the due index: counting the account's
    reports read all 200,000 at each poll, and took CPU from the deliverer it timed."""
    o = s.push_outbox
    with store.read() as tx:
        stmt = select(o.c.id).where(o.c.status == s.PUSH_PENDING).limit(1)
        return tx.conn.execute(stmt).first() is not None


def received(base: str) -> int:
    return int(httpx.get(f"{base}/count", timeout=60).text)


def reset_outbox(store: Store, account_id: int) -> None:
    o = s.push_outbox
    with store.write() as tx:
        ids = select(o.c.id).where(o.c.account_id == account_id).scalar_subquery()
        tx.conn.execute(delete(s.push_attempts).where(s.push_attempts.c.outbox_id.in_(ids)))
        tx.conn.execute(
            update(o)
            .where(o.c.account_id == account_id)
            .values(
                status=s.PUSH_PENDING,
                attempts=0,
                next_at=epoch_ms(SystemClock().now()),
                delivered_at=None,
            )
        )


def outbox_ids(store: Store, account_id: int) -> set[int]:
    o = s.push_outbox
    with store.read() as tx:
        return {
            int(i)
            for i in tx.conn.execute(select(o.c.id).where(o.c.account_id == account_id)).scalars()
        }


def start_deliverer(url: str, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--role", "deliverer", "--database-url", url]
    if args.batch is not None:
        command += ["--batch", str(args.batch)]
    if args.concurrency is not None:
        command += ["--concurrency", str(args.concurrency)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out)


def stats(base: str) -> tuple[int, dict[int, int]]:
    answer = httpx.get(f"{base}/stats", timeout=60).json()
    return int(answer["requests"]), {int(k): int(v) for k, v in answer["ids"].items()}


def wait_until(predicate: Any, proc: subprocess.Popen[bytes], what: str) -> None:
    while not predicate():
        if proc.poll() is not None:
            raise SystemExit(f"the deliverer exited ({proc.returncode}) before {what}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def baseline(base: str, n: int, concurrency: int, payload: bytes) -> float:
    """Reports per second of ``n`` plain POSTs with ``concurrency`` in flight, from the HTTP
    client the deliverer uses (aiohttp) with no database, signing or bookkeeping."""
    counter = itertools.count(1)
    headers = {"Content-Type": "application/json;charset=UTF-8", "X-Outdial-Attempt": "1"}
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:

        async def worker() -> None:
            for i in counter:
                if i > n:
                    return
                async with http.post(
                    f"{base}/push",
                    data=payload,
                    headers={**headers, "X-Outdial-Delivery": str(i)},
                ) as resp:
                    await resp.read()
                    resp.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t0)


def bench(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="outdial-push-bench-"))
    url = args.database_url or f"sqlite:///{folder / 'push.db'}"
    engine = url.split(":", 1)[0].split("+", 1)[0]
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--role", "receiver"], stdout=subprocess.PIPE
    )
    deliverers: list[subprocess.Popen[bytes]] = []
    try:
        assert receiver.stdout is not None
        base = f"http://127.0.0.1:{int(receiver.stdout.readline())}"
        store = Store.open(url)
        t0 = time.perf_counter()
        account_id = fill(store, args.reports, f"{base}/push")
        ids = outbox_ids(store, account_id)
        n = len(ids)
        print(f"{engine}: {n} reports queued in {time.perf_counter() - t0:.1f} s ({url})")
        defaults = PushDelivery.__init__.__kwdefaults__ or {}
        concurrency = args.concurrency or int(defaults["concurrency"])
        batch = args.batch or int(defaults["batch"])
        log = folder / "deliverer.log"

        # Baseline: the receiver's raw capacity from a plain client.
        with store.read() as tx:
            payload = tx.conn.execute(select(s.push_outbox.c.payload).limit(1)).scalar_one()
        raw = asyncio.run(baseline(base, n, concurrency, payload.encode()))
        httpx.post(f"{base}/reset", timeout=10)

        # Phase 1: one deliverer from a full outbox to an empty one.
        t0 = time.perf_counter()
        deliverers.append(start_deliverer(url, args, log))
        wait_until(lambda: not any_pending(store), deliverers[-1], "the end")
        seconds = time.perf_counter() - t0
        stop(deliverers[-1])
        rps = n / seconds
        requests, seen = stats(base)
        lost1 = len(ids - seen.keys())
        dup1 = requests - len(seen)

        print(
            f"{engine:10s} phase 1: {n} reports in {seconds:.1f} s = {rps:.0f} reports/s "
            f"(target >= {TARGET_RPS}), lost {lost1}, duplicates {dup1}  | raw receiver "
            f"capacity (plain aiohttp, {concurrency} in flight): {raw:.0f} POSTs/s -> "
            f"{rps / raw:.2f}x of it  [batch {batch}, concurrency {concurrency}]",
            flush=True,
        )
        if args.skip_kill:
            store.close()
            return 0 if rps >= TARGET_RPS and lost1 == 0 else 1

        # Phase 2: kill -9 mid-way, restart, until nothing is pending.
        reset_outbox(store, account_id)
        httpx.post(f"{base}/reset", timeout=10)
        t0 = time.perf_counter()
        deliverers.append(start_deliverer(url, args, log))
        wait_until(lambda: received(base) >= n // 2, deliverers[-1], "half")
        deliverers[-1].send_signal(signal.SIGKILL)
        deliverers[-1].wait()
        killed_at = count(store, account_id, s.PUSH_DELIVERED)
        lease = PushDelivery(
            store, SystemClock(), batch=batch, concurrency=concurrency
        ).lease_seconds
        received_at_kill = stats(base)[0]
        deliverers.append(start_deliverer(url, args, log))
        wait_until(lambda: not any_pending(store), deliverers[-1], "the end")
        seconds2 = time.perf_counter() - t0
        stop(deliverers[-1])
        requests2, seen2 = stats(base)
        lost2 = len(ids - seen2.keys())
        dup2 = requests2 - len(seen2)
        gave_up = count(store, account_id, s.PUSH_GAVE_UP)
        with store.read() as tx:
            logged = int(
                tx.conn.execute(select(func.count()).select_from(s.push_attempts)).scalar_one()
            )
        store.close()

        good = rps >= TARGET_RPS and lost1 == lost2 == gave_up == 0
        print(
            f"{engine:10s} phase 2: kill -9 at {killed_at} delivered ({received_at_kill} "
            f"received), restarted; all done in {seconds2:.1f} s (includes the killed "
            f"deliverer's lease of {lease:.0f} s); lost {lost2}, duplicates {dup2}, "
            f"given up {gave_up}, tries logged {logged}  {'OK' if good else 'MISSED'}"
        )
        return 0 if good else 1
    finally:
        for proc in deliverers:
            stop(proc)
        receiver.kill()
        receiver.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200_000)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--batch", type=int, default=None, help="default: PushDelivery's")
    parser.add_argument("--concurrency", type=int, default=None, help="default: PushDelivery's")
    parser.add_argument("--skip-kill", action="store_true", help="phase 1 only (for tuning)")
    parser.add_argument("--role", choices=["bench", "receiver", "deliverer"], default="bench")
    args = parser.parse_args()
    if args.role == "receiver":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_receiver())
        return 0
    if args.role == "deliverer":
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(run_deliverer(args.database_url, args.batch, args.concurrency))
        return 0
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())

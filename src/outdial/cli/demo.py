"""``outdial demo``: the whole system end to end on its embedded defaults, in one command.

Both modes start the API server and the console on a loopback port over SQLite, with a
dialer on the simulated carrier running 60 times faster than real time, create an account and
import the example template, and send LAAFFIC's published send/ai example through the signed
SDK over HTTP (it waits for its 18:28-19:28 window), then a second task that calls at once,
followed to 100%.

- ``--once`` (tests, CI): a throwaway database; prints what it saw as one JSON object and exits.
- Otherwise (``make demo``): a kept database in ``./outdial-demo/``; it also starts a long
  campaign that keeps dialing and a console user with a password made at each start, prints
  where to sign in, and serves until SIGINT (Ctrl-C) or SIGTERM, then stops gracefully (the
  dialer drains) and exits 0. Run again, it finds what it made before and adds only what is
  missing (a new live campaign once the last one has finished).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from outdial.api.app import create_app
from outdial.client import LaafficClient, published_example
from outdial.clock import Clock, SystemClock
from outdial.config import Settings
from outdial.console.app import install as install_console
from outdial.dialer.runner import WorkerThread
from outdial.dialer.timeline import shared_clock
from outdial.domain.codes import UNFINISHED_STATUSES
from outdial.service.accounts import NewAccount
from outdial.service.console import TallyKeeper
from outdial.service.container import Services
from outdial.service.operators import ADMIN
from outdial.service.scripts import ScriptService
from outdial.store.operators import operator_named
from outdial.store.records import TaskFilter
from outdial.store.repo import Store

EXAMPLE_TEMPLATE = "data/simple-notice.yaml"
DEMO_SPEED = 60.0
DEMO_ACCOUNT = "Demo"
DEMO_USER = "demo"
NOW_TASK = "demo: call now"
LIVE_TASK = "demo: live"
# LAAFFIC's maxCalls is the talk limit in seconds after answer (not a number of lines): the
# live campaign lets each call run the template to its end, like the others.
LIVE_CALLEES = 20_000
LIVE_MAX_TALK = 60
DEMO_NUMBERS = [
    "14155550101", "14155550102", "14155550103", "14155550104", "447700900123",
    "447700900124", "639171234567", "639171234568", "919812345678", "919812345679",
    "8613242926516", "8613242926517", "8613242926518", "8613242926519", "8613242926520",
]  # fmt: skip


class DemoUnavailable(Exception):
    """The demo cannot start (its port is taken)."""


def _listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket (port 0: one the system picks), held so nothing can take it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def demo_settings(settings: Settings, url: str, folder: Path) -> Settings:
    """The demo's settings: the simulated carrier, 60x unless OUTDIAL_SIM_SPEED says."""
    return settings.model_copy(
        update={
            "database_url": url,
            "carrier": "sim",
            "recordings_dir": str(folder / "rec"),
            "sim_speed": settings.sim_speed if settings.sim_speed != 1.0 else DEMO_SPEED,
        }
    )


@dataclass
class _System:
    """The API (with the console) served on a thread and a dialer on another."""

    store: Store
    clock: Clock
    base: str
    server: uvicorn.Server
    thread: threading.Thread
    worker: WorkerThread
    keeper: TallyKeeper

    def stop(self) -> None:
        # The dialer first: it stops claiming, lets calls in flight finish for the drain
        # time and writes them, while the API still answers.
        self.worker.stop()
        self.keeper.stop()
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def _start(settings: Settings, store: Store, sock: socket.socket) -> _System:
    # The API, the dialer and this command share the database's simulated timeline.
    clock = shared_clock(settings, store)
    host, port = sock.getsockname()[:2]
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    shared = Services.build(settings, store, clock)
    api = create_app(settings, store, clock, wall_clock=SystemClock(), services=shared)
    install_console(api, settings, store, clock, services=shared)
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    worker = WorkerThread(settings, store)
    worker.start()
    keeper = TallyKeeper(shared.console, settings.console_tally_seconds)
    keeper.start()
    system = _System(store, clock, base, server, thread, worker, keeper)
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            system.stop()
            raise RuntimeError("the demo server did not start")
        time.sleep(0.02)
    return system


def _scripts(settings: Settings, store: Store, clock: Clock) -> ScriptService:
    return Services.build(settings, store, clock).scripts


def _new_account(
    settings: Settings, store: Store, clock: Clock, balance: str = "100"
) -> dict[str, Any]:
    return Services.build(settings, store, clock).accounts.create_account(
        NewAccount(
            name=DEMO_ACCOUNT,
            timezone=settings.default_timezone,
            lines=10,
            max_tasks=20,
            balance=balance,
        )
    )


def _template() -> str:
    return resources.files("outdial").joinpath(EXAMPLE_TEMPLATE).read_text("utf-8")


def run_demo(settings: Settings, database_url: str | None) -> dict[str, Any]:
    """``outdial demo --once``: run the demo on a throwaway database, return what it saw."""
    folder = Path(tempfile.mkdtemp(prefix="outdial-demo-"))
    url = database_url or f"sqlite:///{folder / 'demo.db'}"
    settings = demo_settings(settings, url, folder)
    system = _start(settings, Store.open(url), _listen())
    try:
        acc = _new_account(settings, system.store, system.clock)
        script = _scripts(settings, system.store, system.clock).import_script(
            acc["accountId"], _template()
        )
        with LaafficClient(system.base, acc["apiKey"], acc["apiSecret"]) as client:
            example = published_example(acc["appId"], script["scriptId"])
            answer = client.request("POST", "/v3/voice/group/call/send/ai", example)
            now_task = _send_now(client, acc["appId"], script["scriptId"], recording=0)
            _follow(client, now_task)
            page = client.query_tasks()
            calls = client.request(
                "POST",
                "/v3/voice/recordGroupQuery",
                {
                    "current": 1,
                    "size": 100,
                    "params": {
                        "strTime": "2000-01-01T00:00:00+00:00",
                        "endTime": "2000-01-31T00:00:00+00:00",
                    },
                },
            )
            records = _calls_of(client, now_task)
        return {
            "server": system.base,
            "database": url,
            "account": {"accountId": acc["accountId"], "appId": acc["appId"]},
            "scriptId": script["scriptId"],
            "sendAi": answer,
            "taskList": [t.raw for t in page.records],
            "calls": records,
            "recordQueryChecked": calls["status"] == "0",
        }
    finally:
        system.stop()


def _send_now(client: LaafficClient, app_id: str, script_id: int, *, recording: int) -> int:
    return client.send_ai(
        app_id=app_id,
        task_name=NOW_TASK,
        script_id=script_id,
        max_calls=60,
        enable_recording=recording,
        numbers=[{"calleeNumber": n, "text1": "Alex"} for n in DEMO_NUMBERS],
    )


# --- the demo left running ---------------------------------------------------------------


def _demo_account(settings: Settings, store: Store, clock: Clock) -> dict[str, Any]:
    """The account named Demo with its first app and enabled key, made when missing."""
    with store.read() as tx:
        _total, rows = tx.account_rows(0, 10_000)
        found = next((r for r in rows if r["name"] == DEMO_ACCOUNT), None)
        if found is not None:
            apps = tx.apps_of(int(found["id"]))
            keys = [k for k in tx.keys_of(int(found["id"])) if not k.disabled]
            if apps and keys:
                return {
                    "accountId": int(found["id"]),
                    "appId": apps[0].app_id,
                    "apiKey": keys[0].api_key,
                    "apiSecret": keys[0].api_secret,
                }
    # Enough for several live campaigns (about 0.008 a call).
    return _new_account(settings, store, clock, balance="1000")


def _demo_script(settings: Settings, store: Store, clock: Clock, account_id: int) -> int:
    source = _template()
    with store.read() as tx:
        for script in tx.scripts_of(account_id):
            if script.source == source:
                return script.id
    made = _scripts(settings, store, clock).import_script(account_id, source)
    return int(made["scriptId"])


def _named(store: Store, account_id: int, prefix: str) -> list[tuple[str, int]]:
    """(name, status) of the account's tasks whose name starts with ``prefix``."""
    with store.read() as tx:
        _total, found = tx.tasks(TaskFilter(account_id=account_id, search=prefix), 0, 1000)
    return [(t.task_name, int(t.status)) for t in found]


def _demo_password(given: str | None) -> str:
    # Made at each start and printed once: nothing to document, nothing reused across runs.
    return given or secrets.token_urlsafe(12)


def _demo_user(services: Services, password: str) -> None:
    users = services.console_users
    with services.store.read() as tx:
        exists = operator_named(tx.conn, DEMO_USER) is not None
    if exists:
        users.set_password(DEMO_USER, password)
    else:
        users.add(DEMO_USER, password, ADMIN, None)


def prepare(system: _System, settings: Settings, password: str) -> dict[str, Any]:
    """Make (once) the demo account, template, the example, a finished and a live campaign and
    the console user (its password set to ``password``); return what to print."""
    store, clock = system.store, system.clock
    acc = _demo_account(settings, store, clock)
    account_id = int(acc["accountId"])
    script_id = _demo_script(settings, store, clock, account_id)
    with LaafficClient(system.base, acc["apiKey"], acc["apiSecret"]) as client:
        example = published_example(acc["appId"], script_id)
        if not _named(store, account_id, example["taskName"]):
            client.request("POST", "/v3/voice/group/call/send/ai", example)
        if not _named(store, account_id, NOW_TASK):
            _follow(client, _send_now(client, acc["appId"], script_id, recording=1))
        live = _named(store, account_id, LIVE_TASK)
        unfinished = {int(s) for s in UNFINISHED_STATUSES}
        if not any(status in unfinished for _name, status in live):
            client.send_ai(
                app_id=acc["appId"],
                task_name=f"{LIVE_TASK} {len(live) + 1}",
                script_id=script_id,
                max_calls=LIVE_MAX_TALK,
                numbers=[
                    {"calleeNumber": f"141555{n:05d}", "text1": "Sam"} for n in range(LIVE_CALLEES)
                ],
            )
    _demo_user(Services.build(settings, store, clock), password)
    return {
        "console": f"{system.base}/console/",
        "username": DEMO_USER,
        "password": password,
        "api": system.base,
        "docs": f"{system.base}/docs",
        "account": {"accountId": account_id, "appId": acc["appId"], "apiKey": acc["apiKey"]},
        "scriptId": script_id,
        "database": settings.database_url,
        "pid": os.getpid(),
    }


def serve_demo(
    settings: Settings,
    open_store: Any,
    *,
    database_url: str | None,
    folder: Path,
    host: str,
    port: int,
    password: str | None,
) -> None:
    """``outdial demo`` (``make demo``): prepare the demo, print where to sign in, serve until
    SIGINT or SIGTERM, then stop gracefully. ``open_store(settings)`` opens the database the
    way every command does (secrets sealed when a key is configured)."""
    folder.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{folder / 'demo.db'}"
    settings = demo_settings(settings, url, folder)
    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    # Installed before anything starts, so a signal during the setup stops it cleanly too.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        sock = _listen(host, port)
    except OSError as exc:
        raise DemoUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror} (try --port 0)"
        ) from exc
    system = _start(settings, open_store(settings), sock)
    try:
        shown = prepare(system, settings, _demo_password(password))
        print(json.dumps(shown, ensure_ascii=False), flush=True)
        _banner(shown)
        stopping.wait()
        Console(stderr=True).print("stopping: the dialer finishes its calls in flight ...")
    finally:
        system.stop()


def _banner(shown: dict[str, Any]) -> None:
    out = Console(stderr=True, highlight=False)
    out.print()
    out.print("[bold]outdial demo is running[/] (simulated carrier, database kept)")
    out.print(f"  Console   [bold]{shown['console']}[/]")
    out.print(f"  Username  [bold]{shown['username']}[/]")
    out.print(f"  Password  [bold]{shown['password']}[/]   (new at each start of the demo)")
    out.print(f"  API docs  {shown['docs']}   (account {shown['account']['accountId']})")
    out.print(f"  Database  {shown['database']}")
    out.print(f"Stop with Ctrl-C, or: kill -TERM {shown['pid']}")


def _follow(client: LaafficClient, task_id: int) -> None:
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]calling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
    ) as bar:
        handle = bar.add_task("calls", total=len(DEMO_NUMBERS), detail="")
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            task = client.task_detail(task_id)
            bar.update(
                handle,
                completed=task.success + task.fail,
                detail=f"connected {task.success}  failed {task.fail}  status {task.status}",
            )
            if task.status == 2:
                return
            time.sleep(0.2)
    raise RuntimeError("the demo task did not finish within 50 seconds")


def _calls_of(client: LaafficClient, task_id: int) -> list[dict[str, Any]]:
    detail = client.task_detail(task_id).raw
    start = detail["createdTime"].replace(" ", "T") + "+00:00"
    out = client.request(
        "POST",
        "/v3/voice/recordGroupQuery",
        {
            "current": 1,
            "size": 100,
            "params": {
                "strTime": start[:10] + "T00:00:00+00:00",
                "endTime": start[:10] + "T23:59:59+00:00",
                "taskId": task_id,
            },
        },
    )
    return [
        {
            k: r[k]
            for k in (
                "voiceId",
                "callee",
                "outcome",
                "terminationCode",
                "ringDuration",
                "callDuration",
                "cost",
            )
        }
        for r in out["data"]["records"]
    ]

"""``outdial demo``: the whole system end to end on its embedded defaults, in one command.

It starts the API server on a free loopback port over a throwaway SQLite database (or the one
given), with a dialer on the simulated carrier running 60 times faster than real time; creates
an account and imports the example template; sends LAAFFIC's published send/ai example through
the signed SDK over HTTP (it waits for its 18:28-19:28 window), then a second task that calls
at once, follows it to 100% and prints its calls.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from outdial.api.app import create_app
from outdial.client import LaafficClient, published_example
from outdial.clock import SystemClock
from outdial.config import Settings
from outdial.dialer.runner import WorkerThread
from outdial.dialer.timeline import shared_clock
from outdial.service.accounts import AccountService, NewAccount
from outdial.service.scripts import ScriptService
from outdial.speech.languages import tts_languages
from outdial.speech.registry import asr_languages
from outdial.store.repo import Store

EXAMPLE_TEMPLATE = "data/simple-notice.yaml"
DEMO_SPEED = 60.0
DEMO_NUMBERS = [
    "14155550101", "14155550102", "14155550103", "14155550104", "447700900123",
    "447700900124", "639171234567", "639171234568", "919812345678", "919812345679",
    "8613242926516", "8613242926517", "8613242926518", "8613242926519", "8613242926520",
]  # fmt: skip


def _listen() -> socket.socket:
    """A listening loopback socket on a port the system picks (held, so nothing can take it)."""
    return socket.create_server(("127.0.0.1", 0))


def run_demo(settings: Settings, database_url: str | None) -> dict[str, Any]:
    """Run the demo and return what it saw."""
    folder = Path(tempfile.mkdtemp(prefix="outdial-demo-"))
    url = database_url or f"sqlite:///{folder / 'demo.db'}"
    settings = settings.model_copy(
        update={
            "database_url": url,
            "carrier": "sim",
            "recordings_dir": str(folder / "rec"),
            "sim_speed": settings.sim_speed if settings.sim_speed != 1.0 else DEMO_SPEED,
        }
    )
    store = Store.open(url)
    # The API, the dialer and this command share the database's simulated timeline.
    clock = shared_clock(settings, store)
    sock = _listen()
    port = int(sock.getsockname()[1])
    api = create_app(settings, store, clock, wall_clock=SystemClock())
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    worker = WorkerThread(settings, store)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        acc = AccountService(store, clock).create_account(
            NewAccount(
                name="Demo",
                timezone=settings.default_timezone,
                lines=10,
                max_tasks=20,
                balance="100",
            )
        )
        source = resources.files("outdial").joinpath(EXAMPLE_TEMPLATE).read_text("utf-8")
        script = ScriptService(
            store,
            clock,
            tts_languages=tts_languages(settings.tts_engine, settings.tts_languages),
            long_chars=settings.long_tts_chars,
            asr_languages=asr_languages(settings.asr_engine, settings.asr_model),
            asr_engine=settings.asr_engine,
        ).import_script(acc["accountId"], source)
        base = f"http://127.0.0.1:{port}"
        with LaafficClient(base, acc["apiKey"], acc["apiSecret"]) as client:
            example = published_example(acc["appId"], script["scriptId"])
            answer = client.request("POST", "/v3/voice/group/call/send/ai", example)
            now_task = client.send_ai(
                app_id=acc["appId"],
                task_name="demo: call now",
                script_id=script["scriptId"],
                max_calls=60,
                numbers=[{"calleeNumber": n, "text1": "Alex"} for n in DEMO_NUMBERS],
            )
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
            "server": base,
            "database": url,
            "account": {"accountId": acc["accountId"], "appId": acc["appId"]},
            "scriptId": script["scriptId"],
            "sendAi": answer,
            "taskList": [t.raw for t in page.records],
            "calls": records,
            "recordQueryChecked": calls["status"] == "0",
        }
    finally:
        worker.stop()
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


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

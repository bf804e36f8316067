"""``outdial demo``: the whole system end to end on its embedded defaults, in one command.

It starts the API server on a free loopback port over a throwaway SQLite database (or the one
given), creates an account, imports the example template, sends LAAFFIC's published send/ai
example through the signed SDK over HTTP, and reads the task back from the task list.
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

from outdial.api.app import create_app
from outdial.client import LaafficClient, published_example
from outdial.clock import SystemClock
from outdial.config import Settings
from outdial.service.accounts import AccountService, NewAccount
from outdial.service.scripts import ScriptService
from outdial.store.repo import Store

EXAMPLE_TEMPLATE = "data/simple-notice.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(settings: Settings, database_url: str | None) -> dict[str, Any]:
    """Run the demo and return what it saw."""
    url = database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='outdial-demo-')) / 'demo.db'}"
    store = Store.open(url)
    clock = SystemClock()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store, clock), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
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
            tts_languages=list(settings.tts_languages),
            long_chars=settings.long_tts_chars,
        ).import_script(acc["accountId"], source)
        base = f"http://127.0.0.1:{port}"
        with LaafficClient(base, acc["apiKey"], acc["apiSecret"]) as client:
            body = published_example(acc["appId"], script["scriptId"])
            answer = client.request("POST", "/v3/voice/group/call/send/ai", body)
            page = client.query_tasks()
        return {
            "server": base,
            "database": url,
            "account": {"accountId": acc["accountId"], "appId": acc["appId"]},
            "scriptId": script["scriptId"],
            "sendAi": answer,
            "taskList": [t.raw for t in page.records],
        }
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()

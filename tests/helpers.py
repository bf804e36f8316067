"""Small helpers shared by the API tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from outdial.client import published_example
from outdial.clock import Clock
from outdial.service.scripts import ScriptService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import TestAccount

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def wait_until_serving(log: Path, timeout: float = 30.0) -> str:
    """Wait for an ``outdial serve --port 0`` writing to ``log`` to print its first line (the
    base URL of the port it bound) and answer /healthz; return that base URL. Fail with the log
    if it does not. The server binds its own port, so no other process can race for it."""
    import json
    import time

    import httpx
    import pytest

    deadline = time.monotonic() + timeout
    base: str | None = None
    while time.monotonic() < deadline:
        if base is None:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith('{"serving"'):
                    base = str(json.loads(line)["serving"])
                    break
        if base is not None:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    pytest.fail("the server did not start: " + log.read_text(errors="replace"))


SEND = "/v3/voice/group/call/send/ai"


def import_script(store: Store, clock: Clock, account: TestAccount, source: str) -> int:
    service = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
    return int(service.import_script(account.account_id, source)["scriptId"])


def import_example(store: Store, clock: Clock, account: TestAccount, name: str) -> int:
    text = (EXAMPLES / "templates" / name).read_text()
    return import_script(store, clock, account, text)


def send_body(account: TestAccount, script_id: int, **fields: Any) -> dict[str, Any]:
    """LAAFFIC's published send/ai example with this account's appId and scriptId."""
    body = published_example(account.app_id, script_id)
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def post(
    api: TestClient,
    account: TestAccount,
    clock: Clock,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    **headers: str,
) -> dict[str, Any]:
    content = raw if raw is not None else orjson.dumps(body)
    resp = api.post(path, content=content, headers=account.headers(clock, **headers))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json;charset=UTF-8"
    data: dict[str, Any] = resp.json()
    return data


def get(api: TestClient, account: TestAccount, clock: Clock, path: str) -> dict[str, Any]:
    resp = api.get(path, headers=account.headers(clock))
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def counts(store: Store, account_id: int) -> tuple[int, int]:
    """(tasks, callees) of an account."""
    with store.read() as tx:
        tasks = tx.conn.execute(
            select(func.count()).where(schema.tasks.c.account_id == account_id)
        ).scalar_one()
        callees = tx.conn.execute(
            select(func.count())
            .select_from(
                schema.callees.join(schema.tasks, schema.tasks.c.id == schema.callees.c.task_id)
            )
            .where(schema.tasks.c.account_id == account_id)
        ).scalar_one()
    return int(tasks), int(callees)

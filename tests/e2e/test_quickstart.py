"""The README quick start, as a new user runs it: real server process, real CLI, signed SDK."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from outdial.client import LaafficClient, LaafficError, published_example
from tests.helpers import EXAMPLES, wait_until_serving

OUTDIAL = [sys.executable, "-m", "outdial"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    env["OUTDIAL_DATABASE_URL"] = f"sqlite:///{workdir / 'outdial.db'}"
    env["OUTDIAL_LOG_FORMAT"] = "json"
    return env


def _cli(workdir: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [*OUTDIAL, *args],
        cwd=workdir,
        env=_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout)
    return out


@pytest.fixture
def server(workdir: Path) -> Iterator[str]:
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [*OUTDIAL, "serve", "--port", "0"],
        cwd=workdir,
        env=_env(workdir),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield wait_until_serving(workdir / "server.log")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_quick_start_end_to_end(server: str, workdir: Path) -> None:
    acc = _cli(workdir, "account", "create", "--name", "Demo", "--balance", "100")
    script = _cli(
        workdir,
        "script",
        "import",
        "examples/templates/simple-notice.yaml",
        "--account",
        str(acc["accountId"]),
    )
    body = published_example(str(acc["appId"]), int(str(script["scriptId"])))
    with LaafficClient(server, str(acc["apiKey"]), str(acc["apiSecret"])) as client:
        raw = httpx.post(
            f"{server}/v3/voice/group/call/send/ai", json=body, headers=client.headers()
        )
        answer = raw.json()
        assert answer["status"] == "0" and answer["reason"] == "success"
        task_id = answer["data"]
        assert isinstance(task_id, int)
        page = client.query_tasks()
        assert [(t.task_id, t.task_type, t.status) for t in page.records] == [(task_id, 2, 0)]
        assert client.get_balance().balance == "100.0000"
        with pytest.raises(LaafficError) as err:
            client.send_ai(
                app_id=str(acc["appId"]),
                task_name="2024-06-03 10:42:05",
                max_calls=40,
                script_id=int(str(script["scriptId"])),
                numbers=[{"calleeNumber": "8613242926514", "text1": "12"}],
            )
        assert err.value.status == -41
    log = (workdir / "server.log").read_text()
    accepted = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"task accepted"' in line
    ]
    assert [(a["task_id"], a["account_id"], a["callees"]) for a in accepted] == [
        (task_id, acc["accountId"], 2)
    ]
    assert "8613242926514" not in log and str(acc["apiSecret"]) not in log
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{server}/openapi.json").json()
    assert "/v3/voice/group/call/send/ai" in spec["paths"]

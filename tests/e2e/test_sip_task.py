"""A task switched from simulated to real calls by configuration only: the server's dialer
(OUTDIAL_CARRIER=sip) calls SIPp over a trunk added with the CLI, speaks with flite and
records each call like the simulated carrier does."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from outdial.client import LaafficClient
from tests.helpers import wait_until_serving
from tests.integration.sip.sipp import free_port

OUTDIAL = [sys.executable, "-m", "outdial"]
TEMPLATE = """
name: sip notice
language: en
start: notice
nodes:
  notice:
    say: Hello ${text1}. Your parcel arrives tomorrow. Goodbye.
    hangup: true
"""
CALLEES = ["15551230001", "15551230002", "15551230003"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("sipp") is None or shutil.which("flite") is None:
        pytest.skip("sipp or flite is missing (.ci/run installs sip-tester and flite)")
    out = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    out.update(
        OUTDIAL_DATABASE_URL=f"sqlite:///{tmp_path / 'outdial.db'}",
        OUTDIAL_CARRIER="sip",
        OUTDIAL_SIP_PORT="0",
        OUTDIAL_RECORDINGS_DIR=str(tmp_path / "recordings"),
        OUTDIAL_PUSH_ENABLED="false",
        OUTDIAL_SIP_BARGE_IN="false",  # SIPp echoes our audio back (-rtp_echo)
    )
    return out


def cli(env: dict[str, str], cwd: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [*OUTDIAL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    out = subprocess.run(
        ["sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(port),
         "-mp", str(free_port(4)), "-m", str(len(CALLEES)), "-bg", "-nostdin",
         "-timeout", "60s"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    pid = int(re.search(r"PID=\[(\d+)\]", out.stdout + out.stderr).group(1))  # type: ignore[union-attr]
    try:
        yield port
    finally:
        try:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.3)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_task_dials_over_sip(env: dict[str, str], sipp: int, tmp_path: Path) -> None:
    acc = cli(env, tmp_path, "account", "create", "--name", "Sip", "--balance", "100")
    (tmp_path / "notice.yaml").write_text(TEMPLATE)
    script = cli(
        env, tmp_path, "script", "import", "notice.yaml", "--account", str(acc["accountId"])
    )
    cli(env, tmp_path, "trunk", "add", "default", "--host", "127.0.0.1", "--port", str(sipp))
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [*OUTDIAL, "serve", "--port", "0"], cwd=tmp_path, env=env, stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = wait_until_serving(tmp_path / "server.log")
        with LaafficClient(base, str(acc["apiKey"]), str(acc["apiSecret"])) as client:
            task_id = client.send_ai(
                app_id=str(acc["appId"]), task_name="over sip", max_calls=30,
                script_id=int(str(script["scriptId"])), enable_recording=1,
                numbers=[{"calleeNumber": n, "text1": "Ann"} for n in CALLEES],
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                [task] = [t for t in client.query_tasks().records if t.task_id == task_id]
                if task.status == 2:
                    break
                time.sleep(0.5)
            else:
                pytest.fail("the task did not finish: " + (tmp_path / "server.log").read_text())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        log.close()
    calls = subprocess.run(
        [*OUTDIAL, "task", "calls", str(task_id)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in calls.strip().splitlines()]
    assert sorted(r["callee"] for r in rows) == CALLEES
    for row in rows:
        assert row["outcome"] == "connected" and row["terminationCode"] == "200", row
        # The whole prompt was played (about 3 s), then the bot hung up.
        assert int(row["callDuration"]) >= 3 and row["hangupSide"] == "bot", row
    recordings = list((tmp_path / "recordings").glob("*.wav"))
    assert len(recordings) == len(CALLEES)


ASK = """
name: ask
language: en
start: ask
intents:
  confirm: {phrases: ["yes", "i will be there"]}
nodes:
  ask:
    say: Will you come, ${text1}?
    listen: {timeout: 5}
    branches: {confirm: thanks}
    no_input: {retries: 0, then: bye}
    no_match: {retries: 0, then: bye}
  thanks: {say: Thank you. Goodbye., hangup: true}
  bye: {say: Goodbye., hangup: true}
"""


def test_call_test_prints_the_live_transcript(env: dict[str, str], tmp_path: Path) -> None:
    from outdial.speech.g711 import ulaw_encode
    from outdial.speech.loopback import spoken
    from outdial.speech.tts import FliteTts
    from tests.integration.sip import sipp as S

    said = tmp_path / "yes.ulaw"
    said.write_bytes(ulaw_encode(spoken(FliteTts(), "yes I will be there", pad=0.2)))
    body = (
        S.RECV_INVITE + S.TRYING + S.RINGING + S.ok() + S.RECV_ACK + S.pause(2500)
        + S.play(said) + S.RECV_BYE
    )  # fmt: skip
    far = S.Sipp(tmp_path, "calltest", body).start()
    try:
        acc = cli(env, tmp_path, "account", "create", "--name", "Ops")
        (tmp_path / "ask.yaml").write_text(ASK)
        script = cli(
            env, tmp_path, "script", "import", "ask.yaml", "--account", str(acc["accountId"])
        )
        cli(env, tmp_path, "trunk", "add", "lab", "--host", "127.0.0.1", "--port", str(far.port))
        proc = subprocess.run(
            [*OUTDIAL, "call", "test", "15551239999", "--script", str(script["scriptId"]),
             "--account", str(acc["accountId"]), "--trunk", "lab", "--var", "text1=Ann"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        far.wait(10)
        far.stop()
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    turns, result = lines[:-1], lines[-1]["result"]
    assert [t["speaker"] for t in turns] == ["bot", "callee", "bot"], turns
    assert turns[0]["text"] == "Will you come, Ann?" and "be there" in turns[1]["text"]
    assert result["outcome"] == "connected" and result["sipCode"] == 200
    assert result["intent"] == "confirm" and result["path"] == ["ask", "thanks"]


def test_call_test_refuses_an_unknown_template(env: dict[str, str], tmp_path: Path) -> None:
    acc = cli(env, tmp_path, "account", "create", "--name", "Ops")
    proc = subprocess.run(
        [*OUTDIAL, "call", "test", "15551239999", "--script", "99", "--account",
         str(acc["accountId"])],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "has no template 99" in json.loads(proc.stderr)["error"]

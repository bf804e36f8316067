"""`outdial demo` (what `make demo` runs): left running with the console, signed in to with
the credentials it prints, stopped by SIGTERM to its PID and exiting 0; run again on the same
folder, it reuses what it made."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    out, err = workdir / "demo.out", workdir / "demo.err"
    # The child holds its own copies of the descriptors.
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "outdial", "demo", "--port", "0"],
            cwd=workdir,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    return proc, out, err


def _shown(proc: subprocess.Popen[bytes], out: Path, err: Path) -> dict[str, Any]:
    """The JSON line the demo prints once it is ready (within 90 s)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                shown: dict[str, Any] = json.loads(line)
                return shown
        assert proc.poll() is None, err.read_text(errors="replace")
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise AssertionError(f"the demo printed nothing: {err.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes], pid: int) -> int:
    assert proc.pid == pid
    os.kill(pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def _sign_in(client: httpx.Client, console: str, username: str, password: str) -> httpx.Response:
    page = client.get(f"{console}login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    return client.post(
        f"{console}login",
        data={
            "csrf": csrf.group(1),
            "username": username,
            "password": password,
            "next": "/console/",
        },
        follow_redirects=False,
    )


def test_demo_keeps_serving_the_console_until_sigterm(tmp_path: Path) -> None:
    proc, out, err = _start(tmp_path)
    try:
        shown = _shown(proc, out, err)
        console = shown["console"]
        assert console.endswith("/console/") and shown["username"] == "demo"
        banner = err.read_text(errors="replace")
        assert shown["password"] in banner and console in banner and str(proc.pid) in banner
        with httpx.Client(timeout=10) as client:
            wrong = _sign_in(client, console, shown["username"], "not the password")
            assert wrong.status_code != 303
            signed = _sign_in(client, console, shown["username"], shown["password"])
            assert signed.status_code == 303, signed.text
            page = client.get(f"{console}campaigns")
            assert page.status_code == 200
            # The finished campaign, the live one and LAAFFIC's published example.
            for name in ("demo: call now", "demo: live 1", "2024-06-03 10:42:05"):
                assert name in page.text
            # Still serving, and the live campaign is dialing: its calls appear over time.
            calls = client.get(f"{console}calls")
            assert calls.status_code == 200
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            code = _stop(proc, int(shown["pid"]))
    assert code == 0, err.read_text(errors="replace")
    assert (tmp_path / "outdial-demo" / "demo.db").is_file()

    # Again on the same folder: the same account and template, a new password, no duplicates.
    again, out2, err2 = _start(tmp_path)
    try:
        shown2 = _shown(again, out2, err2)
        assert shown2["account"] == shown["account"]
        assert shown2["scriptId"] == shown["scriptId"]
        assert shown2["password"] != shown["password"]
        with httpx.Client(timeout=10) as client:
            old = _sign_in(client, shown2["console"], "demo", shown["password"])
            assert old.status_code != 303
            new = _sign_in(client, shown2["console"], "demo", shown2["password"])
            assert new.status_code == 303
            page = client.get(f"{shown2['console']}campaigns").text
            assert page.count("demo: call now") == 1 and "demo: live 2" not in page
    finally:
        code = _stop(again, int(shown2["pid"])) if again.poll() is None else again.returncode
    assert code == 0, err2.read_text(errors="replace")

"""The pieces of a fault-injection run: a private PostgreSQL cluster the test may restart, a
push receiver that can fail and flap, and the API and workers as separate processes.

Everything listens on 127.0.0.1; every process is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OUTDIAL = [sys.executable, "-m", "outdial"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.iterdir(), key=lambda p: int(p.name)) if root.exists() else []
    if not versions:
        raise RuntimeError("PostgreSQL server binaries are not installed")
    return versions[-1] / "bin"


class PrivateCluster:
    """A PostgreSQL server of the test's own, so restarting it disturbs no other test."""

    def __init__(self, *settings: str) -> None:
        """``settings`` are extra server settings, e.g. ``shared_preload_libraries=...``."""
        self.settings = settings
        self.dir = Path(tempfile.mkdtemp(prefix="outdial-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in self.settings)
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
            "-w",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """A fast restart: every connection is cut, the server is back a moment later."""
        self._ctl("restart", "-m", "fast")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Receiver:
    """A push receiver: records every POST (delivery id, attempt, what it answered). With
    ``flap`` it answers 503 during every other ``flap`` seconds."""

    flap: float | None = None
    port: int = field(default_factory=free_port)
    received: list[tuple[str, str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status = 200
                if receiver.flap and int(time.monotonic() / receiver.flap) % 2:
                    status = 503
                with receiver._lock:
                    receiver.received.append(
                        (
                            self.headers.get("X-Outdial-Delivery", ""),
                            self.headers.get("X-Outdial-Attempt", ""),
                            status,
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def accepted(self) -> dict[str, int]:
        """Per delivery id, how many POSTs were answered 2xx."""
        out: dict[str, int] = defaultdict(int)
        with self._lock:
            for delivery, _attempt, status in self.received:
                if 200 <= status < 300:
                    out[delivery] += 1
        return dict(out)

    def failed_answers(self) -> int:
        with self._lock:
            return sum(1 for _d, _a, status in self.received if status >= 300)


class Process:
    """An ``outdial`` process (a worker or the server) with its own log."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, name: str) -> None:
        self.args, self.env, self.log, self.name = args, env, log, name
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*OUTDIAL, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


__all__ = ["PrivateCluster", "Process", "Receiver", "free_port"]

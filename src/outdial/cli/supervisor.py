"""`outdial serve`'s dialer as a child process: the API's request threads and the dialer then
never share one interpreter lock, so a busy API cannot starve the calls.

The child is an ordinary `outdial worker` with the server's environment. It is restarted if
it dies (after a short, growing pause), and stopped with the server: SIGTERM, then the
worker's own graceful drain, then SIGKILL only if it outlives the drain by far.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading

log = logging.getLogger(__name__)

RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0)


class DialerChild:
    def __init__(
        self, worker_id: str | None, drain_seconds: float, database_url: str | None = None
    ) -> None:
        # A fixed id across restarts: a restarted child takes its own calls over at once.
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-dialer"
        self.drain_seconds = drain_seconds
        # The parent's database, however it was found (``--database`` is not inherited).
        self.database_url = database_url
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch = threading.Thread(target=self._supervise, name="outdial-dialer-child")
        self._watch.daemon = True
        self.restarts = 0

    def child_environment(self) -> dict[str, str]:
        env = dict(os.environ, OUTDIAL_WORKER_ID=self.worker_id)
        if self.database_url is not None:
            env["OUTDIAL_DATABASE_URL"] = self.database_url
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = self.child_environment()
        return subprocess.Popen([sys.executable, "-m", "outdial", "worker"], env=env)

    def start(self) -> None:
        with self._lock:
            self._proc = self._spawn()
        self._watch.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            pause = RESTART_PAUSES[min(failures, len(RESTART_PAUSES) - 1)]
            log.error(
                "the dialer process ended (exit %s); restarting it in %.0f s",
                code,
                pause,
                extra={"worker": self.worker_id},
            )
            failures += 1
            if self._stopping.wait(pause):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = self._spawn()
                self.restarts += 1

    def request_stop(self) -> None:
        """Begin the child's graceful stop (it stops claiming at once); returns at once."""
        with self._lock:
            self._stopping.set()
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the child and wait for its drain."""
        self.request_stop()
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=self.drain_seconds + 30.0)
        except subprocess.TimeoutExpired:
            log.error("the dialer process did not stop; killing it")
            proc.kill()
            proc.wait()


__all__ = ["DialerChild"]

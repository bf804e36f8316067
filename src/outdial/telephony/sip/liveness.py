"""Ending answered calls whose line died without a BYE.

A far end that crashes, or a NAT binding that expires, leaves a call "up" that nobody hears: no
BYE will come. Two checks end it, each with its own hang-up side on the record:

- ``media``: no RTP packet for ``rtp_timeout`` seconds (any payload type counts, comfort noise
  included). Far ends that stop sending during silence need a longer timeout or 0 (off).
- ``session``: an in-dialog OPTIONS every ``keepalive`` seconds; a 481 (the far end does not
  know the dialog) or no answer at all (408) means the dialog is gone. Any other answer, a 405
  or 501 included, proves the far end is there. OPTIONS is used rather than RFC 4028 session
  timers because it changes nothing in the dialog (a refresh re-INVITE can renegotiate media).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

DEAD_DIALOG = (408, 481)


class Liveness:
    """A per-call stop event: set by the worker's stop, or by a dead line (``reason`` says
    which check found it)."""

    def __init__(
        self,
        stop: asyncio.Event,
        quiet_for: Callable[[], float],
        ping: Callable[[], Awaitable[int | None]],
        *,
        rtp_timeout: float = 0.0,
        keepalive: float = 0.0,
    ) -> None:
        self.stop = asyncio.Event()
        self.reason: str | None = None
        self._worker_stop, self._quiet_for, self._ping = stop, quiet_for, ping
        self.rtp_timeout, self.keepalive = rtp_timeout, keepalive
        self._tasks: list[asyncio.Future[None]] = []

    def __enter__(self) -> Liveness:
        self._tasks.append(asyncio.ensure_future(self._forward_stop()))
        if self.rtp_timeout > 0:
            self._tasks.append(asyncio.ensure_future(self._watch_media()))
        if self.keepalive > 0:
            self._tasks.append(asyncio.ensure_future(self._keep_alive()))
        return self

    def __exit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()

    def _end(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    async def _forward_stop(self) -> None:
        await self._worker_stop.wait()
        self.stop.set()

    async def _watch_media(self) -> None:
        # Checked a few times per timeout: the call ends at most a quarter late.
        step = min(1.0, self.rtp_timeout / 4)
        while True:
            await asyncio.sleep(step)
            if self._quiet_for() >= self.rtp_timeout:
                self._end("media")
                return

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            if await self._ping() in DEAD_DIALOG:
                self._end("session")
                return

"""A trunk's ``max_calls`` for the whole deployment: every worker takes a line in the database
(``trunk_lines``, one row per call) before it dials and frees it when the call ends.

A line carries an expiry (the call's ring and talk limits plus a margin), so a worker that dies
mid-call gives its lines back by itself. Leases in PostgreSQL were chosen over a rate-limit
library with Redis: the database is already shared by every worker, and no other store is.
When the database cannot be reached the worker falls back to its own per-worker limit (the
trunk's ``max_calls`` per worker, as before), logs it once, and tries the database again on the
next call: calls go on, possibly above the shared cap until the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from outdial.clock import Clock, epoch_ms
from outdial.store.repo import Store
from outdial.telephony.sip.carrier import Trunk

log = logging.getLogger(__name__)

LINE_MARGIN = 60.0  # seconds a line outlives its call's own limits (hang-up, records)


class SharedTrunkLines:
    """``hold(trunk, seconds)``: wait for one of the trunk's lines across all workers."""

    def __init__(self, store: Store, worker: str, clock: Clock, *, poll: float = 0.2) -> None:
        self.store, self.worker, self.clock, self.poll = store, worker, clock, poll
        self._local: dict[str, asyncio.Semaphore] = {}
        self.fallbacks = 0  # calls placed under the per-worker limit (database unreachable)
        self._warned = False

    def _take(self, trunk: Trunk, seconds: float) -> int | None:
        assert trunk.max_calls
        now = self.clock.now()
        until = now + timedelta(seconds=seconds + LINE_MARGIN)
        with self.store.write() as tx:
            return tx.take_trunk_line(
                trunk.name, self.worker, trunk.max_calls, epoch_ms(now), epoch_ms(until)
            )

    def _free(self, line: int) -> None:
        with self.store.write() as tx:
            tx.free_trunk_line(line)

    @contextlib.asynccontextmanager
    async def hold(self, trunk: Trunk, seconds: float) -> AsyncIterator[None]:
        """Hold a line of ``trunk`` for a call that lasts at most ``seconds``."""
        if not trunk.max_calls:
            yield
            return
        line: int | None = None
        try:
            while line is None:
                line = await asyncio.to_thread(self._take, trunk, seconds)
                if line is None:
                    await asyncio.sleep(self.poll)
        except SQLAlchemyError as exc:
            if not self._warned:
                log.warning("trunk lines: database unreachable, per-worker limit: %s", exc)
                self._warned = True
            self.fallbacks += 1
            local = self._local.setdefault(trunk.name, asyncio.Semaphore(trunk.max_calls))
            async with local:
                yield
            return
        self._warned = False
        try:
            yield
        finally:
            try:
                await asyncio.shield(asyncio.to_thread(self._free, line))
            except SQLAlchemyError:
                log.warning("trunk lines: could not free a line; it expires by itself")

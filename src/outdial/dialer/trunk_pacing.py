"""A trunk's ``max_cps`` for the whole deployment: before each INVITE a worker reserves the
trunk's next dialing slot in the database (``sip_trunks.next_dial_at``, moved 1/cps on by each
reservation) and waits for it, so call starts on the trunk are at least 1/cps apart whatever
the number of workers.

The slot lives in the trunk's row, which every worker already shares, for the reason the
trunk's lines do (``trunk_lines.py``): no other store is shared. Strict spacing, no burst:
carriers count call attempts per second and refuse (503, 403) above the rate. A reserved slot
a worker dies before using is lost, which only slows the trunk by one interval. When the
database cannot be reached the worker paces the trunk alone (1/cps between its own calls),
logs it once, and asks the database again on the next call.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from outdial.clock import Clock, epoch_ms
from outdial.store.repo import Store
from outdial.telephony.sip.carrier import Trunk

log = logging.getLogger(__name__)


class SharedTrunkPacing:
    """``await turn(trunk)``: return when this call may be started under the trunk's rate."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._local: dict[str, int] = {}  # trunk -> next slot of this worker's own (fallback)
        self.fallbacks = 0  # calls paced by this worker alone (database unreachable)
        self.waited = 0.0  # seconds calls waited for their slots, summed (benches)
        self._warned = False

    def _reserve(self, trunk: Trunk, now: int, interval: int) -> int:
        with self.store.write() as tx:
            slot = tx.reserve_trunk_slot(trunk.name, now, interval)
        return now if slot is None else slot  # a trunk from settings only: nothing to share

    async def turn(self, trunk: Trunk) -> None:
        """Wait for the trunk's next dialing slot (at once for a trunk without ``max_cps``)."""
        if not trunk.max_cps or trunk.max_cps <= 0:
            return
        interval = max(1, round(1000 / trunk.max_cps))
        now = epoch_ms(self.clock.now())
        try:
            slot = await asyncio.to_thread(self._reserve, trunk, now, interval)
            self._warned = False
        except SQLAlchemyError as exc:
            if not self._warned:
                log.warning("trunk pacing: database unreachable, per-worker pacing: %s", exc)
                self._warned = True
            self.fallbacks += 1
            slot = max(now, self._local.get(trunk.name, 0))
            self._local[trunk.name] = slot + interval
        wait = (slot - now) / 1000
        if wait > 0:
            self.waited += wait
            await asyncio.sleep(wait)

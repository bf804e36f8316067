"""A worker's side of the leases: its heartbeat, renewing what it holds, and taking over the
calls of workers that stopped.

A worker is alive while its heartbeat (a row in ``workers``) is fresher than ``dead_after``.
Others take its leases over when the heartbeat goes stale or the lease itself expires,
whichever comes first; a process that starts with the id of a stopped one takes that id's
leases over at once. Because every write is fenced by the lease epoch (``store/leases.py``),
taking over too early costs at most a second dial of the calls that were in flight, each
recorded ``interrupted``; it never finishes, bills or reports an attempt twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from outdial.clock import Clock, epoch_ms
from outdial.dialer.records import interrupted_call
from outdial.store.repo import Store, Tx

log = logging.getLogger(__name__)

# How many lost callees one recovery transaction takes over.
RECOVER_BATCH = 1000


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    lease_seconds: float = 300.0
    dead_after_seconds: float = 30.0
    recover_every_seconds: float = 15.0

    @property
    def heartbeat_seconds(self) -> float:
        # Six beats fit in the dead-after time: a worker is declared dead only after missing
        # several in a row, never for one slow statement.
        return self.dead_after_seconds / 6

    @property
    def renew_every_seconds(self) -> float:
        return self.lease_seconds / 3

    @property
    def tick_seconds(self) -> float:
        """How often the keeper wakes while leases are held."""
        return min(self.heartbeat_seconds, self.renew_every_seconds)

    @property
    def margin_seconds(self) -> float:
        """How much of a lease, or of the liveness time, must be left to start a call."""
        return min(self.heartbeat_seconds, self.lease_seconds / 4)


@dataclass(slots=True)
class LeaseStats:
    recovered: int = 0
    taken_over_at_start: int = 0
    lost_in_flight: int = 0
    fenced: int = 0


class LeaseKeeper:
    """Heartbeat, renewal and recovery for one worker."""

    def __init__(self, store: Store, clock: Clock, worker_id: str, timing: LeaseTiming) -> None:
        self.store = store
        self.clock = clock
        self.worker_id = worker_id
        self.timing = timing
        self.incarnation = secrets.token_hex(8)
        self.stats = LeaseStats()
        self.superseded = False
        self._beat_ok: datetime | None = None
        self._last_renew: datetime | None = None
        self._last_recover: datetime | None = None
        self._unreported_fenced = 0

    # --- life -------------------------------------------------------------------------------
    def start(self) -> None:
        """Register this process; take over at once what a previous process of this id held."""
        now = self.clock.now()
        with self.store.write() as tx:
            before = tx.register_worker(self.worker_id, self.incarnation, epoch_ms(now))
        self._beat_ok = now
        if before is None:
            return
        age = (epoch_ms(now) - before.heartbeat_at) / 1000
        if before.stopped_at is None and age < self.timing.dead_after_seconds:
            log.warning(
                "worker id %s was alive %.1f s ago: taking its calls over (two running "
                "processes must never share OUTDIAL_WORKER_ID)",
                self.worker_id,
                age,
            )
        self.stats.taken_over_at_start = self._recover(now, (self.worker_id,), ours=())

    def stopped(self) -> None:
        """Say this worker has stopped: others need not wait for its heartbeat to go stale."""
        with self.store.write() as tx:
            tx.worker_stopped(self.worker_id, self.incarnation, epoch_ms(self.clock.now()))

    def may_place(self, lease_until: datetime) -> bool:
        """Whether a call claimed with this lease may still start: neither the lease nor this
        worker's liveness (as others judge it) may have run out, with a heartbeat's margin.
        A process resumed after a stop or freeze learns here that its claims are stale."""
        now = self.clock.now()
        margin = timedelta(seconds=self.timing.margin_seconds)
        if now + margin >= lease_until:
            return False
        if self._beat_ok is None:
            return False
        alive_until = self._beat_ok + timedelta(seconds=self.timing.dead_after_seconds)
        return now + margin < alive_until

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.timing.lease_seconds)

    def fenced(self, count: int) -> None:
        """Count writes discarded because their lease was taken over."""
        if count:
            self.stats.fenced += count
            self._unreported_fenced += count
            log.warning(
                "discarded %d results whose leases another worker took over",
                count,
                extra={"worker": self.worker_id, "fenced": count},
            )

    # --- periodic ---------------------------------------------------------------------------
    def beat(self, held: Mapping[int, int]) -> set[int]:
        """Heartbeat, and renew ``held`` (callee id -> epoch) when due; return the callees no
        longer held (taken over: their calls must end and their results are void)."""
        now = self.clock.now()
        with self.store.write() as tx:
            alive = tx.heartbeat(
                self.worker_id, self.incarnation, epoch_ms(now), self._unreported_fenced
            )
            lost: set[int] = set()
            every = timedelta(seconds=self.timing.renew_every_seconds)
            if held and (self._last_renew is None or now - self._last_renew >= every):
                kept = tx.renew_leases(held.items(), epoch_ms(self.lease_until(now)))
                lost = set(held) - kept
                self._last_renew = now
        self._unreported_fenced = 0
        if not alive:
            if not self.superseded:
                log.error(
                    "another process took worker id %s: this one stops claiming", self.worker_id
                )
            self.superseded = True
            return set(held)
        self._beat_ok = now
        if lost:
            self.stats.lost_in_flight += len(lost)
            log.warning(
                "%d calls were taken over by another worker; ending them",
                len(lost),
                extra={"worker": self.worker_id, "lost": len(lost)},
            )
        return lost

    def beat_in(self, tx: Tx, now: datetime) -> bool:
        """Heartbeat inside the caller's transaction (a claim); False when superseded."""
        if not tx.heartbeat(self.worker_id, self.incarnation, epoch_ms(now)):
            self.superseded = True
            log.error("another process took worker id %s: this one stops claiming", self.worker_id)
            return False
        self._beat_ok = now
        return True

    def renewed_now(self) -> None:
        """A fresh claim carries a full lease: renewal can wait its full period."""
        if self._last_renew is None:
            self._last_renew = self.clock.now()

    def recover(self, ours: Collection[int]) -> int:
        """When due, record the calls of stopped workers as interrupted and give their callees
        back (attempt 2 is final); ``ours`` are this worker's own and never taken."""
        now = self.clock.now()
        every = timedelta(seconds=self.timing.recover_every_seconds)
        if self._last_recover is not None and now - self._last_recover < every:
            return 0
        self._last_recover = now
        dead_after = int(self.timing.dead_after_seconds * 1000)
        with self.store.read() as tx:
            dead = [w for w in tx.dead_workers(epoch_ms(now), dead_after) if w != self.worker_id]
        return self._recover(now, dead, ours)

    def _recover(self, now: datetime, dead: Collection[str], ours: Collection[int]) -> int:
        total = 0
        while True:
            with self.store.write() as tx:
                lost = tx.lost_leases(epoch_ms(now), RECOVER_BATCH, tuple(dead), ours)
                if not lost:
                    break
                fenced = tx.write_results([interrupted_call(x, now) for x in lost], epoch_ms(now))
            total += len(lost) - len(fenced)
            if len(lost) < RECOVER_BATCH:
                break
        if total:
            self.stats.recovered += total
            log.warning(
                "recovered %d calls interrupted by a stopped worker",
                total,
                extra={"worker": self.worker_id, "recovered": total, "from_workers": sorted(dead)},
            )
        return total


__all__ = ["LeaseKeeper", "LeaseStats", "LeaseTiming"]

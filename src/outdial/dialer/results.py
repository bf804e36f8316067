"""Finished attempts waiting to be written, and writing them in batches under their leases."""

from __future__ import annotations

from datetime import datetime, timedelta

from outdial.clock import Clock, epoch_ms
from outdial.dialer.funds import suspend_if_out_of_funds
from outdial.dialer.leases import LeaseKeeper
from outdial.store.repo import Store
from outdial.store.results import FinishedCall


class ResultBuffer:
    """Collects results and writes them: every step, or sooner when ``flush_size`` gather.

    A write that fails (the database is away) keeps the results for the next one; a result
    whose lease another worker took over is discarded and counted, never written.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        keeper: LeaseKeeper,
        *,
        flush_seconds: float,
        flush_size: int,
        min_balance: int,
    ) -> None:
        self.store = store
        self.clock = clock
        self.keeper = keeper
        self.flush_seconds = flush_seconds
        self.flush_size = flush_size
        self.min_balance = min_balance
        self._pending: list[FinishedCall] = []
        self._last_flush: datetime | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, result: FinishedCall) -> None:
        self._pending.append(result)

    def leases(self) -> dict[int, int]:
        """Callee id -> epoch of the results not yet written (their leases must be renewed)."""
        return {r.callee_id: r.epoch for r in self._pending}

    def callee_ids(self) -> set[int]:
        return {r.callee_id for r in self._pending}

    def drop(self, callee_ids: set[int]) -> None:
        """Forget results whose leases were taken over."""
        before = len(self._pending)
        self._pending = [r for r in self._pending if r.callee_id not in callee_ids]
        self.keeper.fenced(before - len(self._pending))

    def flush(self, force: bool = False) -> None:
        if not self._pending:
            return
        # Measured on the dialer's clock: results must be written long before a lease could
        # expire in that same time.
        now = self.clock.now()
        if (
            not force
            and len(self._pending) < self.flush_size
            and self._last_flush is not None
            and now - self._last_flush < timedelta(seconds=self.flush_seconds)
        ):
            return
        results, self._pending = self._pending, []
        try:
            with self.store.write() as tx:
                fenced = tx.write_results(results, epoch_ms(now))
                for account_id in sorted({r.account_id for r in results if r.cost}):
                    suspend_if_out_of_funds(tx, account_id, self.min_balance, epoch_ms(now))
        except BaseException:
            self._pending = results + self._pending
            raise
        self.keeper.fenced(len(fenced))
        self._last_flush = self.clock.now()


__all__ = ["ResultBuffer"]

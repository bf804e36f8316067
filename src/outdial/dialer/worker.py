"""The dialer worker: claims due callees under leases, paces them, places the calls through a
Carrier and hands each attempt's result to the result buffer. Its side tasks live beside it:
the lease keeper (heartbeat, renewal, recovery: ``leases.py``) and the buffer that writes
results under their leases (``results.py``).

Database work runs on the loop's thread: statements are short (one batch each) and running them
inline keeps virtual time still while they execute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from outdial.clock import Clock, epoch_ms
from outdial.dialer.claims import Claimer, TaskPlan
from outdial.dialer.funds import suspend_if_out_of_funds
from outdial.dialer.leases import LeaseKeeper, LeaseTiming
from outdial.dialer.metrics import Latency
from outdial.dialer.records import cut_short, finished_call
from outdial.dialer.results import ResultBuffer
from outdial.dialer.task_context import TaskContext
from outdial.domain.billing import may_dial
from outdial.domain.codes import TaskStatus
from outdial.domain.outcome import Outcome
from outdial.domain.pacing import CallsPerSecond, task_limits
from outdial.domain.schedule import allowed_at, next_allowed_at
from outdial.errors import CarrierError
from outdial.script.intents import Matcher, RuleMatcher
from outdial.service.recall import RecallService
from outdial.store.dialing import RunnableTask
from outdial.store.leases import Claimed
from outdial.store.repo import Store
from outdial.telephony.carrier import (
    CallRequest,
    CallResult,
    Carrier,
    Conversation,
)

log = logging.getLogger(__name__)


# How soon a worker whose account's lines are all taken looks again (lines free up as soon as
# another worker writes its results).
CAPACITY_RETRY_SECONDS = 0.05
# After the drain time, how long calls told to stop get to hang up before they are abandoned.
CUT_GRACE_SECONDS = 5.0
# When a carrier is unavailable (a retryable CarrierError), how long its callee waits.
CARRIER_RETRY_SECONDS = 30.0
# The SIP code recorded when a carrier refuses a call for good (CallRejected).
FINAL_CARRIER_SIP = 503
# Waits between tries while the database cannot be reached.
DB_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class DialerConfig:
    """Tuning of one worker."""

    worker_id: str
    batch_size: int = 500
    lease_seconds: float = 300.0
    poll_seconds: float = 1.0
    flush_seconds: float = 0.25
    flush_size: int = 1000
    recover_every_seconds: float = 15.0
    dead_after_seconds: float = 30.0
    drain_seconds: float = 25.0
    min_balance: int = 0
    rates_ttl_seconds: float = 60.0
    capacity_retry_seconds: float = CAPACITY_RETRY_SECONDS
    """With every line taken, how soon to look again (lines another worker frees wake no
    one here)."""
    gather_seconds: float = 0.0
    """After a call ends, how long to wait for others ending about then, so that one step
    writes their results and refills their lines together: a step costs the same few
    statements for one call as for fifty (0: a step per ended call)."""


@dataclass(slots=True)
class _InFlight:
    task: RunnableTask
    claimed: Claimed
    lease_until: datetime
    stop: asyncio.Event
    job: asyncio.Task[None] | None = None
    cut: bool = False
    """Stopped at the end of the drain time: recorded interrupted and given back."""
    lost: bool = False
    """Taken over by another worker: its result is void."""


@dataclass(slots=True)
class DialerStats:
    placed: int = 0
    finished: int = 0
    stale_claims: int = 0
    carrier_retries: int = 0
    cut_at_stop: int = 0
    db_errors: int = 0
    by_outcome: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    claim_latency: Latency = field(default_factory=Latency)


class Dialer:
    """One worker. ``run(stop)`` works until ``stop`` is set, then drains gracefully;
    ``drain()`` works until no work is left (tests, demos, benchmarks)."""

    def __init__(
        self,
        store: Store,
        carrier: Carrier,
        clock: Clock,
        config: DialerConfig,
        conversation: Conversation | None = None,
        recalls: RecallService | None = None,
        matcher: Matcher | None = None,
    ) -> None:
        self.store = store
        self.carrier = carrier
        self.clock = clock
        self.config = config
        self.context = TaskContext(
            store, clock, matcher or RuleMatcher(), config.rates_ttl_seconds, conversation
        )
        self.recalls = recalls
        self._last_recall: datetime | None = None
        self._recall_due: int | None = None
        self.stats = DialerStats()
        self.keeper = LeaseKeeper(
            store,
            clock,
            config.worker_id,
            LeaseTiming(
                lease_seconds=config.lease_seconds,
                dead_after_seconds=config.dead_after_seconds,
                recover_every_seconds=config.recover_every_seconds,
            ),
        )
        self.results = ResultBuffer(
            store,
            clock,
            self.keeper,
            flush_seconds=config.flush_seconds,
            flush_size=config.flush_size,
            min_balance=config.min_balance,
        )
        self._in_flight: dict[int, _InFlight] = {}
        self._per_task: dict[int, int] = defaultdict(int)
        self._per_account: dict[int, int] = defaultdict(int)
        self.claimer = Claimer(store, self.keeper, config.worker_id)
        self._wake = asyncio.Event()
        self._holding = asyncio.Event()
        self._cps = CallsPerSecond(carrier.max_cps)
        self._started = False

    # --- public ------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Calls this worker is placing now."""
        return len(self._in_flight)

    def lines_in_use(self) -> dict[int, int]:
        """Account id -> calls this worker holds on the account's lines now."""
        return {a: n for a, n in dict(self._per_account).items() if n > 0}

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set (or another process takes this worker's id); then stop
        claiming, let calls in flight finish for up to ``drain_seconds``, record the rest
        ``interrupted`` and give their callees back, so the next worker dials them at once."""
        keeper = self._start_side_tasks()
        try:
            failures = 0
            while not stop.is_set() and not self.keeper.superseded:
                try:
                    wait = await self.step()
                    failures = 0
                except SQLAlchemyError as exc:
                    wait = self._database_away(exc, failures)
                    failures += 1
                await self._sleep(wait, stop)
            await self._drain_and_stop()
        finally:
            keeper.cancel()

    async def drain(self, limit: timedelta = timedelta(days=30)) -> None:
        """Work until no task is runnable and no call is in flight (tests, demos, benchmarks).

        Tasks waiting for a later window or start time are waited for, up to ``limit``.
        """
        keeper = self._start_side_tasks()
        try:
            deadline = self.clock.now() + limit
            never = asyncio.Event()
            while self.clock.now() < deadline:
                wait = await self.step()
                if wait is None and not self._in_flight and not self.results:
                    # Rounds of recall flows may become due only now that every task is done.
                    wait = self._advance_recalls(self.clock.now(), force=True)
                    if wait is None:
                        break
                await self._sleep(wait, never)
            await self._finish_in_flight()
            self.keeper.stopped()
        finally:
            keeper.cancel()

    # --- one pass ----------------------------------------------------------------------------
    async def step(self) -> float | None:
        """Claim and start what is due; return seconds until there may be more (None: idle)."""
        if not self._started:
            self.keeper.start()
            self._started = True
        now = self.clock.now()
        now_ms = epoch_ms(now)
        self.keeper.recover(set(self._in_flight) | self.results.callee_ids())
        # Every step writes what finished since the last one: a finished call frees its line
        # (counted from the database) only once its callee has left DIALING.
        self.results.flush(force=True)
        recall_wait = self._advance_recalls(now)
        # One read for the step: the due tasks, the next start, the funds of their accounts,
        # and the status of tasks this worker is calling that are no longer due (a cancelled
        # one stops its calls).
        with self.store.read() as tx:
            tasks = tx.runnable_tasks(now_ms)
            next_start = tx.next_send_at(now_ms)
            due = {t.task_id for t in tasks}
            gone = {f.task.task_id for f in self._in_flight.values()} - due
            statuses = tx.task_statuses(gone)
            funds = tx.funds_of(sorted({t.account_id for t in tasks}))
        self._stop_cancelled(statuses)
        waits: list[float] = []
        if recall_wait is not None:
            waits.append(recall_wait)
        if next_start is not None:
            waits.append((next_start - now_ms) / 1000)
        drained: list[int] = []
        busy = False
        if not self.keeper.superseded:
            busy = self._claim_and_start(tasks, funds, now, waits, drained)
        self._finish_idle_tasks(drained, now)
        if busy:
            return 0.0
        if self._in_flight or self.results:
            return self.config.poll_seconds
        return min(waits) if waits else None

    def _claim_and_start(
        self,
        tasks: list[RunnableTask],
        funds: dict[int, int],
        now: datetime,
        waits: list[float],
        drained: list[int],
    ) -> bool:
        """Plan every due task, claim for all of them in one transaction, start the calls;
        return whether any call started."""
        by_account: dict[int, list[RunnableTask]] = defaultdict(list)
        for task in tasks:
            by_account[task.account_id].append(task)
        short = self._accounts_out_of_funds(funds, now)
        plans: list[TaskPlan] = []
        for account_id, account_tasks in by_account.items():
            if account_id not in short:
                plans.extend(self._plan_account(account_tasks, now, waits))
        if not plans:
            return False
        budget = self._cps.budget(now.timestamp())
        started_at = time.perf_counter()
        try:
            step = self.claimer.claim(plans, budget, now)
        finally:
            self.stats.claim_latency.observe(time.perf_counter() - started_at)
        started = sum(len(c) for c in step.claimed.values())
        self._cps.spend(started)
        lease_until = self.keeper.lease_until(now)
        by_id = {p.task.task_id: p.task for p in plans}
        for task_id, claims in step.claimed.items():
            for c in claims:
                self._start(by_id[task_id], c, lease_until)
        if step.at_capacity:
            waits.append(min(self.config.poll_seconds, self.config.capacity_retry_seconds))
        for task_id, later in step.none_due.items():
            mine = self._per_task.get(task_id, 0)
            if later is not None:
                waits.append((later - epoch_ms(now)) / 1000)
            elif step.held_elsewhere.get(task_id, 0) > mine:
                # Another worker holds callees of this task: it finishes them, or the next
                # recovery pass takes them over.
                waits.append(self.keeper.timing.recover_every_seconds)
            elif mine == 0:
                drained.append(task_id)
        return bool(step.touched)

    def _accounts_out_of_funds(self, funds: dict[int, int], now: datetime) -> set[int]:
        """Accounts whose funds are below the minimum (their tasks are suspended): a write
        only for those short."""
        short = {a for a, f in funds.items() if not may_dial(f, self.config.min_balance)}
        if short:
            with self.store.write() as tx:
                for account_id in sorted(short):
                    suspend_if_out_of_funds(tx, account_id, self.config.min_balance, epoch_ms(now))
        return short

    def _plan_account(
        self, tasks: list[RunnableTask], now: datetime, waits: list[float]
    ) -> list[TaskPlan]:
        lines = tasks[0].lines
        account_id = tasks[0].account_id
        plans = []
        for task in tasks:
            windows, zone = self.context.windows_of(task)
            if task.window_zone == "task" and not allowed_at(windows, [zone], now):
                opens = next_allowed_at(windows, [zone], now)
                if opens is not None:
                    waits.append((opens - now).total_seconds())
                continue
            plans.append(TaskPlan(task, windows, zone))
        limits = task_limits(lines, {p.task.task_id: p.task.callout_rate for p in plans})
        wanted = []
        for plan in plans:
            task_id = plan.task.task_id
            plan.limit = limits[task_id]
            plan.want = min(
                plan.limit - self._per_task[task_id],
                lines - self._per_account[account_id],
                self.config.batch_size,
            )
            if plan.want > 0:
                wanted.append(plan)
        return wanted

    # --- calls -------------------------------------------------------------------------------
    def _start(self, task: RunnableTask, claimed: Claimed, lease_until: datetime) -> None:
        flight = _InFlight(task, claimed, lease_until, asyncio.Event())
        flight.job = asyncio.ensure_future(self._call(flight))
        self._in_flight[claimed.callee_id] = flight
        self._per_task[task.task_id] += 1
        self._per_account[task.account_id] += 1
        self._holding.set()

    async def _call(self, flight: _InFlight) -> None:
        task, claimed = flight.task, flight.claimed
        try:
            if not self.keeper.may_place(flight.lease_until):
                # Claimed before a stall (a stopped process, a frozen VM): others may have
                # taken the callee over meanwhile. Give it back undialed if it is still ours.
                self.stats.stale_claims += 1
                with self.store.write() as tx:
                    tx.release([claimed], None)
                return
            self.stats.placed += 1
            try:
                result = await self._place(task, claimed, flight.stop)
            except CarrierError as exc:
                # Retryable (the trunk is unreachable): the callee waits and is tried again;
                # the attempt is not counted and nothing is recorded or billed.
                self.stats.carrier_retries += 1
                log.warning("carrier unavailable (%s); callee retried later", exc.message)
                retry_at = self.clock.now() + timedelta(seconds=CARRIER_RETRY_SECONDS)
                with self.store.write() as tx:
                    tx.release([claimed], epoch_ms(retry_at))
                return
            self._record(flight, result)
        except asyncio.CancelledError:
            if not flight.lost:
                self.results.add(cut_short(claimed, task, self.clock.now(), self.config.worker_id))
            raise
        finally:
            self._in_flight.pop(claimed.callee_id, None)
            self._per_task[task.task_id] -= 1
            self._per_account[task.account_id] -= 1
            self._wake.set()

    async def _place(self, task: RunnableTask, claimed: Claimed, stop: asyncio.Event) -> CallResult:
        request = CallRequest(
            callee=claimed.number,
            caller_id=task.display_num,
            max_ringing=float(task.max_ringing_time),
            max_talk=float(task.max_calls),
            record=bool(task.enable_recording),
            attempt=claimed.attempt,
            variables=claimed.texts,
            tag=f"{task.task_id}:{claimed.callee_id}",
            trunk=task.sip_trunk or "",
        )
        started = self.clock.now()
        try:
            return await self.carrier.place(request, self.context.conversation_for(task), stop)
        except CarrierError as exc:
            if exc.retryable:
                raise
            log.warning("carrier refused a call: %s", exc.message, extra={"task_id": task.task_id})
            return CallResult(
                Outcome.FAILED, FINAL_CARRIER_SIP, started, self.clock.now(), hangup_side="system"
            )
        except Exception:
            # Not a carrier's verdict but a fault in our code: recorded failed, logged whole.
            log.exception("carrier failed", extra={"task_id": task.task_id})
            return CallResult(Outcome.FAILED, 500, started, self.clock.now())

    def _record(self, flight: _InFlight, result: CallResult) -> None:
        task, claimed = flight.task, flight.claimed
        now = self.clock.now()
        if flight.lost:
            self.keeper.fenced(1)
            return
        if flight.cut:
            self.stats.cut_at_stop += 1
            self.results.add(cut_short(claimed, task, now, self.config.worker_id))
            return
        self.context.grade_unanswered(task, claimed, result)
        rates = self.context.rate_table(task.account_id)
        self.results.add(finished_call(claimed, task, result, rates, now, self.config.worker_id))
        self.stats.finished += 1
        self.stats.by_outcome[str(result.outcome)] += 1

    def _start_side_tasks(self) -> asyncio.Task[None]:
        return asyncio.ensure_future(self._keep_leases())

    async def _keep_leases(self) -> None:
        """While this worker holds leases: heartbeat, renew, and end calls taken over."""
        every = self.keeper.timing.tick_seconds
        while True:
            if not self._in_flight and not self.results:
                self._holding.clear()
                await self._holding.wait()
            await asyncio.sleep(every)
            held = {i: f.claimed.epoch for i, f in self._in_flight.items()}
            held.update(self.results.leases())
            try:
                lost = self.keeper.beat(held)
            except SQLAlchemyError as exc:
                self.stats.db_errors += 1
                log.warning("heartbeat failed: %s", type(exc).__name__)
                continue
            for callee_id in lost:
                flight = self._in_flight.get(callee_id)
                if flight is not None:
                    flight.lost = True
                    flight.stop.set()
            self.results.drop(lost)

    # --- bookkeeping -------------------------------------------------------------------------
    def _database_away(self, exc: SQLAlchemyError, failures: int) -> float:
        self.stats.db_errors += 1
        wait = DB_RETRY_SECONDS[min(failures, len(DB_RETRY_SECONDS) - 1)]
        # The error's text may quote statement parameters (numbers); its class is enough.
        log.warning("database unavailable (%s); retrying in %.1f s", type(exc).__name__, wait)
        return wait

    def _finish_idle_tasks(self, task_ids: list[int], now: datetime) -> None:
        idle = [t for t in task_ids if self._per_task.get(t, 0) == 0]
        if not idle:
            return
        self.results.flush(force=True)
        with self.store.write() as tx:
            tx.finish_done_tasks(idle, epoch_ms(now))

    def _stop_cancelled(self, statuses: dict[int, int]) -> None:
        if not statuses:
            return
        for f in self._in_flight.values():
            if statuses.get(f.task.task_id) == TaskStatus.CANCELLED:
                f.stop.set()

    def _advance_recalls(self, now: datetime, force: bool = False) -> float | None:
        """Start due recall rounds; return seconds until the next one (None: none waits)."""
        if self.recalls is None:
            return None
        every = timedelta(seconds=self.config.recover_every_seconds)
        if not force and self._last_recall is not None and now - self._last_recall < every:
            return self._recall_wait(now)
        self._last_recall = now
        started, due = self.recalls.advance()
        self._recall_due = due
        if started:
            log.info("recall rounds started", extra={"tasks": started})
            return 0.0
        return self._recall_wait(now)

    def _recall_wait(self, now: datetime) -> float | None:
        if self._recall_due is None:
            return None
        return max(0.0, (self._recall_due - epoch_ms(now)) / 1000)

    async def _sleep(self, seconds: float | None, stop: asyncio.Event) -> None:
        if seconds == 0.0:
            await asyncio.sleep(0)
            return
        timeout = (
            self.config.poll_seconds
            if seconds is None
            else min(max(seconds, 0.001), self.config.poll_seconds * 60)
        )
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if self._wake.is_set() and not stop.is_set() and self.config.gather_seconds > 0:
                await asyncio.wait([waiters[1]], timeout=self.config.gather_seconds)
        finally:
            for w in waiters:
                w.cancel()

    async def _finish_in_flight(self) -> None:
        jobs = [f.job for f in self._in_flight.values() if f.job is not None]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        self.results.flush(force=True)

    async def _drain_and_stop(self) -> None:
        """The graceful stop: no new claims; calls in flight get ``drain_seconds`` to end;
        then the rest are hung up, recorded ``interrupted`` and their callees given back."""
        jobs = [f.job for f in self._in_flight.values() if f.job is not None]
        if jobs:
            log.info("stopping: %d calls in flight, draining", len(jobs))
            await asyncio.wait(jobs, timeout=self.config.drain_seconds)
        rest = list(self._in_flight.values())
        if rest:
            log.warning("drain time over: ending %d calls as interrupted", len(rest))
            for f in rest:
                f.cut = True
                f.stop.set()
            jobs = [f.job for f in rest if f.job is not None]
            _done, hung = await asyncio.wait(jobs, timeout=CUT_GRACE_SECONDS)
            for job in hung:
                job.cancel()
            if hung:
                await asyncio.gather(*hung, return_exceptions=True)
        for attempt, wait in enumerate((*DB_RETRY_SECONDS, None)):
            try:
                self.results.flush(force=True)
                self.keeper.stopped()
                return
            except SQLAlchemyError as exc:
                if wait is None:
                    log.error("could not write the last results (%s)", type(exc).__name__)
                    return
                self._database_away(exc, attempt)
                await asyncio.sleep(wait)


__all__ = ["Dialer", "DialerConfig"]

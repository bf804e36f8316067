"""The dialer worker: claims due callees under leases, paces them, places the calls through a
Carrier and writes each attempt's record, state, counters and charge in batches.

Database work runs on the loop's thread: statements are short (one batch each) and running them
inline keeps virtual time still while they execute.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import phonenumbers
from phonenumbers import timezone as number_zones

from outdial.clock import Clock, epoch_ms
from outdial.dialer.records import blocked_call, finished_call, interrupted_call
from outdial.domain.codes import TaskStatus
from outdial.domain.outcome import Outcome
from outdial.domain.pacing import task_limits
from outdial.domain.rates import Rate, RateTable
from outdial.domain.schedule import allowed_at, next_allowed_at
from outdial.domain.windows import Window, parse_windows
from outdial.script.engine import TemplateConversation
from outdial.script.intents import RuleMatcher
from outdial.script.model import Template
from outdial.script.rules import grade, sms_text
from outdial.script.template import from_json, load
from outdial.service.recall import RecallService
from outdial.store.dialing import Claimed, FinishedCall, RunnableTask
from outdial.store.repo import Store, Tx
from outdial.telephony.carrier import (
    CallRequest,
    CallResult,
    Carrier,
    Conversation,
    HangUpAtOnce,
)

log = logging.getLogger(__name__)


# How soon a worker whose account's lines are all taken looks again (lines free up as soon as
# another worker writes its results).
CAPACITY_RETRY_SECONDS = 0.05
# Returned by _claim when lines are taken: distinct from "nothing due" (None).
_AT_CAPACITY: list[Claimed] = []


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
    min_balance: int = 0
    rates_ttl_seconds: float = 60.0


@dataclass(slots=True)
class _InFlight:
    task_id: int
    account_id: int
    stop: asyncio.Event
    job: asyncio.Task[None]


@dataclass(slots=True)
class _TaskPlan:
    task: RunnableTask
    windows: list[Window]
    zone: ZoneInfo


@dataclass(slots=True)
class DialerStats:
    placed: int = 0
    finished: int = 0
    interrupted_recovered: int = 0
    by_outcome: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dialer:
    """One worker. ``run(stop)`` works until ``stop`` is set; ``drain()`` until no work is left."""

    def __init__(
        self,
        store: Store,
        carrier: Carrier,
        clock: Clock,
        config: DialerConfig,
        conversation: Conversation | None = None,
        recalls: RecallService | None = None,
    ) -> None:
        self.store = store
        self.carrier = carrier
        self.clock = clock
        self.config = config
        # A fixed conversation (tests), or each task's template run by the engine.
        self.conversation = conversation
        self.matcher = RuleMatcher()
        self._templates: dict[int, Template | None] = {}
        self.recalls = recalls
        self._last_recall: datetime | None = None
        self._recall_due: int | None = None
        self.stats = DialerStats()
        self._in_flight: dict[int, _InFlight] = {}
        self._per_task: dict[int, int] = defaultdict(int)
        self._per_account: dict[int, int] = defaultdict(int)
        self._results: list[FinishedCall] = []
        self._last_flush: datetime | None = None
        self._last_recover: datetime | None = None
        self._last_renew: datetime | None = None
        self._rates: dict[int, tuple[datetime, RateTable]] = {}
        self._zone_memo: dict[str, tuple[ZoneInfo, ...]] = {}
        self._wake = asyncio.Event()
        self._cps_tokens = 0.0
        self._cps_at: datetime | None = None

    # --- public ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then let in-flight calls finish and write them."""
        while not stop.is_set():
            wait = await self.step()
            await self._sleep(wait, stop)
        await self._finish_in_flight()

    async def drain(self, limit: timedelta = timedelta(days=30)) -> None:
        """Work until no task is runnable and no call is in flight (tests, demos, benchmarks).

        Tasks waiting for a later window or start time are waited for, up to ``limit``.
        """
        deadline = self.clock.now() + limit
        never = asyncio.Event()
        while self.clock.now() < deadline:
            wait = await self.step()
            if wait is None and not self._in_flight and not self._results:
                # Rounds of recall flows may become due only now that every task is done.
                wait = self._advance_recalls(self.clock.now(), force=True)
                if wait is None:
                    return
            await self._sleep(wait, never)
        await self._finish_in_flight()

    # --- one pass ----------------------------------------------------------------------------
    async def step(self) -> float | None:
        """Claim and start what is due; return seconds until there may be more (None: idle)."""
        now = self.clock.now()
        now_ms = epoch_ms(now)
        self._recover(now)
        # Every step writes what finished since the last one: a finished call frees its line
        # (counted from the database) only once its callee has left DIALING.
        self._flush_if_due(force=True)
        recall_wait = self._advance_recalls(now)
        with self.store.read() as tx:
            tasks = tx.runnable_tasks(now_ms)
            next_start = tx.next_send_at(now_ms)
        self._stop_cancelled(now)
        self._renew(now)
        by_account: dict[int, list[RunnableTask]] = defaultdict(list)
        for task in tasks:
            by_account[task.account_id].append(task)
        waits: list[float] = []
        if recall_wait is not None:
            waits.append(recall_wait)
        if next_start is not None:
            waits.append((next_start - now_ms) / 1000)
        busy = False
        drained: list[int] = []
        for account_tasks in by_account.values():
            result = self._plan_account(account_tasks, now, drained)
            busy |= result[0]
            waits.extend(result[1])
        self._finish_idle_tasks(drained, now)
        if busy:
            return 0.0
        if self._in_flight or self._results:
            return self.config.poll_seconds
        return min(waits) if waits else None

    def _plan_account(
        self, tasks: list[RunnableTask], now: datetime, drained: list[int]
    ) -> tuple[bool, list[float]]:
        lines = tasks[0].lines
        account_id = tasks[0].account_id
        if self._out_of_funds(account_id, now):
            return False, []
        plans = []
        waits: list[float] = []
        for task in tasks:
            zone = ZoneInfo(task.timezone)
            windows = parse_windows(
                [(w["strTime"], w["endTime"]) for w in orjson.loads(task.allow_send_time)]
            )
            if task.window_zone == "task" and not allowed_at(windows, [zone], now):
                opens = next_allowed_at(windows, [zone], now)
                if opens is not None:
                    waits.append((opens - now).total_seconds())
                continue
            plans.append(_TaskPlan(task, windows, zone))
        limits = task_limits(lines, {p.task.task_id: p.task.callout_rate for p in plans})
        busy = False
        for plan in plans:
            task = plan.task
            free = min(
                limits[task.task_id] - self._per_task[task.task_id],
                lines - self._per_account[account_id],
                self.config.batch_size,
                self._cps_budget(now),
            )
            if free <= 0:
                continue
            claimed = self._claim(plan, limits[task.task_id], free, now)
            if claimed is _AT_CAPACITY:
                waits.append(min(self.config.poll_seconds, CAPACITY_RETRY_SECONDS))
                continue
            if claimed is None:
                with self.store.read() as tx:
                    later = tx.next_callee_at(task.task_id, epoch_ms(now))
                if later is not None:
                    waits.append((later - epoch_ms(now)) / 1000)
                elif self._per_task.get(task.task_id, 0) == 0:
                    drained.append(task.task_id)
                continue
            busy = True
            for c in claimed:
                self._start(task, c)
        return busy, waits

    def _claim(
        self, plan: _TaskPlan, task_limit: int, free: int, now: datetime
    ) -> list[Claimed] | None:
        """Claim up to ``free`` callees; None when none is due; _AT_CAPACITY when the
        account's lines or the task's share are taken (by this or another worker)."""
        task = plan.task
        now_ms = epoch_ms(now)
        lease = epoch_ms(now + timedelta(seconds=self.config.lease_seconds))
        with self.store.write() as tx:
            # Workers share an account's lines: count its dialing callees in the database,
            # under the account row's lock, so several workers never exceed them together.
            tx.account(task.account_id, lock=True)
            dialing = tx.dialing_counts(task.account_id)
            free = min(
                free,
                task_limit - dialing.get(task.task_id, 0),
                task.lines - sum(dialing.values()),
                # One claim takes at most half an account's lines, so other workers sharing
                # the account find free lines between this worker's claims.
                max(1, task.lines // 2),
            )
            if free <= 0:
                return _AT_CAPACITY
            claimed = tx.claim(task.task_id, free, self.config.worker_id, lease, now_ms)
            if not claimed:
                return None
            if task.status == TaskStatus.WAITING:
                tx.start_task(task.task_id, now_ms)
            if task.window_zone == "callee":
                claimed = self._hold_outside_window(tx, plan, claimed, now)
            claimed = self._skip_do_not_call(tx, task, claimed, now)
        self._spend_cps(len(claimed))
        return claimed

    def _hold_outside_window(
        self, tx: Tx, plan: _TaskPlan, claimed: list[Claimed], now: datetime
    ) -> list[Claimed]:
        """Keep the callees whose own zones are inside a window now; release the others
        until their next window opens."""
        task, windows = plan.task, plan.windows
        keep = []
        never: list[FinishedCall] = []
        later: dict[int, list[int]] = defaultdict(list)
        for c in claimed:
            zones = self._callee_zones(c.number, plan.zone)
            if allowed_at(windows, zones, now):
                keep.append(c)
                continue
            opens = next_allowed_at(windows, zones, now)
            if opens is None:
                never.append(blocked_call(c, task, now, Outcome.NO_WINDOW))
            else:
                later[epoch_ms(opens)].append(c.callee_id)
        for when_ms, ids in later.items():
            tx.release(ids, when_ms)
        if never:
            tx.write_results(never, epoch_ms(now))
        return keep

    def _skip_do_not_call(
        self, tx: Tx, task: RunnableTask, claimed: list[Claimed], now: datetime
    ) -> list[Claimed]:
        """Numbers listed since submission are never dialed: recorded as blocked instead."""
        listed = tx.dnc_listed(task.account_id, [c.number for c in claimed])
        if not listed:
            return claimed
        tx.write_results(
            [blocked_call(c, task, now) for c in claimed if c.number in listed], epoch_ms(now)
        )
        return [c for c in claimed if c.number not in listed]

    def _callee_zones(self, number: str, fallback: ZoneInfo) -> tuple[ZoneInfo, ...]:
        # The fallback (the task's zone) is part of the key: numbers of no known zone use it.
        head = f"{number[:7]}@{fallback.key}"
        memo = self._zone_memo.get(head)
        if memo is not None:
            return memo
        zones: tuple[ZoneInfo, ...] = (fallback,)
        try:
            parsed = phonenumbers.parse("+" + number)
            names = [n for n in number_zones.time_zones_for_number(parsed) if n != "Etc/Unknown"]
            if names:
                zones = tuple(ZoneInfo(n) for n in names)
        except phonenumbers.NumberParseException:
            pass
        self._zone_memo[head] = zones
        return zones

    # --- calls -------------------------------------------------------------------------------
    def _start(self, task: RunnableTask, claimed: Claimed) -> None:
        stop = asyncio.Event()
        job = asyncio.ensure_future(self._call(task, claimed, stop))
        self._in_flight[claimed.callee_id] = _InFlight(task.task_id, task.account_id, stop, job)
        self._per_task[task.task_id] += 1
        self._per_account[task.account_id] += 1
        self.stats.placed += 1

    async def _call(self, task: RunnableTask, claimed: Claimed, stop: asyncio.Event) -> None:
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
            result = await self.carrier.place(request, self._conversation(task), stop)
        except Exception:
            log.exception("carrier failed", extra={"task_id": task.task_id})
            result = CallResult(Outcome.FAILED, 500, started, self.clock.now())
        self._grade_unanswered(task, claimed, result)
        finished = finished_call(
            claimed,
            task,
            result,
            self._rate_table(task.account_id),
            self.clock.now(),
            self.config.worker_id,
        )
        self._results.append(finished)
        self.stats.finished += 1
        self.stats.by_outcome[str(result.outcome)] += 1
        self._in_flight.pop(claimed.callee_id, None)
        self._per_task[task.task_id] -= 1
        self._per_account[task.account_id] -= 1
        self._wake.set()

    def _template(self, task: RunnableTask) -> Template | None:
        if task.script_id not in self._templates:
            with self.store.read() as tx:
                script = tx.script(task.account_id, task.script_id)
            self._templates[task.script_id] = load(from_json(script.definition)) if script else None
        return self._templates[task.script_id]

    def _conversation(self, task: RunnableTask) -> Conversation:
        if self.conversation is not None:
            return self.conversation
        template = self._template(task)
        if template is None:
            return HangUpAtOnce()
        return TemplateConversation(template, self.matcher)

    def _grade_unanswered(self, task: RunnableTask, claimed: Claimed, result: CallResult) -> None:
        """Calls the conversation never ran on still get the template's grade and SMS rules
        (e.g. an SMS when nobody answers)."""
        template = self._template(task)
        if template is None or result.answered_at is not None:
            return
        outcome = str(result.outcome)
        given = grade(template, outcome, (), ())
        result.conversation.grade = given
        result.conversation.sms = sms_text(template, outcome, (), (), given, claimed.texts)

    def _rate_table(self, account_id: int) -> RateTable:
        cached = self._rates.get(account_id)
        now = self.clock.now()
        ttl = timedelta(seconds=self.config.rates_ttl_seconds)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        with self.store.read() as tx:
            table = RateTable(Rate(*r) for r in tx.rates_for(account_id))
        self._rates[account_id] = (now, table)
        return table

    # --- bookkeeping -------------------------------------------------------------------------
    def _flush_if_due(self, force: bool = False) -> None:
        if not self._results:
            return
        # Measured on the dialer's clock: results must be written long before a lease could
        # expire in that same time, or recovery would take them for calls cut short.
        now = self.clock.now()
        if (
            not force
            and len(self._results) < self.config.flush_size
            and self._last_flush is not None
            and now - self._last_flush < timedelta(seconds=self.config.flush_seconds)
        ):
            return
        self._flush()

    def _out_of_funds(self, account_id: int, now: datetime) -> bool:
        """No call starts while the account's funds are below the minimum: its tasks are
        suspended instead (a resume, or funds set below it, must not slip a call through)."""
        with self.store.read() as tx:
            funds = tx.funds(account_id)
        if funds >= self.config.min_balance:
            return False
        with self.store.write() as tx:
            paused = tx.suspend_account_tasks(
                account_id, "balance exhausted: top up and resume", epoch_ms(now)
            )
        if paused:
            log.warning("balance exhausted; tasks suspended", extra={"account_id": account_id})
        return True

    def _flush(self) -> None:
        results, self._results = self._results, []
        now = self.clock.now()
        accounts = {r.account_id for r in results if r.cost}
        with self.store.write() as tx:
            tx.write_results(results, epoch_ms(now))
            for account_id in accounts:
                if tx.funds(account_id) < self.config.min_balance:
                    paused = tx.suspend_account_tasks(
                        account_id, "balance exhausted: top up and resume", epoch_ms(now)
                    )
                    if paused:
                        log.warning(
                            "balance exhausted; tasks suspended",
                            extra={"account_id": account_id, "tasks": paused},
                        )
        self._last_flush = self.clock.now()

    def _finish_idle_tasks(self, task_ids: list[int], now: datetime) -> None:
        idle = [t for t in task_ids if self._per_task.get(t, 0) == 0]
        if not idle:
            return
        self._flush_if_due(force=True)
        with self.store.write() as tx:
            tx.finish_done_tasks(idle, epoch_ms(now))

    def _stop_cancelled(self, now: datetime) -> None:
        tasks = {f.task_id for f in self._in_flight.values()}
        if not tasks:
            return
        with self.store.read() as tx:
            statuses = tx.task_statuses(tasks)
        for f in self._in_flight.values():
            if statuses.get(f.task_id) == TaskStatus.CANCELLED:
                f.stop.set()

    def _renew(self, now: datetime) -> None:
        if not self._in_flight:
            return
        every = timedelta(seconds=self.config.lease_seconds / 3)
        if self._last_renew is not None and now - self._last_renew < every:
            return
        self._last_renew = now
        until = epoch_ms(now + timedelta(seconds=self.config.lease_seconds))
        with self.store.write() as tx:
            tx.renew_leases(self.config.worker_id, list(self._in_flight), until)

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

    def _recover(self, now: datetime) -> None:
        every = timedelta(seconds=self.config.recover_every_seconds)
        if self._last_recover is not None and now - self._last_recover < every:
            return
        self._last_recover = now
        while True:
            with self.store.write() as tx:
                lost = tx.expired_leases(epoch_ms(now), 1000)
                # Our own calls are not lost, whether still ringing or finished and unwritten.
                ours = set(self._in_flight) | {r.callee_id for r in self._results}
                lost = [x for x in lost if x.claimed.callee_id not in ours]
                if not lost:
                    return
                tx.write_results([interrupted_call(x, now) for x in lost], epoch_ms(now))
            self.stats.interrupted_recovered += len(lost)
            log.warning(
                "recovered calls interrupted by a stopped worker", extra={"count": len(lost)}
            )

    def _cps_budget(self, now: datetime) -> int:
        cps = self.carrier.max_cps
        if cps is None:
            return 1 << 30
        if self._cps_at is None:
            self._cps_at, self._cps_tokens = now, cps
        else:
            elapsed = (now - self._cps_at).total_seconds()
            self._cps_tokens = min(cps, self._cps_tokens + elapsed * cps)
            self._cps_at = now
        return int(self._cps_tokens)

    def _spend_cps(self, n: int) -> None:
        if self.carrier.max_cps is not None:
            self._cps_tokens -= n

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
        finally:
            for w in waiters:
                w.cancel()

    async def _finish_in_flight(self) -> None:
        jobs = [f.job for f in self._in_flight.values()]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        self._flush_if_due(force=True)


__all__ = ["Dialer", "DialerConfig"]

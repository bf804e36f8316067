"""One claim transaction per dialer step, for every due task of every account at once.

The cost of a step grows with the calls it claims, not with the number of running tasks: the
accounts are locked in id order, their lines counted in one query, the callees of all tasks
taken in one statement (PostgreSQL) and marked in one UPDATE, and the tasks that got none are
asked when their next callee is due in one more query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from outdial.clock import epoch_ms
from outdial.dialer.leases import LeaseKeeper
from outdial.dialer.records import blocked_call
from outdial.dialer.zones import CalleeZones
from outdial.domain.codes import TaskStatus
from outdial.domain.outcome import Outcome
from outdial.domain.schedule import allowed_at, next_allowed_at
from outdial.domain.windows import Window
from outdial.store.dialing import RunnableTask
from outdial.store.leases import Claimed
from outdial.store.repo import Store, Tx
from outdial.store.results import FinishedCall

# A step claims in at most this many statements (see Claimer._rounds).
CLAIM_ROUNDS = 3
_SUPERSEDED = object()


@dataclass(slots=True)
class TaskPlan:
    """A task inside its window now, with what this worker would like to claim for it."""

    task: RunnableTask
    windows: list[Window]
    zone: ZoneInfo
    limit: int = 0
    """The task's attempt limit (the pacing rule)."""
    want: int = 0
    """What this worker could start for it now (its own share, batch size, CPS)."""


@dataclass(slots=True)
class StepClaims:
    claimed: dict[int, list[Claimed]] = field(default_factory=dict)
    at_capacity: set[int] = field(default_factory=set)
    """Tasks whose account's lines or own share are taken (by any worker)."""
    none_due: dict[int, int | None] = field(default_factory=dict)
    """Tasks that got nothing: when their next callee comes due (None: none waits)."""
    touched: set[int] = field(default_factory=set)
    """Tasks that claimed callees (dialed, blocked or held back for their window)."""
    held_elsewhere: dict[int, int] = field(default_factory=dict)
    """Per task, its callees being dialed now by any worker (before this claim)."""
    superseded: bool = False


class Claimer:
    def __init__(self, store: Store, keeper: LeaseKeeper, worker_id: str) -> None:
        self.store = store
        self.keeper = keeper
        self.worker_id = worker_id
        self.zones = CalleeZones()

    def claim(self, plans: Sequence[TaskPlan], budget: int, now: datetime) -> StepClaims:
        """Claim for every plan in one transaction; ``budget`` caps the calls started (CPS)."""
        out = StepClaims()
        if not plans:
            return out
        now_ms = epoch_ms(now)
        by_account: dict[int, list[TaskPlan]] = defaultdict(list)
        for p in plans:
            by_account[p.task.account_id].append(p)
        with self.store.write() as tx:
            accounts = sorted(by_account)
            # Workers share an account's lines: count its dialing callees in the database,
            # under the account row's lock, so several workers never exceed them together.
            tx.lock_accounts(accounts)
            dialing = tx.dialing_by_task(accounts)
            for p in plans:
                counts = dialing.get(p.task.account_id, {})
                out.held_elsewhere[p.task.task_id] = counts.get(p.task.task_id, 0)
            claimed, exhausted, beat = self._rounds(tx, by_account, dialing, budget, now)
            if not beat:
                out.at_capacity = {p.task.task_id for p in plans}
                return out
            if beat is _SUPERSEDED:
                out.superseded = True
                return out
            plan_of = {p.task.task_id: p for p in plans}
            tx.start_tasks(
                [t for t in claimed if plan_of[t].task.status == TaskStatus.WAITING], now_ms
            )
            blocked: list[FinishedCall] = []
            out.touched = set(claimed)
            for task_id, claims in claimed.items():
                plan = plan_of[task_id]
                if plan.task.window_zone == "callee":
                    claimed[task_id] = self._hold_outside_window(tx, plan, claims, now, blocked)
            # Numbers listed since submission are never dialed: recorded as blocked instead.
            # One query for every account of the step, not one per task.
            numbers: dict[int, list[str]] = defaultdict(list)
            for task_id, claims in claimed.items():
                numbers[plan_of[task_id].task.account_id].extend(c.number for c in claims)
            listed = tx.dnc_listed_many(numbers)
            for task_id, claims in claimed.items():
                task = plan_of[task_id].task
                on_list = listed.get(task.account_id)
                if on_list:
                    blocked.extend(
                        blocked_call(c, task, now) for c in claims if c.number in on_list
                    )
                    claims = [c for c in claims if c.number not in on_list]
                if claims:
                    out.claimed[task_id] = claims
            if blocked:
                tx.write_results(blocked, now_ms)
            empty = [t for t in exhausted if t not in claimed]
            later = tx.next_callees_at(empty, now_ms)
            out.none_due = {t: later.get(t) for t in empty}
            out.at_capacity = {
                p.task.task_id
                for p in plans
                if p.task.task_id not in claimed and p.task.task_id not in exhausted
            }
        self.keeper.renewed_now()
        return out

    def _rounds(
        self,
        tx: Tx,
        by_account: dict[int, list[TaskPlan]],
        dialing: dict[int, dict[int, int]],
        budget: int,
        now: datetime,
    ) -> tuple[dict[int, list[Claimed]], set[int], object]:
        """Claim in up to ``CLAIM_ROUNDS`` statements: a task with fewer due callees than it
        asked for leaves its lines to the account's other tasks in the next round. Returns
        the claims, the tasks found exhausted, and whether the heartbeat went (False: nothing
        was asked; _SUPERSEDED: another process has this worker's id)."""
        now_ms = epoch_ms(now)
        lease = epoch_ms(self.keeper.lease_until(now))
        got: dict[int, int] = defaultdict(int)
        exhausted: set[int] = set()
        claimed: dict[int, list[Claimed]] = {}
        beat: object = False
        for _ in range(CLAIM_ROUNDS):
            wanted: dict[int, int] = {}
            for account_id, plans in sorted(by_account.items()):
                counts = dialing.get(account_id, {})
                used = sum(counts.values()) + sum(got[p.task.task_id] for p in plans)
                for p in plans:
                    task_id, lines = p.task.task_id, p.task.lines
                    if task_id in exhausted:
                        continue
                    free = min(
                        p.want - got[task_id],
                        p.limit - counts.get(task_id, 0) - got[task_id],
                        lines - used,
                        # One step takes at most half an account's lines for a task, so other
                        # workers sharing the account find free lines between this one's claims.
                        max(1, lines // 2) - got[task_id],
                        budget,
                    )
                    if free > 0:
                        wanted[task_id] = free
                        used += free
                        budget -= free
            if not wanted:
                break
            if not beat:
                # The heartbeat goes with the claim: a worker idle for long must not look dead
                # to the others the moment it holds leases again.
                if not self.keeper.beat_in(tx, now):
                    return claimed, exhausted, _SUPERSEDED
                beat = True
            taken = tx.claim_many(wanted, self.worker_id, lease, now_ms)
            short = False
            for task_id, asked in wanted.items():
                rows = taken.get(task_id, [])
                if rows:
                    claimed.setdefault(task_id, []).extend(rows)
                    got[task_id] += len(rows)
                if len(rows) < asked:
                    exhausted.add(task_id)
                    budget += asked - len(rows)
                    short = True
            if not short:
                break
        return claimed, exhausted, beat

    def _hold_outside_window(
        self,
        tx: Tx,
        plan: TaskPlan,
        claimed: list[Claimed],
        now: datetime,
        blocked: list[FinishedCall],
    ) -> list[Claimed]:
        """Keep the callees whose own zones are inside a window now; release the others
        until their next window opens."""
        keep = []
        later: dict[int, list[Claimed]] = defaultdict(list)
        for c in claimed:
            zones = self.zones.of(c.number, plan.zone)
            if allowed_at(plan.windows, zones, now):
                keep.append(c)
                continue
            opens = next_allowed_at(plan.windows, zones, now)
            if opens is None:
                blocked.append(blocked_call(c, plan.task, now, Outcome.NO_WINDOW))
            else:
                later[epoch_ms(opens)].append(c)
        for when_ms, claims in later.items():
            tx.release(claims, when_ms)
        return keep


__all__ = ["Claimer", "StepClaims", "TaskPlan"]

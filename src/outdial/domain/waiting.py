"""Why an unfinished task is not dialing right now, as short reasons an operator can act on.

Pure: every input (now included) is passed in; ``outdial task show`` and ``task watch`` gather
them from the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from outdial.domain.codes import TaskStatus
from outdial.domain.schedule import allowed_at, next_allowed_at
from outdial.domain.windows import Window


@dataclass(frozen=True, slots=True)
class TaskState:
    """What decides whether a task dials now (times in epoch milliseconds)."""

    status: int
    status_reason: str | None
    send_at: int | None
    windows: Sequence[Window]
    # The zones the windows are read in; empty when they are read in each callee's own zone.
    zones: Sequence[ZoneInfo]
    funds_ok: bool
    lines: int
    lines_in_use: int
    pending: int
    due_now: int
    next_due_at: int | None


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a stable ``code`` for scripts and a sentence for people."""

    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def waiting_reasons(state: TaskState, now: datetime) -> list[Reason]:
    """Why the task is not placing calls at ``now``; empty when it is (or will be at once)."""
    status = state.status
    if status in (TaskStatus.FINISHED, TaskStatus.CANCELLED, TaskStatus.SUBMIT_FAILED):
        return []
    if status == TaskStatus.SUBMITTING:
        return [Reason("submitting", "its callees are still being stored")]
    if status == TaskStatus.SUSPENDED:
        why = state.status_reason or "suspended"
        code = "paused" if "paused" in why else "suspended"
        hint = "; `outdial task resume` restarts it" if code == "paused" else ""
        paused = [Reason(code, f"{why}{hint}")]
        if not state.funds_ok:
            paused.append(
                Reason("no_funds", "balance + gift + credit is below OUTDIAL_MIN_BALANCE")
            )
        return paused
    out: list[Reason] = []
    now_ms = int(now.timestamp() * 1000)
    if state.send_at is not None and state.send_at > now_ms:
        out.append(Reason("not_started", f"sendTime is {_iso(state.send_at)}"))
    if state.windows and state.zones and not allowed_at(state.windows, state.zones, now):
        opens = next_allowed_at(state.windows, state.zones, now)
        when = f"; it opens {opens.isoformat(timespec='seconds')}" if opens else ""
        out.append(Reason("outside_window", f"now is outside its calling windows{when}"))
    if not state.funds_ok:
        out.append(
            Reason("no_funds", "balance + gift + credit is below OUTDIAL_MIN_BALANCE: top it up")
        )
    if state.lines_in_use >= state.lines:
        out.append(Reason("lines_full", f"all {state.lines} lines of the account are in use"))
    if state.pending and not state.due_now and state.next_due_at is not None:
        out.append(Reason("retry_later", f"the next attempt is due {_iso(state.next_due_at)}"))
    if not out and status == TaskStatus.WAITING and state.due_now:
        out.append(
            Reason(
                "not_claimed",
                "no dialer has claimed it yet: is `outdial worker` or `outdial serve` running?",
            )
        )
    return out

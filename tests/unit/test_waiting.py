"""Why a task waits, on virtual time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from outdial.domain.codes import TaskStatus
from outdial.domain.waiting import TaskState, waiting_reasons
from outdial.domain.windows import parse_windows

NOW = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)  # 04:00 the next day in Manila
MANILA = ZoneInfo("Asia/Manila")
READY = TaskState(
    status=int(TaskStatus.CALLING),
    status_reason=None,
    send_at=None,
    windows=parse_windows([("09:00", "18:00")]),
    zones=[MANILA],
    funds_ok=True,
    lines=4,
    lines_in_use=0,
    pending=3,
    due_now=3,
    next_due_at=None,
)


def _codes(state: TaskState) -> list[str]:
    return [r.code for r in waiting_reasons(state, NOW)]


def test_outside_the_window_says_when_it_opens() -> None:
    (reason,) = waiting_reasons(READY, NOW)
    assert reason.code == "outside_window"
    assert "2026-06-02T01:00:00+00:00" in reason.message  # 09:00 in Manila


def test_each_obstacle_is_named() -> None:
    open_now = replace(READY, zones=[ZoneInfo("UTC")], windows=parse_windows([("19:00", "21:00")]))
    assert _codes(open_now) == []
    assert _codes(replace(open_now, funds_ok=False)) == ["no_funds"]
    assert _codes(replace(open_now, lines_in_use=4)) == ["lines_full"]
    later = int(NOW.timestamp() * 1000) + 600_000
    assert _codes(replace(open_now, due_now=0, next_due_at=later)) == ["retry_later"]
    future = replace(open_now, status=int(TaskStatus.WAITING), send_at=later)
    assert _codes(future) == ["not_started"]
    assert _codes(replace(open_now, status=int(TaskStatus.WAITING))) == ["not_claimed"]
    # Windows read in each callee's zone: no single zone to judge by, so no window reason.
    assert _codes(replace(READY, zones=[])) == []


def test_paused_suspended_and_final_tasks() -> None:
    paused = replace(READY, status=int(TaskStatus.SUSPENDED), status_reason="paused by request")
    assert _codes(paused) == ["paused"]
    broke = replace(paused, status_reason="balance exhausted", funds_ok=False)
    assert _codes(broke) == ["suspended", "no_funds"]
    for final in (TaskStatus.FINISHED, TaskStatus.CANCELLED, TaskStatus.SUBMIT_FAILED):
        assert _codes(replace(READY, status=int(final))) == []
    assert _codes(replace(READY, status=int(TaskStatus.SUBMITTING))) == ["submitting"]

"""`serve` lowers its request threads' CPU priority, not its other threads' (cli/priority.py)."""

from __future__ import annotations

import os
import sys
import threading

from outdial.cli.priority import lower_thread_priority


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_only_the_lowered_thread_and_the_threads_it_starts_are_lowered() -> None:
    seen: dict[str, int | None] = {}
    main = threading.get_native_id()
    before = _nice(main)

    def child() -> None:
        seen["child"] = _nice(threading.get_native_id())

    def lowered() -> None:
        seen["returned"] = lower_thread_priority(3)
        seen["self"] = _nice(threading.get_native_id())
        t = threading.Thread(target=child)
        t.start()
        t.join()

    t = threading.Thread(target=lowered)
    t.start()
    t.join()
    if sys.platform != "linux":
        assert seen["returned"] is None
        return
    assert seen["returned"] == seen["self"] == min(19, before + 3)
    assert seen["child"] == seen["self"], "threads it starts inherit its priority"
    assert _nice(main) == before, "the other threads keep theirs"


def test_zero_steps_change_nothing() -> None:
    assert lower_thread_priority(0) is None

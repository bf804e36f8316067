"""The API's CPU priority below the dialer's.

On one host the API and the dialer share the cores. When requests keep every core busy, the
scheduler would share them out evenly, and a dialer with lines to fill would fall behind a
crowd of reads. ``serve`` lowers the priority of its request-handling threads by
``OUTDIAL_API_NICE`` steps (5), so the dialer (its child process, or workers on the same host)
and the database get their share first and the API takes what is left. Linux sets nice
values per thread: threads started before (the dialer's supervisor, which starts and restarts
the child) keep theirs, threads started after by the lowered thread (the request workers)
inherit it. Elsewhere nothing changes.
"""

from __future__ import annotations

import os
import sys
import threading


def lower_thread_priority(steps: int) -> int | None:
    """Lower the calling thread's priority by ``steps`` nice levels; its new nice value, or
    None where this is not done (not Linux, or ``steps`` 0)."""
    if steps <= 0 or sys.platform != "linux":
        return None
    tid = threading.get_native_id()
    nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps)
    os.setpriority(os.PRIO_PROCESS, tid, nice)
    return nice

"""``outdial sim``: the database's shared simulated timeline (``OUTDIAL_SIM_SPEED``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from outdial.clock import SystemClock
from outdial.config import Settings
from outdial.dialer.timeline import describe, timeline
from outdial.store.repo import Store

sim_app = typer.Typer(no_args_is_help=True, help="The shared simulated timeline.")


def _run(action: Callable[[Store, Settings], dict[str, Any]]) -> None:
    # outdial.cli.main registers this sub-app, so its helpers are imported when a command runs.
    from outdial.cli.main import _run as run

    run(action)


@sim_app.command("show")
def sim_show() -> None:
    """Print the database's simulated timeline (speed, when it started in real and simulated
    time, its simulated now), or {"timeline": null} when it runs on real time."""

    def action(store: Store, _s: Settings) -> dict[str, Any]:
        with store.read() as tx:
            found = tx.sim_clock()
        if found is None:
            return {"timeline": None}
        now = timeline(found, SystemClock()).now()
        return {"timeline": {**describe(found), "now": now.isoformat(timespec="seconds")}}

    _run(action)


@sim_app.command("reset")
def sim_reset() -> None:
    """Remove the simulated timeline, so the next process starts a new one at its own
    OUTDIAL_SIM_SPEED (or runs on real time). Stop every process using the database first:
    a running one keeps the old timeline. Times already stored are not changed."""

    def action(store: Store, _s: Settings) -> dict[str, Any]:
        with store.write() as tx:
            removed = tx.reset_sim_clock()
        return {"removed": describe(removed) if removed else None}

    _run(action)

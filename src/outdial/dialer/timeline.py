"""Which clock a process runs on: the system clock, or the database's shared simulated
timeline (``OUTDIAL_SIM_SPEED``).

- No timeline stored and speed 1: the system clock, and nothing is written.
- Speed N != 1: the first process to start writes the timeline (speed N, both epochs at its
  real now); every process then reads the stored row, so all of them (API, workers, push and
  SMS delivery, CLI) see the same simulated instant at the same real moment.
- A stored timeline wins for a process that does not set ``OUTDIAL_SIM_SPEED``. A process that
  sets it explicitly to another speed is refused: two speeds must never share one database
  (`outdial sim reset`, with every process stopped, starts over).
- A process that dials through a real carrier (``sip``) is refused on a database with a
  simulated timeline, and with ``OUTDIAL_SIM_SPEED`` set: real calls run on real time.

This is an edge: it reads Settings and is handed the base (system) clock.
"""

from __future__ import annotations

import math
from datetime import datetime

from outdial.clock import Clock, SimTimeline, SystemClock, epoch_ms, from_epoch_ms
from outdial.config import Settings
from outdial.errors import OutdialError
from outdial.store.records import SimClockRecord
from outdial.store.repo import Store

RESET_HINT = "stop every outdial process using this database and run `outdial sim reset`"


class SimClockConflict(OutdialError):
    """the database's simulated timeline does not fit this process"""


def timeline(record: SimClockRecord, base: Clock) -> SimTimeline:
    """The Clock of a stored timeline, read through ``base``."""
    return SimTimeline(
        base,
        record.speed,
        from_epoch_ms(record.real_epoch_ms),
        from_epoch_ms(record.sim_epoch_ms),
    )


def describe(record: SimClockRecord) -> dict[str, object]:
    """A stored timeline as the CLI prints it."""
    return {
        "speed": record.speed,
        "realEpoch": _iso(from_epoch_ms(record.real_epoch_ms)),
        "simEpoch": _iso(from_epoch_ms(record.sim_epoch_ms)),
    }


def shared_clock(
    settings: Settings, store: Store, *, base: Clock | None = None, dialing: bool = False
) -> Clock:
    """The clock this process must use on ``store``'s database; ``dialing`` says it places
    calls through ``settings.carrier``. Raises SimClockConflict when it must not run."""
    base = base or SystemClock()
    speed = settings.sim_speed or 1.0
    explicit = "sim_speed" in settings.model_fields_set
    real_carrier = dialing and settings.carrier != "sim"
    if real_carrier and speed != 1.0:
        raise SimClockConflict(
            f"OUTDIAL_SIM_SPEED={speed:g} applies only to the simulated carrier; "
            f"unset it to dial through {settings.carrier}"
        )
    with store.read() as tx:
        stored = tx.sim_clock()
    if stored is None:
        if speed == 1.0:
            return base
        now = epoch_ms(base.now())
        with store.write() as tx:
            stored = tx.start_sim_clock(speed, now, now)
    if real_carrier:
        raise SimClockConflict(
            f"this database runs on a simulated timeline (x{stored.speed:g}): the "
            f"{settings.carrier} carrier places real calls on real time and refuses it; use "
            f"another database, or {RESET_HINT}"
        )
    if explicit and not math.isclose(stored.speed, speed):
        raise SimClockConflict(
            f"this database runs on a simulated timeline at x{stored.speed:g} (started "
            f"{_iso(from_epoch_ms(stored.real_epoch_ms))}), but OUTDIAL_SIM_SPEED={speed:g}: "
            f"unset OUTDIAL_SIM_SPEED (or set it to {stored.speed:g}) to follow it, or "
            f"{RESET_HINT}"
        )
    return timeline(stored, base)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")

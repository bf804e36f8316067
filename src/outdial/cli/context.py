"""The CLI's services: one container per command, from the composition root."""

from __future__ import annotations

import getpass

from outdial.clock import Clock
from outdial.config import Settings
from outdial.notify.ssrf import PushTargets
from outdial.service.container import Services
from outdial.store.repo import Store


def actor() -> str:
    """The acting operator as the audit log keeps it: the login name."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"cli:{name}"


def services(store: Store, settings: Settings, clock: Clock | None = None) -> Services:
    """Every service for a command; ``clock`` defaults to the database's simulated timeline
    when it has one (the clock commands stamp times with), else the system clock."""
    if clock is None:
        from outdial.dialer.timeline import shared_clock

        clock = shared_clock(settings, store)
    return Services.build(
        settings,
        store,
        clock,
        actor=actor(),
        push_targets=PushTargets(allow_private=settings.push_allow_private),
    )

"""Running a dialer worker from settings: the carrier, the event loop and a thread to host it.

This is an edge: it reads Settings and the system clock once, then hands objects down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import SQLAlchemyError

from outdial.clock import Clock, SimTimeline, SystemClock
from outdial.config import Settings
from outdial.dialer.metrics import DialerCollector
from outdial.dialer.timeline import shared_clock
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import CAPACITY_RETRY_SECONDS, Dialer, DialerConfig
from outdial.domain.money import to_units
from outdial.errors import OutdialError
from outdial.notify.push import PushDelivery
from outdial.notify.sms import FileSmsSender, HttpSmsSender, SmsDelivery, SmsSender
from outdial.notify.ssrf import PushTargets
from outdial.script.intents import make_matcher
from outdial.service.recall import RecallService
from outdial.service.submit import SubmitPolicy
from outdial.store.repo import Store
from outdial.telephony.carrier import Carrier
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sim import SimCarrier, SimProfile
from outdial.telephony.voices import load_voices

log = logging.getLogger(__name__)


def worker_id(settings: Settings) -> str:
    return settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"


def timeline_speed(clock: Clock) -> float:
    """How many of the dialer's seconds pass per real second (1 unless simulated time is sped
    up on the shared timeline). Leases, liveness and the drain time are set in real seconds and
    scaled by it: a supervisor's kill timeout and a slow statement are real time at any speed."""
    return clock.speed if isinstance(clock, SimTimeline) else 1.0


def make_loop(clock: Clock) -> asyncio.AbstractEventLoop:
    """A real-time loop, or on a shared simulated timeline one whose timers run as fast."""
    if isinstance(clock, SimTimeline):
        return VirtualTimeLoop(speed=clock.speed)
    return asyncio.new_event_loop()


def dialer_clock(loop: asyncio.AbstractEventLoop, shared: Clock, start: datetime | None) -> Clock:
    """The dialer's clock: the shared timeline itself (so every process reads the same instant,
    and the sped-up loop's timers run at its speed), else the loop's time from ``start``."""
    if isinstance(shared, SimTimeline):
        return shared
    return LoopClock(loop, start or shared.now())


# How long a worker waits after a call ends for others ending about then (DialerConfig): a
# line stays free this much longer, 0.07% of a 30 s call, and at 100 calls ending a second one
# step serves two or three of them instead of one.
GATHER_SECONDS = 0.02

_PROFILE_FIELDS = {f.name for f in fields(SimProfile)} - {"seed", "instant", "max_cps"}


def load_sim_profile(path: str) -> dict[str, Any]:
    """Read a simulated network's behaviour from a YAML or JSON file of SimProfile fields
    (answer, busy, no_answer, unreachable, vacant, failed, voicemail weights; ring_seconds,
    talk_seconds, post_dial_seconds as [min, max]; personas as lists of lines)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise OutdialError(f"cannot read the simulator profile {path}: {exc}") from exc
    if not isinstance(data, dict) or not set(data) <= _PROFILE_FIELDS:
        unknown = sorted(set(data) - _PROFILE_FIELDS) if isinstance(data, dict) else data
        raise OutdialError(f"simulator profile {path}: unknown fields {unknown}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "personas":
            out[key] = tuple(tuple(str(line) for line in lines) for lines in value)
        elif isinstance(value, list):
            out[key] = tuple(float(v) for v in value)
        else:
            out[key] = float(value)
    return out


def make_carrier(settings: Settings, clock: Clock, store: Store | None = None) -> Carrier:
    if settings.carrier == "sim":
        shape = load_sim_profile(settings.sim_profile) if settings.sim_profile else {}
        profile = SimProfile(
            seed=settings.sim_seed,
            instant=settings.sim_instant,
            max_cps=settings.sim_max_cps,
            **shape,
        )
        # Built once per process, so a missing speech engine is logged once, not per call.
        voices = load_voices(settings.tts_engine, settings.tts_voice)
        return SimCarrier(clock, profile, RecordingStore(settings.recordings_dir), voices)
    if settings.carrier == "sip" and store is not None:
        from outdial.dialer.sip import sip_carrier

        return sip_carrier(settings, store, clock)
    raise OutdialError(f"unknown carrier {settings.carrier!r} (available: sim, sip)")


def make_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_sender == "http":
        if not settings.sms_http_url:
            raise OutdialError("OUTDIAL_SMS_HTTP_URL is required with OUTDIAL_SMS_SENDER=http")
        token = settings.sms_http_token.get_secret_value() if settings.sms_http_token else None
        return HttpSmsSender(settings.sms_http_url, token)
    if settings.sms_sender == "file":
        return FileSmsSender(settings.sms_file)
    raise OutdialError(f"unknown SMS sender {settings.sms_sender!r} (file, http)")


async def _until_stopped(
    name: str, run: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Run a delivery loop until ``stop``, starting it again after database failures (a
    restarted or unreachable database must not end delivery for the life of the process)."""
    wait = 0.5
    while not stop.is_set():
        try:
            await run(stop)
        except SQLAlchemyError as exc:
            log.warning("%s: database unavailable (%s); retrying", name, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            wait = min(wait * 2, 5.0)
        else:
            return


class PushThread:
    """Delivers push reports and SMS on its own real-time loop (never on an accelerated one,
    where network timeouts would shrink with the simulated clock); times are stamped and
    retries scheduled on ``clock``, the process's shared clock."""

    def __init__(
        self,
        store: Store,
        sms: SmsSender | None = None,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.sms = sms
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="outdial-push", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            self.loop.run_until_complete(self._run(self._stop))
        except Exception:
            log.exception("push delivery stopped on an error")
        finally:
            self.loop.close()

    async def _run(self, stop: asyncio.Event) -> None:
        speed = timeline_speed(self.clock)
        async with PushDelivery(
            self.store,
            self.clock,
            wall_clock=SystemClock(),
            speed=speed,
            first_backoff=self.settings.push_first_backoff_seconds,
            max_backoff=self.settings.push_max_backoff_seconds,
            targets=PushTargets(allow_private=self.settings.push_allow_private),
        ) as delivery:
            jobs = [_until_stopped("push delivery", delivery.run, stop)]
            if self.sms is not None:
                sms = SmsDelivery(self.store, self.clock, self.sms)
                jobs.append(_until_stopped("SMS delivery", sms.run, stop))
            await asyncio.gather(*jobs)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)


class WorkerThread:
    """A dialer on its own thread and event loop, stoppable from any thread."""

    def __init__(self, settings: Settings, store: Store, start: datetime | None = None) -> None:
        self.settings = settings
        self.store = store
        shared = shared_clock(settings, store, dialing=True)
        self.loop = make_loop(shared)
        self.clock = dialer_clock(self.loop, shared, start)
        speed = timeline_speed(shared)
        self.carrier = make_carrier(settings, self.clock, store)
        self.dialer = Dialer(
            store,
            self.carrier,
            self.clock,
            DialerConfig(
                worker_id=worker_id(settings),
                lease_seconds=settings.lease_seconds * speed,
                dead_after_seconds=settings.worker_dead_seconds * speed,
                drain_seconds=settings.drain_seconds * speed,
                recover_every_seconds=min(15.0, settings.worker_dead_seconds / 2) * speed,
                batch_size=settings.dialer_batch,
                flush_size=settings.dialer_flush,
                min_balance=to_units(settings.min_balance),
                # Real-time intervals: on an accelerated timeline they stay as short in
                # real time, and the work per real second grows with the speed.
                capacity_retry_seconds=CAPACITY_RETRY_SECONDS * speed,
                gather_seconds=GATHER_SECONDS * speed,
            ),
            recalls=RecallService(store, self.clock, SubmitPolicy.from_settings(settings)),
            matcher=make_matcher(settings.intent_matcher),
        )
        self.push = (
            PushThread(store, make_sms_sender(settings), shared, settings)
            if settings.push_enabled
            else None
        )
        self.metrics = DialerCollector(self.dialer, settings.carrier)
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="outdial-dialer", daemon=True)
        self._ready = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            self.loop.run_until_complete(self.dialer.run(self._stop))
        except Exception:
            log.exception("the dialer stopped on an error")
            raise
        finally:
            self.loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self.push is not None:
            self.push.start()
        log.info("dialer started", extra={"worker": self.dialer.config.worker_id})

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking new calls, let in-flight ones finish for the drain time, end the rest
        as interrupted, write everything, and return."""
        if timeout is None:
            timeout = self.settings.drain_seconds + 30.0
        self.request_stop()
        self._thread.join(timeout)
        if self.push is not None:
            self.push.stop(timeout)
        # The SIP carrier holds a SIP stack and speech engines with native threads: release
        # them before the interpreter exits (see SipCarrier.close).
        close = getattr(self.carrier, "close", None)
        if close is not None and not self._thread.is_alive():
            close()

    def request_stop(self) -> None:
        """Stop claiming now and begin the drain; returns at once (``stop`` waits)."""
        if self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)

    def join(self) -> None:
        self._thread.join()

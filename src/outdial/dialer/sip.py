"""Building the SIP carrier from settings and the trunks kept in the database."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from outdial.clock import Clock, epoch_ms
from outdial.dialer.trunk_lines import SharedTrunkLines
from outdial.dialer.trunk_pacing import SharedTrunkPacing
from outdial.domain.conversation import Turn
from outdial.speech.asr import asr_from_settings
from outdial.speech.tts import make_tts
from outdial.telephony.amd import AmdSettings
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip.carrier import SipCarrier, Trunk, UnknownTrunk
from outdial.telephony.sip.register import Registration, RegistrationState
from outdial.telephony.sip.stack import SipStack

if TYPE_CHECKING:
    from outdial.config import Settings
    from outdial.store.records import TrunkRecord
    from outdial.store.repo import Store

log = logging.getLogger(__name__)
TRUNK_CACHE_SECONDS = 30.0  # edits to a trunk reach running workers within this


def trunk_of(record: TrunkRecord) -> Trunk:
    return Trunk(
        name=record.name,
        host=record.host,
        port=record.port,
        transport=record.transport,
        username=record.username,
        password=record.password,
        domain=record.domain,
        caller_id=record.caller_id,
        dial_prefix=record.dial_prefix,
        max_cps=record.max_cps,
        max_calls=record.max_calls,
        register=bool(record.register),
        register_expires=record.register_expires,
        transfer=record.transfer,
    )


class TrunkDirectory:
    """Trunks by name from the database, cached briefly; "" means the default trunk."""

    def __init__(self, store: Store, default: str) -> None:
        self.store, self.default = store, default
        self._cache: dict[str, tuple[float, Trunk]] = {}

    def __call__(self, name: str) -> Trunk:
        name = name or self.default
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < TRUNK_CACHE_SECONDS:
            return hit[1]
        with self.store.read() as tx:
            record = tx.trunk(name)
        if record is None:
            raise UnknownTrunk(f"no SIP trunk named {name!r} (outdial trunk add)")
        trunk = trunk_of(record)
        self._cache[name] = (time.monotonic(), trunk)
        return trunk


def sip_carrier(
    settings: Settings, store: Store, clock: Clock, on_turn: Callable[[Turn], None] | None = None
) -> SipCarrier:
    stack = SipStack(settings.sip_host, settings.sip_port).start()
    carrier = SipCarrier(
        stack,
        TrunkDirectory(store, settings.sip_trunk),
        clock,
        make_tts(settings.tts_engine, settings.tts_voice),
        asr_from_settings(settings),  # as `outdial script test --audio` builds it
        RecordingStore(settings.recordings_dir),
        media_host=settings.sip_media_host,
        stereo_recordings=settings.sip_stereo_recordings,
        barge_in=settings.sip_barge_in,
        symmetric_rtp=settings.sip_symmetric_rtp,
        rtp_timeout=settings.sip_rtp_timeout,
        keepalive=settings.sip_keepalive,
        lines=SharedTrunkLines(store, settings.worker_id or "worker", clock),
        pacing=SharedTrunkPacing(store, clock),
        on_turn=on_turn,
        amd=amd_settings(settings),
    )
    carrier.registrations = register_trunks(stack, store, clock)
    return carrier


def amd_settings(settings: Settings) -> AmdSettings:
    """The detector's thresholds from OUTDIAL_AMD_* (checked when the settings were read)."""
    silence = min(AmdSettings().silence_seconds, settings.amd_max_seconds)
    return AmdSettings(
        machine_speech=settings.amd_machine_speech_seconds,
        end_silence=settings.amd_end_silence_seconds,
        silence_seconds=silence,
        max_seconds=settings.amd_max_seconds,
    )


def register_trunks(
    stack: SipStack, store: Store, clock: Clock, *, retry_after: float = 30.0
) -> list[Registration]:
    """Start a registration for every trunk that asks for one; each state change is written to
    the trunk's row (``outdial trunk list`` shows it) by one writer thread, off the reactor."""
    with store.read() as tx:
        records = [t for t in tx.trunks() if t.register]
    notes: queue.SimpleQueue[tuple[str, RegistrationState]] = queue.SimpleQueue()

    def write() -> None:
        while True:
            name, state = notes.get()
            try:
                with store.write() as tx:
                    tx.set_registration(name, state.state, state.code, epoch_ms(clock.now()))
            except Exception:  # a note lost is shown stale, never a stopped worker
                log.exception("could not record a trunk's registration state")

    out: list[Registration] = []
    for record in records:
        registration = Registration(
            stack, (record.host, record.port), record.username or record.caller_id or "outdial",
            domain=record.domain, username=record.username, password=record.password,
            expires=record.register_expires, retry_after=retry_after, transport=record.transport,
            on_change=functools.partial(lambda name, state: notes.put((name, state)), record.name),
        )  # fmt: skip
        out.append(registration)
    if out:
        threading.Thread(target=write, name="trunk-registration-notes", daemon=True).start()
        for registration in out:
            registration.start()
    return out

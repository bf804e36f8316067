"""The SIP carrier: places each call on a SIP trunk and runs the conversation over RTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from outdial.clock import Clock
from outdial.domain.conversation import (
    CalleeHungUp,
    CallRequest,
    Conversation,
    Turn,
    screens_voicemail,
)
from outdial.domain.outcome import Outcome, outcome_for_sip
from outdial.errors import CallRejected, CarrierUnavailable
from outdial.speech.asr import AsrEngine
from outdial.speech.tts import TtsEngine
from outdial.telephony.amd import AmdSettings
from outdial.telephony.carrier import CallResult
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip import sdp
from outdial.telephony.sip.bridge import Bridge, Bridged, Leg, sip_uri_leg
from outdial.telephony.sip.codecs import codec_for
from outdial.telephony.sip.liveness import Liveness
from outdial.telephony.sip.recorder import Recorder
from outdial.telephony.sip.register import Registration
from outdial.telephony.sip.rtp import JITTER_BUCKETS, RtpSession, open_rtp
from outdial.telephony.sip.screening import Screening
from outdial.telephony.sip.session import SipCallSession
from outdial.telephony.sip.stack import Dial, SipCall, SipEvent, SipStack
from outdial.telephony.talk import converse

log = logging.getLogger(__name__)

# Transfer results after which the callee is no longer ours to speak to ("accepted": the far
# end took the REFER and may have moved the call without reporting back).
GONE = ("transferred", "bridged", "accepted")
HANGUP_GRACE = 5.0  # seconds to wait for the stack to confirm a CANCEL or BYE
TRANSFER_WAIT = 30.0  # seconds a transfer's target may take to answer before we let go


@dataclass(frozen=True)
class Trunk:
    """Where calls go and how they are presented."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    domain: str | None = None  # host part of the Request-URI/To (default: host)
    caller_id: str | None = None  # fixed From user; else the task's displayNum
    dial_prefix: str = ""  # put before every number, e.g. "+" or a trunk code
    max_cps: float | None = None
    max_calls: int | None = None
    register: bool = False  # workers keep a REGISTER binding (register.py)
    register_expires: int = 300
    transfer: str = "refer"  # a template's transfer: "refer" (blind) or "bridge" (bridge.py)

    def dial_string(self, callee: str) -> str:
        """The Request-URI user: the callee's digits (E.164 without +) after the prefix."""
        return f"{self.dial_prefix}{callee.lstrip('+')}"


class TrunkLines(Protocol):
    """Where a trunk's concurrent calls are counted (see dialer/trunk_lines.py)."""

    def hold(self, trunk: Trunk, seconds: float) -> AbstractAsyncContextManager[None]: ...


class TrunkPacing(Protocol):
    """Where a trunk's call starts are spaced under its max_cps (see dialer/trunk_pacing.py)."""

    async def turn(self, trunk: Trunk) -> None: ...


class UnknownTrunk(CallRejected):
    """A call names a trunk that is not configured (final: no retry can place it)."""


@dataclass
class MediaTotals:
    """RTP figures summed over finished calls: what ``bench/sip_concurrency.py`` reports."""

    sent: int = 0
    late: int = 0
    received: int = 0
    lost: int = 0
    jitter_ms: list[int] = field(default_factory=lambda: [0] * JITTER_BUCKETS)

    def add(self, rtp: RtpSession) -> None:
        self.sent += rtp.sent
        self.late += rtp.late
        self.received += rtp.received
        self.lost += rtp.lost
        self.jitter_ms = [a + b for a, b in zip(self.jitter_ms, rtp.jitter_ms, strict=True)]

    def jitter_percentile(self, q: float) -> int:
        """The ``q`` quantile (0-1) of the send-gap deviation from 20 ms, in whole ms."""
        total = sum(self.jitter_ms)
        if not total:
            return 0
        seen = 0
        for ms, count in enumerate(self.jitter_ms):
            seen += count
            if seen >= q * total:
                return ms
        return len(self.jitter_ms) - 1


@dataclass
class _Progress:
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    cancelled_at: datetime | None = None  # when our CANCEL left: the end of the ring
    final: SipEvent | None = None


class SipCarrier:
    """A Carrier over a SIP trunk (sippy signalling, asyncio RTP, TTS and ASR engines)."""

    def __init__(
        self,
        stack: SipStack,
        trunk: Trunk | Callable[[str], Trunk],
        clock: Clock,
        tts: TtsEngine,
        asr: AsrEngine,
        recordings: RecordingStore | None = None,
        *,
        media_host: str | None = None,
        stereo_recordings: bool = False,
        on_turn: Callable[[Turn], None] | None = None,
        barge_in: bool = True,
        symmetric_rtp: bool = True,
        rtp_timeout: float = 30.0,
        keepalive: float = 60.0,
        lines: TrunkLines | None = None,
        pacing: TrunkPacing | None = None,
        amd: AmdSettings | None = None,
    ) -> None:
        # Answering machine detection, for templates that ask for it (screening.py).
        self.amd = amd or AmdSettings()
        # A trunk's max_calls: shared by every worker (lines, dialer/trunk_lines.py) or, without
        # it, counted in this process.
        self.lines = lines
        # A trunk's max_cps for every worker (pacing, dialer/trunk_pacing.py); without it the
        # dialer paces this worker's calls alone.
        self.pacing = pacing
        # Dead-line checks on answered calls (liveness.py); 0 turns one off.
        self.symmetric_rtp, self.rtp_timeout, self.keepalive = symmetric_rtp, rtp_timeout, keepalive
        # Barge-in assumes the trunk does not send our own audio back (networks cancel echo);
        # against a far end that echoes it, the prompt would interrupt itself.
        self.barge_in = barge_in
        self.on_turn = on_turn  # sees each transcript line as it happens (outdial call test)
        # One fixed trunk, or a lookup by name ("" = the default) for per-account trunks.
        self._trunk = (lambda _name: trunk) if isinstance(trunk, Trunk) else trunk
        self.clock = clock
        self.stack = stack
        self.tts, self.asr, self.recordings = tts, asr, recordings
        self.media_host = media_host or (stack.bound[0] if stack.bound else "127.0.0.1")
        self.stereo_recordings = stereo_recordings
        try:  # the dialer paces by the default trunk's rate (accounts may all have their own)
            self.max_cps = self._trunk("").max_cps
        except UnknownTrunk:
            self.max_cps = None
        self._lines: dict[str, asyncio.Semaphore] = {}
        self.placed = 0
        self.early_media = 0  # calls whose media started on a provisional response
        self.codecs: Counter[int] = Counter()  # payload types used, per call
        self.dead_lines: Counter[str] = Counter()  # calls ended by liveness.py, per reason
        self.latched = 0  # calls whose media came from elsewhere than their SDP said
        self.bridged = 0  # bridged transfers attempted (bridge.py)
        self.screened: Counter[str] = Counter()  # screened calls, per verdict
        self.media = MediaTotals()  # every finished call's RTP timing, summed (benches)
        self.registrations: list[Registration] = []  # removed from the registrars on close

    def close(self) -> None:
        """Stop the SIP stack, then the speech engines' threads (a process exits cleanly
        only with native decoders released before the interpreter tears down)."""
        for registration in self.registrations:
            registration.stop()
        self.stack.stop()
        self.asr.close()
        self.tts.close()

    async def place(
        self, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult:
        trunk = self._trunk(request.trunk)
        if not trunk.max_calls:
            return await self._place(trunk, request, conversation, stop)
        async with self._line(trunk, request.max_ringing + request.max_talk):
            return await self._place(trunk, request, conversation, stop)

    async def _place(
        self, trunk: Trunk, request: CallRequest, conversation: Conversation, stop: asyncio.Event
    ) -> CallResult:
        if self.pacing is not None:
            await self.pacing.turn(trunk)
        self.placed += 1
        started = self.clock.now()
        try:
            rtp = await open_rtp(self.media_host, symmetric=self.symmetric_rtp)
        except OSError as exc:
            # No media port (exhausted, or the address went away): nothing was sent yet.
            raise CarrierUnavailable(f"cannot open an RTP port: {exc.strerror}") from exc
        call = SipCall(self.stack, asyncio.get_running_loop())
        progress = _Progress()
        try:
            port = rtp.transport.get_extra_info("sockname")[1] if rtp.transport else 0
            call.start(
                Dial(
                    to_user=trunk.dial_string(request.callee),
                    next_hop=(trunk.host, trunk.port),
                    sdp=sdp.offer(self.media_host, port, secrets.randbits(31)),
                    from_user=trunk.caller_id or request.caller_id or "anonymous",
                    domain=trunk.domain,
                    transport=trunk.transport,
                    username=trunk.username,
                    password=trunk.password,
                    give_up_after=request.max_ringing + 30,
                )
            )
            answered = await self._ring(call, rtp, request, stop, progress)
            if not answered:
                return self._unanswered(started, progress)
            return await self._talk(
                call, rtp, request, conversation, stop, started, progress, trunk
            )
        finally:
            if rtp.latched is not None and rtp.latched != rtp.signalled:
                self.latched += 1
            self.media.add(rtp)
            rtp.close()

    async def _ring(
        self,
        call: SipCall,
        rtp: RtpSession,
        request: CallRequest,
        stop: asyncio.Event,
        progress: _Progress,
    ) -> bool:
        """Wait for the answer; CANCEL at maxRingingTime or on stop. True when answered."""
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            event = await _next(call, stop, timeout)
            if event is None:  # ring limit, or the worker is stopping
                progress.final = SipEvent("failed", 487, "cancelled")
                # The ring ends now, not when the 487 comes back (if it ever does).
                progress.cancelled_at = self.clock.now()
                call.hangup()
                await _until_dead(call)
                return False
            if event.kind in ("ringing", "progress"):
                if progress.ringing_at is None:
                    progress.ringing_at = self.clock.now()
                    deadline = loop.time() + request.max_ringing
                if event.sdp and rtp.remote is None and _start_media(rtp, event.sdp):
                    self.early_media += 1  # announcements, ringback: heard by the recorder
            elif event.kind == "connected":
                progress.answered_at = self.clock.now()
                if event.sdp:
                    _start_media(rtp, event.sdp)
                self.codecs[rtp.pt] += 1
                return True
            elif event.kind in ("failed", "dead", "disconnected"):
                progress.final = event
                return False

    def _unanswered(self, started: datetime, progress: _Progress) -> CallResult:
        final = progress.final or SipEvent("failed", 500)
        code = final.code or 500
        outcome = outcome_for_sip(code)
        if code == 408 and progress.ringing_at is not None:
            outcome = Outcome.NO_ANSWER  # it rang: a timeout there is an unanswered call
        side = "bot" if code == 487 else None
        return CallResult(
            outcome, code, started, progress.cancelled_at or self.clock.now(),
            ringing_at=progress.ringing_at, hangup_side=side,
        )  # fmt: skip

    async def _talk(
        self,
        call: SipCall,
        rtp: RtpSession,
        request: CallRequest,
        conversation: Conversation,
        stop: asyncio.Event,
        started: datetime,
        progress: _Progress,
        trunk: Trunk,
    ) -> CallResult:
        recorder = None
        if request.record and self.recordings is not None:
            recorder = Recorder(str(self.recordings.directory))
        session = SipCallSession(
            rtp, self.tts, self.asr, recorder, on_turn=self.on_turn, barge_in=self.barge_in
        )
        rtp.on_audio, rtp.on_dtmf = session.on_audio, session.on_dtmf
        if recorder is not None:
            rtp.on_sent = recorder.said
        screens = screens_voicemail(conversation)
        screening = Screening(screens, session, self.amd) if screens is not None else None
        watcher = asyncio.ensure_future(_watch_hangup(call, session))
        recording = None
        line = Liveness(
            stop, rtp.quiet_for, call.ping, rtp_timeout=self.rtp_timeout, keepalive=self.keepalive
        )
        try:
            try:
                with line:
                    outcome, side = await converse(
                        screening or conversation, session, request, line.stop, request.max_talk
                    )
            finally:
                watcher.cancel()
            if side == "system" and line.reason is not None:
                side = line.reason  # "media" or "session": the line died, we hung up
                self.dead_lines[side] += 1
            transfer = None
            if outcome.transfer_to and side == "bot" and not session.hung_up.is_set():
                if trunk.transfer == "bridge":
                    talked = (self.clock.now() - (progress.answered_at or started)).total_seconds()
                    bridged = await self._bridge(
                        call, rtp, trunk, request, outcome.transfer_to, recorder, session,
                        stop, max(0.0, request.max_talk - talked),
                    )  # fmt: skip
                    transfer, side = bridged.result, bridged.side or side
                else:
                    uri = transfer_uri(trunk, outcome.transfer_to)
                    transfer = await _transfer(call, uri, session)
                    if transfer == "transferred":
                        side = "transfer"
                fallback = outcome.transfer_fallback
                if transfer not in GONE and fallback is not None and not stop.is_set():
                    watcher = asyncio.ensure_future(_watch_hangup(call, session))
                    try:
                        with contextlib.suppress(CalleeHungUp):  # the callee is still ours
                            await session.say(*fallback)
                    finally:
                        watcher.cancel()
            if not session.hung_up.is_set():
                call.hangup()  # BYE: the bot finished, the limit was reached, or we stop
            await _until_dead(call)
            ended = self.clock.now()
            rtp.on_audio, rtp.on_sent = _ignore, None  # the call is over for the recording
            if recorder is not None and self.recordings is not None:
                recording = recorder.save(self.recordings, stereo=self.stereo_recordings)
        finally:
            rtp.on_audio, rtp.on_sent = _ignore, None
            if recorder is not None:
                recorder.close()
        machine = screening is not None and screening.machine
        if screening is not None and screening.decision is not None:
            self.screened[screening.decision.verdict.value] += 1
        return CallResult(
            Outcome.VOICEMAIL if machine else Outcome.CONNECTED,
            200,
            started,
            ended,
            ringing_at=progress.ringing_at or progress.answered_at,
            answered_at=progress.answered_at,
            hangup_side="callee" if session.hung_up.is_set() else side,
            transcript=session.transcript,
            conversation=outcome,
            recording=recording,
            transfer=transfer,
        )

    async def _bridge(
        self,
        call: SipCall,
        rtp: RtpSession,
        trunk: Trunk,
        request: CallRequest,
        to: str,
        recorder: Recorder | None,
        session: SipCallSession,
        stop: asyncio.Event,
        talk_left: float,
    ) -> Bridged:
        leg = target_leg(trunk, to)
        if leg is None:
            return Bridged("invalid target")
        self.bridged += 1
        async with contextlib.AsyncExitStack() as held:
            # A second leg on the trunk takes one of its max_calls lines too; waiting for one
            # is bounded by the ring limit (every call of a full trunk could be waiting).
            if trunk.max_calls and leg.next_hop[0] in (trunk.host, trunk.domain):
                try:
                    async with asyncio.timeout(request.max_ringing):
                        await held.enter_async_context(
                            self._line(trunk, request.max_ringing + talk_left)
                        )
                except TimeoutError:
                    return Bridged("no line")
            return await Bridge(self.stack, self.media_host, symmetric=self.symmetric_rtp).run(
                call, rtp, leg,
                from_user=trunk.caller_id or request.caller_id or "anonymous",
                recorder=recorder, ring_limit=request.max_ringing, talk_limit=talk_left,
                stop=stop, on_callee_hangup=session.hung_up.set,
            )  # fmt: skip

    def _line(self, trunk: Trunk, seconds: float) -> AbstractAsyncContextManager[object]:
        """One of the trunk's max_calls lines: shared across workers, or this worker's."""
        if self.lines is not None:
            return self.lines.hold(trunk, seconds)
        assert trunk.max_calls
        return self._lines.setdefault(trunk.name, asyncio.Semaphore(trunk.max_calls))


def _ignore(_: object) -> None:
    pass


def target_leg(trunk: Trunk, to: str) -> Leg | None:
    """Where a bridged transfer's second INVITE goes: a number through the trunk (with its
    prefix, credentials and transport), a SIP URI to its own host (with the trunk's
    credentials only when that host is the trunk's); None for a URI we cannot dial."""
    if not to.lower().startswith(("sip:", "sips:")):
        return Leg(
            trunk.dial_string(to), (trunk.host, trunk.port), trunk.domain, trunk.transport,
            trunk.username, trunk.password,
        )  # fmt: skip
    leg = sip_uri_leg(to)
    if leg is not None and leg.next_hop[0] in (trunk.host, trunk.domain):
        leg = replace(leg, username=trunk.username, password=trunk.password)
    return leg


def transfer_uri(trunk: Trunk, to: str) -> str:
    """Where a template's transfer goes: a SIP URI as given, a number through the trunk."""
    if to.lower().startswith(("sip:", "sips:")):
        return to
    host = trunk.domain or (trunk.host if trunk.port == 5060 else f"{trunk.host}:{trunk.port}")
    return f"sip:{trunk.dial_string(to)}@{host}"


async def _transfer(call: SipCall, target: str, session: SipCallSession) -> str:
    """A blind transfer (RFC 3515): REFER, then the NOTIFY that reports the new leg's result.

    "transferred" (the target answered: a sipfrag 2xx), "refused <code>" (the REFER itself was
    rejected), "failed <code>" (the target was busy, did not answer ...), or "accepted" (202,
    then no final report before the far end ended our leg or the wait ran out). Anything but
    "transferred" falls back to hanging up, as before transfers existed.
    """
    code = await call.refer(target)
    if code is None:
        return "failed"
    if code >= 300:
        return f"refused {code}"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TRANSFER_WAIT):
            while True:
                event = await call.events.get()
                if event.kind == "notify" and event.code is not None and event.code >= 200:
                    return "transferred" if event.code < 300 else f"failed {event.code}"
                if event.kind in ("disconnected", "dead", "failed"):
                    if event.origin != "local":
                        session.hung_up.set()
                    call.events.put_nowait(event)  # for _until_dead
                    return "accepted"
    return "accepted"


def _start_media(rtp: RtpSession, answer: str) -> bool:
    try:
        media = sdp.answer(answer)
    except sdp.SdpError as exc:
        log.warning("unusable SDP from the far end: %s", exc)
        return False
    if rtp.signalled != (media.ip, media.port) or rtp.pt != media.codec:
        rtp.start((media.ip, media.port), codec_for(media.codec), media.codec, media.dtmf)
    return True


async def _next(call: SipCall, stop: asyncio.Event, timeout: float | None) -> SipEvent | None:
    getter = asyncio.ensure_future(call.events.get())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        return getter.result() if getter in done else None
    finally:
        getter.cancel()
        stopper.cancel()


async def _watch_hangup(call: SipCall, session: SipCallSession) -> None:
    while True:
        event = await call.events.get()
        if event.kind in ("disconnected", "dead", "failed"):
            if event.origin != "local":
                session.hung_up.set()
            return


async def _until_dead(call: SipCall) -> None:
    """Wait (briefly) for the stack to finish the dialog, so no call outlives its record."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HANGUP_GRACE):
            while (await call.events.get()).kind != "dead":
                pass

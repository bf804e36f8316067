"""Bridged transfer: a second call to the transfer target, its media relayed to the callee.

For trunks that do not take REFER (``Trunk.transfer == "bridge"``). The target is called with
a second INVITE (a number through the same trunk, with its prefix; a SIP URI to the URI's
host) while the callee hears ringback (``ringback``); it rings up to the task's ring limit
(CANCEL, then "no answer"). Once it answers, RTP is relayed both ways until either side hangs
up, and the other side gets a BYE. One codec on both legs: payloads are forwarded as they come
under each leg's own SSRC, sequence and timestamps (``RtpSession.forward``), no encoding on
the way; different codecs: decoded, then queued to the other leg's paced sender and encoded
there.
Received audio is still decoded for the recording, which keeps its two tracks: the callee,
and what the callee heard (our prompts, then the target).

RFC 4733 keys are not relayed (a target's IVR would not hear the callee's keys), and the
liveness checks of the first leg (RTP timeout, OPTIONS) do not run while bridged: the bridge
ends on a BYE from either side, the talk limit, or the worker stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from outdial.speech.audio import Audio
from outdial.telephony.sip import sdp
from outdial.telephony.sip.recorder import Recorder
from outdial.telephony.sip.rtp import RtpSession, open_rtp
from outdial.telephony.sip.stack import Dial, SipCall, SipEvent, SipStack

HANGUP_GRACE = 5.0  # seconds to wait for the stack to confirm a CANCEL or BYE
MAX_QUEUED_FRAMES = 5  # transcoding: older frames are dropped, so the delay cannot grow
ENDED = ("failed", "dead", "disconnected")
_SIP_URI = re.compile(
    r"sips?:(?:(?P<user>[^@;?]+)@)?(?P<host>[^:;?>]+)(?::(?P<port>\d+))?(?P<params>[^?>]*)", re.I
)


@dataclass(frozen=True, slots=True)
class Leg:
    """Where the second INVITE goes (from ``target_leg``)."""

    to_user: str
    next_hop: tuple[str, int]
    domain: str | None
    transport: str
    username: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class Bridged:
    """How a bridged transfer went: ``result`` for the record ("bridged", "no answer",
    "failed 486", "callee hung up"...), and who ended a bridged
    call ("callee", "target", "system" at the talk limit or on stop; None when it did not)."""

    result: str
    side: str | None = None


def sip_uri_leg(uri: str) -> Leg | None:
    """A SIP URI target as a leg sent straight to its host (None when it is not one)."""
    found = _SIP_URI.fullmatch(uri.strip())
    if found is None or not found.group("user"):
        return None
    params = found.group("params").lower()
    transport = "tcp" if ";transport=tcp" in params else "udp"
    port = int(found.group("port") or 5060)
    if not 0 < port < 65536:
        return None
    return Leg(found.group("user"), (found.group("host"), port), None, transport, None, None)


class Bridge:
    """Runs one bridged transfer on an answered call."""

    def __init__(self, stack: SipStack, media_host: str, *, symmetric: bool = True) -> None:
        self.stack, self.media_host, self.symmetric = stack, media_host, symmetric

    async def run(
        self,
        call: SipCall,
        rtp: RtpSession,
        leg: Leg,
        *,
        from_user: str,
        recorder: Recorder | None,
        ring_limit: float,
        talk_limit: float,
        stop: asyncio.Event,
        on_callee_hangup: Callable[[], None],
    ) -> Bridged:
        """Call ``leg``, relay media once it answers, until one side hangs up.

        ``call``'s events are read here (nobody else may read them meanwhile); a callee who
        hangs up is reported through ``on_callee_hangup``. The target's leg is over (BYE or
        CANCEL sent and confirmed, or the grace passed) when this returns; the callee's is not.
        """
        try:
            target_rtp = await open_rtp(self.media_host, symmetric=self.symmetric)
        except OSError:
            return Bridged("failed")
        target = SipCall(self.stack, asyncio.get_running_loop())
        try:
            port = target_rtp.transport.get_extra_info("sockname")[1] if target_rtp.transport else 0
            target.start(
                Dial(
                    to_user=leg.to_user,
                    next_hop=leg.next_hop,
                    sdp=sdp.offer(self.media_host, port, secrets.randbits(31)),
                    from_user=from_user,
                    domain=leg.domain,
                    transport=leg.transport,
                    username=leg.username,
                    password=leg.password,
                    give_up_after=ring_limit + 30,
                )
            )
            ringing = asyncio.ensure_future(_ring_back(rtp))
            try:
                answer = await self._ring(call, target, ring_limit, stop, on_callee_hangup)
            finally:
                ringing.cancel()
                rtp.stop_playing()
            if isinstance(answer, Bridged):
                return answer
            if not _start(target_rtp, answer):
                target.hangup()
                await _until_dead(target)
                return Bridged("failed 488")
            self._relay(rtp, target_rtp, recorder)
            try:
                side = await self._talk(call, target, talk_limit, stop, on_callee_hangup)
            finally:
                _unrelay(rtp, target_rtp)
            return Bridged("bridged", side)
        except asyncio.CancelledError:
            target.hangup()  # the call's task is cancelled: the target's leg must not linger
            raise
        finally:
            target_rtp.close()

    async def _ring(
        self,
        call: SipCall,
        target: SipCall,
        ring_limit: float,
        stop: asyncio.Event,
        on_callee_hangup: Callable[[], None],
    ) -> str | Bridged:
        """The target's answer SDP once it answers, or how the attempt ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ring_limit
        while True:
            got = await _first(call, target, stop, max(0.0, deadline - loop.time()))
            outcome: Bridged | None = None
            # The callee's events first: one who left as the target answered is not bridged.
            for who, event in sorted(got, key=lambda g: g[0] is not call):
                if who is call and event.kind in ENDED:
                    if event.origin != "local":
                        on_callee_hangup()
                    call.events.put_nowait(event)  # for the carrier's wait for the end
                    outcome = Bridged("callee hung up")
                elif who is target and event.kind == "connected" and outcome is None:
                    return event.sdp or ""
                elif who is target and event.kind in ENDED:
                    code = event.code if event.kind == "failed" else None
                    await _until_dead(target)
                    return Bridged(f"failed {code}" if code else "failed")
            if not got or outcome is not None:
                target.hangup()  # CANCEL: the ring limit, the worker stopping, or the callee left
                await _until_dead(target)
                if outcome is not None:
                    return outcome
                return Bridged("no answer" if not stop.is_set() else "cancelled")

    async def _talk(
        self,
        call: SipCall,
        target: SipCall,
        talk_limit: float,
        stop: asyncio.Event,
        on_callee_hangup: Callable[[], None],
    ) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + talk_limit
        side = "system"
        while True:
            got = await _first(call, target, stop, max(0.0, deadline - loop.time()))
            ended = [(who, e) for who, e in got if e.kind in ENDED]
            if not got or ended:
                break
        for who, event in ended:
            if who is call:
                if event.origin != "local":
                    on_callee_hangup()
                call.events.put_nowait(event)
                side = "callee"
            elif side == "system":
                side = "target"  # the target hung up: the callee gets our BYE
        target.hangup()
        await _until_dead(target)
        return side

    @staticmethod
    def _relay(callee: RtpSession, target: RtpSession, recorder: Recorder | None) -> None:
        callee.stop_playing()
        heard = recorder.heard if recorder is not None else _ignore
        said = recorder.said if recorder is not None else _ignore
        if callee.pt == target.pt:  # static payload types: the same number is the same codec
            callee.relay, target.relay = target.forward, callee.forward
            callee.relaying = target.relaying = True
            callee.on_audio, callee.on_sent = heard, None
            target.on_audio = said
            return
        to_target, to_callee = _feed(target), _feed(callee)

        def from_callee(frame: Audio) -> None:
            heard(frame)
            to_target(frame)

        callee.on_audio, callee.on_sent = from_callee, said
        target.on_audio = to_callee


def ringback() -> Audio:
    """One cadence of ringback: 425 Hz for 1 s, then 4 s of silence (ITU-T E.180's usual
    tone), at -20 dBFS."""
    t = np.arange(8000) / 8000
    tone = (0.1 * 32767 * np.sin(2 * np.pi * 425 * t)).astype("<i2")
    return Audio(np.concatenate([tone, np.zeros(4 * 8000, dtype="<i2")]).tobytes(), 8000)


async def _ring_back(rtp: RtpSession) -> None:
    """Ringback to the callee while the target rings, so the line does not sound dead."""
    tone = ringback()
    while True:
        if not rtp.queue:
            rtp.play(tone)
        await asyncio.sleep(0.5)


def _feed(rtp: RtpSession) -> Callable[[Audio], None]:
    def feed(frame: Audio) -> None:
        while len(rtp.queue) >= MAX_QUEUED_FRAMES:
            rtp.queue.popleft()
        rtp.play(frame)

    return feed


def _unrelay(callee: RtpSession, target: RtpSession) -> None:
    for rtp in (callee, target):
        rtp.relay, rtp.relaying, rtp.on_audio, rtp.on_sent = None, False, _ignore, None
        rtp.stop_playing()


def _start(rtp: RtpSession, answer: str) -> bool:
    from outdial.telephony.sip.codecs import codec_for

    try:
        media = sdp.answer(answer)
    except sdp.SdpError:
        return False
    rtp.start((media.ip, media.port), codec_for(media.codec), media.codec, media.dtmf)
    return True


async def _first(
    a: SipCall, b: SipCall, stop: asyncio.Event, timeout: float
) -> list[tuple[SipCall, SipEvent]]:
    """The events that came first on either call; empty on timeout or stop."""
    getters = {asyncio.ensure_future(c.events.get()): c for c in (a, b)}
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {*getters, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (*getters, stopper):
            task.cancel()
    got = [(who, task.result()) for task, who in getters.items() if task in done]
    if stopper in done:  # stopping: events already taken go back for the final waits
        for who, event in got:
            who.events.put_nowait(event)
        return []
    return got


async def _until_dead(call: SipCall) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HANGUP_GRACE):
            while (await call.events.get()).kind != "dead":
                pass


def _ignore(_: object) -> None:
    pass

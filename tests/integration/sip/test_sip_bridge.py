"""Bridged transfer (a second leg, media relayed) against two SIPp instances: the callee and
the transfer target. Accepted (media both ways, the target's BYE reaches the callee), a busy
target and one that never answers (both back to the callee, who gets our BYE)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.clock import SystemClock
from outdial.script.engine import TemplateConversation
from outdial.script.template import load, parse
from outdial.speech.audio import Audio
from outdial.speech.g711 import alaw_encode
from outdial.telephony.carrier import CallResult
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip.bridge import ringback
from outdial.telephony.sip.codecs import Pcmu
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import request

# The callee's payloads start with it, the target echoes them back; mu-law near zero, so the
# bot does not take it for speech (barge-in would cut the prompt).
MARK = b"\xfe\x7e\xfd\x7d\xfc\x7c\xfb\x7b"
# Our ringback's tone frames as mu-law: what the callee hears while the target rings.
RINGBACK = {Pcmu().encode(f) for f in ringback().frames(0.02)[:50]}
LOUD = b"\x10"  # the rest of each payload: a mu-law sample near -8000 (heard in recordings)


def template(target: S.Sipp) -> str:
    host, port = target.address
    return f"""
name: bridge test
language: en
start: hello
nodes:
  hello:
    say: Connecting you.
    transfer: {{to: "sip:agent@{host}:{port}", fallback: "Nobody is free, we will call back."}}
"""


class Callee:
    """The callee's media: a UDP socket that answers our RTP with marked packets and counts
    the marked packets that come back (through both legs and the target's echo)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = int(self.sock.getsockname()[1])
        self.received = self.echoed = self.steady = self.ringback = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Callee:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        peer = None
        seq = sent_at = 0.0
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
                self.received += 1
                peer = peer or addr
                if data[12:].startswith(MARK):
                    self.echoed += 1
                if data[12:] in RINGBACK:
                    self.ringback += 1
                if len(set(data[12:])) == 1 and data[12] not in (0xFF, 0x7F):
                    self.steady += 1  # a constant level: the target's tone, never speech
            except TimeoutError:
                pass
            if peer is not None and time.monotonic() - sent_at >= 0.02:
                sent_at = time.monotonic()
                seq += 1
                head = struct.pack("!BBHII", 0x80, 0, int(seq) & 0xFFFF, int(seq) * 160, 0x1234)
                # Quiet (mu-law 0xff) until the bridge echoes: no barge-in on the prompt.
                fill = LOUD if self.echoed else b"\xff"
                self.sock.sendto(head + MARK + fill * (160 - len(MARK)), peer)


def answered_by(callee: Callee) -> str:
    """The callee answers with its media on ``callee``'s socket, then waits for our BYE."""
    ok = S.ok().replace("[media_port]", str(callee.port))
    return S.RECV_INVITE + S.TRYING + ok + S.RECV_ACK + S.RECV_BYE


@pytest.fixture
def bridge_call(stack: Any, flite: Any, sphinx: Any, tmp_path: Path) -> Any:
    from outdial.telephony.sip.carrier import SipCarrier, Trunk

    def place(
        callee: S.Sipp,
        target: S.Sipp,
        max_ringing: float = 10,
        record: bool = False,
        max_calls: int | None = None,
    ) -> CallResult:
        trunk = Trunk("test", *callee.address, transfer="bridge", max_calls=max_calls)
        recordings = RecordingStore(tmp_path / "recordings")
        carrier = SipCarrier(
            stack, trunk, SystemClock(), flite, sphinx, recordings, stereo_recordings=True
        )
        conversation = TemplateConversation(load(parse(template(target))))
        req = request(max_ringing=max_ringing, record=record)

        async def go() -> CallResult:
            return await carrier.place(req, conversation, asyncio.Event())

        if max_calls != 1:  # one line: the first leg holds it, the target is never called
            target.start()
        callee.start()
        try:
            return asyncio.run(go())
        finally:
            for sipp in (callee, target):
                sipp.wait(10)
                sipp.stop()

    return place


def test_bridged_call_relays_media_and_the_targets_bye(bridge_call: Any, tmp_path: Path) -> None:
    target_body = (
        S.RECV_INVITE_FOR_BYE + S.TRYING + S.RINGING + S.pause(200) + S.ok() + S.RECV_ACK
        + S.pause(2000) + S.SEND_BYE
    )  # fmt: skip
    target = S.Sipp(tmp_path, "bridge_target", target_body, extra=("-rtp_echo",))
    with Callee() as media:
        callee = S.Sipp(tmp_path, "bridge_callee", answered_by(media))
        result = bridge_call(callee, target, record=True)
    assert result.transfer == "bridged", target.log()
    assert result.hangup_side == "target"
    assert [t.text for t in result.transcript] == ["Connecting you."]  # no fallback said
    assert result.conversation.transfer_to.endswith(f":{target.address[1]}")
    assert callee.succeeded() == 1, callee.log()  # our BYE came after the target's
    assert target.succeeded() == 1, target.log()
    # The callee's packets went through the callee leg, the target leg, the target's echo and
    # back: about 2 s of 20 ms packets; a loaded machine may lose some.
    assert media.echoed > 25, (media.received, media.echoed)
    # The recording holds both legs: the callee left, what the callee heard (the prompt, then
    # the target) right; the last second is all bridge.
    with wave.open(str(tmp_path / "recordings" / f"{result.recording}-stereo.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert len(pcm) > 2.5 * 8000  # the prompt, the ring, two seconds bridged
    last = pcm[-8000:].astype(np.float64)
    assert (np.sqrt(np.mean(last**2, axis=0)) > 1000).all()  # both sides loud
    (invite,) = S.received(target.messages.read_text(errors="replace"), "INVITE")
    assert invite.startswith(f"INVITE sip:agent@{target.address[0]}:{target.address[1]}")


def test_bridged_call_transcodes_when_the_legs_codecs_differ(
    bridge_call: Any, tmp_path: Path
) -> None:
    level = Audio(np.full(16000, 6000, dtype="<i2").tobytes(), 8000)
    tone = tmp_path / "level.alaw"
    tone.write_bytes(alaw_encode(level))  # two seconds of one A-law level
    target_body = (
        S.RECV_INVITE_FOR_BYE + S.TRYING + S.ok(8) + S.RECV_ACK + S.play(tone, 8)
        + S.pause(2000) + S.SEND_BYE
    )  # fmt: skip
    target = S.Sipp(tmp_path, "bridge_pcma", target_body)
    with Callee() as media:  # PCMU, as answered_by says
        callee = S.Sipp(tmp_path, "bridge_pcma_callee", answered_by(media))
        result = bridge_call(callee, target)
    assert result.transfer == "bridged", target.log()
    assert result.hangup_side == "target"
    assert callee.succeeded() == 1, callee.log()
    # Decoded from A-law, encoded again as mu-law: the level arrives as one repeated byte.
    assert media.steady > 50, (media.received, media.steady)


def test_busy_target_falls_back_to_the_callee(bridge_call: Any, tmp_path: Path) -> None:
    target_body = (
        S.RECV_INVITE + S.TRYING + S._reply("486 Busy Here", retrans=True) + S.RECV_ACK
    )  # fmt: skip
    target = S.Sipp(tmp_path, "bridge_busy", target_body)
    with Callee() as media:
        callee = S.Sipp(tmp_path, "bridge_busy_callee", answered_by(media))
        result = bridge_call(callee, target)
    assert result.transfer == "failed 486", target.log()
    assert result.hangup_side == "bot"
    # Back to the callee: the template's fallback is said, then our BYE.
    assert [t.text for t in result.transcript if t.speaker == "bot"][-1].startswith("Nobody is")
    assert callee.succeeded() == 1, callee.log()
    assert target.succeeded() == 1, target.log()


def test_unanswered_target_is_cancelled_at_the_ring_limit(bridge_call: Any, tmp_path: Path) -> None:
    target_body = (
        S.RECV_INVITE_KEEP_CSEQ + S.TRYING + S.RINGING
        + S.CANCELLED + S._reply("200 OK") + S.TERMINATED + S.RECV_ACK + S.USES_JUNK
    )  # fmt: skip
    target = S.Sipp(tmp_path, "bridge_noanswer", target_body)
    with Callee() as media:
        callee = S.Sipp(tmp_path, "bridge_noanswer_callee", answered_by(media))
        result = bridge_call(callee, target, max_ringing=2)
    assert result.transfer == "no answer", target.log()
    assert media.ringback > 25, (media.received, media.ringback)  # 1 s of tone in 2 s of ring
    assert result.hangup_side == "bot"
    assert result.transcript[-1].text.startswith("Nobody is")
    assert callee.succeeded() == 1, callee.log()
    assert target.succeeded() == 1, target.log()


def test_full_trunk_has_no_line_for_the_second_leg(bridge_call: Any, tmp_path: Path) -> None:
    target = S.Sipp(tmp_path, "bridge_noline", S.RECV_INVITE)  # on the trunk's host, not started
    with Callee() as media:
        callee = S.Sipp(tmp_path, "bridge_noline_callee", answered_by(media))
        result = bridge_call(callee, target, max_ringing=1, max_calls=1)
    assert result.transfer == "no line"
    assert result.hangup_side == "bot"
    assert result.transcript[-1].text.startswith("Nobody is")
    assert callee.succeeded() == 1, callee.log()


def test_callee_bye_while_bridged_reaches_the_target(bridge_call: Any, tmp_path: Path) -> None:
    target = S.Sipp(tmp_path, "bridge_target_bye", S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK
                    + S.RECV_BYE)  # fmt: skip
    with Callee() as media:
        ok = S.ok().replace("[media_port]", str(media.port))
        body = S.RECV_INVITE_FOR_BYE + S.TRYING + ok + S.RECV_ACK + S.pause(4000) + S.SEND_BYE
        callee = S.Sipp(tmp_path, "bridge_callee_bye", body)
        result = bridge_call(callee, target)
    assert result.transfer == "bridged", target.log()
    assert result.hangup_side == "callee"
    assert target.succeeded() == 1, target.log()  # our BYE after the callee's
    assert callee.succeeded() == 1, callee.log()

"""The SIP carrier against SIPp on loopback: every scenario of a real trunk, with audio.

SIPp answers as the callee; our carrier signals with sippy and speaks RTP; the template's
prompts are rendered by flite and the callee's recorded answer is recognised by PocketSphinx.
"""

from __future__ import annotations

import asyncio
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.clock import SystemClock
from outdial.domain.conversation import CallRequest
from outdial.domain.outcome import Outcome
from outdial.script.engine import TemplateConversation
from outdial.script.template import load, parse
from outdial.speech.g711 import ulaw_encode
from outdial.speech.loopback import spoken
from outdial.telephony.carrier import CallResult
from outdial.telephony.recording import RecordingStore
from tests.integration.sip import sipp as S

TEMPLATE = """
name: sip test
language: en
start: ask
intents:
  confirm:
    phrases: ["yes", "yes i will", "i will be there", "sure"]
  decline:
    positive: false
    phrases: ["no", "i can not", "no i will not"]
nodes:
  ask:
    say: Will you come on ${text1}? Say yes or no.
    listen: {timeout: 6}
    dtmf: {"1": confirmed, "2": declined}
    branches: {confirm: confirmed, decline: declined}
    no_input: {retries: 0, then: bye}
    no_match: {retries: 0, then: bye}
  confirmed: {say: Thank you. Goodbye., hangup: true}
  declined: {say: Sorry to hear that. Goodbye., hangup: true}
  bye: {say: Goodbye., hangup: true}
"""


@pytest.fixture(scope="module")
def template() -> Any:
    return load(parse(TEMPLATE))


@pytest.fixture
def make_carrier(stack: Any, flite: Any, sphinx: Any, tmp_path: Path) -> Any:
    from outdial.telephony.sip.carrier import SipCarrier, Trunk

    def make(sipp: S.Sipp, **trunk: Any) -> SipCarrier:
        host, port = sipp.address
        return SipCarrier(
            stack,
            Trunk("test", host, port, **trunk),
            SystemClock(),
            flite,
            sphinx,
            RecordingStore(tmp_path / "recordings"),
            stereo_recordings=True,
        )

    return make


def answer_file(flite: Any, tmp: Path, text: str) -> Path:
    """What the callee says: flite speech as a headerless mu-law file (SIPp's rtp_stream)."""
    path = tmp / "answer.ulaw"
    path.write_bytes(ulaw_encode(spoken(flite, text, pad=0.2)))
    return path


def request(max_ringing: float = 10, max_talk: float = 30, record: bool = True) -> CallRequest:
    return CallRequest(
        callee="15551230000",
        caller_id="15559870000",
        max_ringing=max_ringing,
        max_talk=max_talk,
        record=record,
        variables=("Friday",) + (None,) * 9,
    )


def place(carrier: Any, template: Any, req: CallRequest) -> CallResult:
    async def go() -> CallResult:
        return await carrier.place(req, TemplateConversation(template), asyncio.Event())

    return asyncio.run(go())


def run(sipp: S.Sipp, action: Any) -> Any:
    sipp.start()
    try:
        return action()
    finally:
        sipp.wait(10)
        sipp.stop()


def wav_levels(path: Path) -> tuple[float, float]:
    """RMS (dBFS) of the left (callee) and right (bot) channels of a stereo recording."""
    with wave.open(str(path)) as w:
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    rms = np.sqrt(np.mean(a.astype(np.float64) ** 2, axis=0)) / 32768
    return tuple(float(20 * np.log10(max(r, 1e-9))) for r in rms)  # type: ignore[return-value]


def test_answered_call_hears_yes_and_branches(
    make_carrier: Any, template: Any, flite: Any, tmp_path: Path
) -> None:
    said = answer_file(flite, tmp_path, "yes I will be there")
    body = (
        S.RECV_INVITE + S.TRYING + S.RINGING + S.pause(300) + S.ok() + S.RECV_ACK
        + S.pause(3500) + S.play(said) + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "answer", body)
    carrier = make_carrier(sipp)
    result = run(sipp, lambda: place(carrier, template, request()))
    assert result.outcome is Outcome.CONNECTED and result.sip_code == 200, sipp.log()
    assert result.conversation.intent == "confirm", result.transcript
    assert result.conversation.path == ("ask", "confirmed")
    assert result.hangup_side == "bot"
    assert result.ringing_at is not None and result.answered_at is not None
    assert result.ringing_at <= result.answered_at <= result.ended_at
    speakers = [t.speaker for t in result.transcript]
    assert speakers == ["bot", "callee", "bot"], result.transcript
    assert "be there" in result.transcript[1].text
    assert sipp.succeeded() == 1, sipp.log()
    # The recording holds the bot's prompt and the callee's answer, each on its channel.
    assert result.recording is not None
    callee_db, bot_db = wav_levels(tmp_path / "recordings" / f"{result.recording}-stereo.wav")
    assert bot_db > -40 and callee_db > -45, (bot_db, callee_db)
    assert (tmp_path / "recordings" / f"{result.recording}.wav").exists()


def test_busy(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    body = S.RECV_INVITE + S.TRYING + S._reply("486 Busy Here", retrans=True) + S.RECV_ACK
    sipp = S.Sipp(tmp_path, "busy", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request()))
    assert result.outcome is Outcome.BUSY and result.sip_code == 486
    assert result.answered_at is None and result.talk_seconds == 0


def test_no_answer_is_cancelled_at_max_ringing(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    body = (
        S.RECV_INVITE_KEEP_CSEQ + S.TRYING + S.RINGING
        + S.CANCELLED + S._reply("200 OK") + S.TERMINATED + S.RECV_ACK + S.USES_JUNK
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "noanswer", body)
    started = datetime.now(UTC)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request(max_ringing=2)))
    assert result.outcome is Outcome.NO_ANSWER and result.sip_code == 487, sipp.log()
    assert result.hangup_side == "bot"
    assert result.ringing_at is not None and result.ringing_at >= started
    assert 2 <= result.ring_seconds <= 4
    assert sipp.succeeded() == 1, sipp.log()


def test_callee_hangs_up_during_the_prompt(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    body = S.RECV_INVITE_FOR_BYE + S.TRYING + S.ok() + S.RECV_ACK + S.pause(800) + S.SEND_BYE
    sipp = S.Sipp(tmp_path, "calleebye", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request()))
    assert result.outcome is Outcome.CONNECTED
    assert result.hangup_side == "callee"
    assert result.conversation.path == ("ask",)
    assert result.talk_seconds <= 3
    assert sipp.succeeded() == 1, sipp.log()


def test_talk_limit_ends_the_call_with_our_bye(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    body = S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK + S.RECV_BYE
    sipp = S.Sipp(tmp_path, "limit", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request(max_talk=3)))
    assert result.outcome is Outcome.CONNECTED and result.hangup_side == "limit"
    assert 3 <= result.talk_seconds <= 5
    assert sipp.succeeded() == 1, sipp.log()


def test_dtmf_answer(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK + S.pause(3500)
        + S.play_pcap("/usr/share/sip-tester/dtmf_2833_1.pcap") + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "dtmf", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request()))
    assert result.conversation.feedback == "1", (result.transcript, sipp.log())
    assert result.conversation.path == ("ask", "confirmed")


def test_digest_auth_trunk(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    sipp = S.Sipp.from_file(tmp_path, "auth401")
    carrier = make_carrier(sipp, username="carrieruser", password="s3cret")
    result = run(sipp, lambda: place(carrier, template, request(max_talk=3)))
    assert result.outcome is Outcome.CONNECTED and result.sip_code == 200, sipp.log()
    assert sipp.succeeded() == 1, sipp.log()  # SIPp verified the digest (403 otherwise)


def test_wrong_password_is_refused(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    sipp = S.Sipp.from_file(tmp_path, "auth401")
    carrier = make_carrier(sipp, username="carrieruser", password="wrong")
    result = run(sipp, lambda: place(carrier, template, request()))
    assert result.outcome is Outcome.FAILED and result.sip_code == 403


def test_early_media_then_answer_on_g722(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    sipp = S.Sipp.from_file(tmp_path, "early_media")
    carrier = make_carrier(sipp)
    result = run(sipp, lambda: place(carrier, template, request(max_talk=3)))
    assert result.outcome is Outcome.CONNECTED, sipp.log()
    assert carrier.early_media == 1 and carrier.codecs == {9: 1}
    assert result.ringing_at is not None and result.ringing_at < result.answered_at


def test_tcp_trunk_answer_and_our_bye(
    make_carrier: Any, template: Any, flite: Any, tmp_path: Path
) -> None:
    said = answer_file(flite, tmp_path, "yes I will be there")
    body = (
        S.RECV_INVITE + S.TRYING + S.RINGING + S.ok() + S.RECV_ACK
        + S.pause(3500) + S.play(said) + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "tcp_answer", body, extra=("-t", "t1"))
    result = run(sipp, lambda: place(make_carrier(sipp, transport="tcp"), template, request()))
    assert result.outcome is Outcome.CONNECTED and result.hangup_side == "bot", sipp.log()
    assert result.conversation.intent == "confirm"
    assert sipp.succeeded() == 1, sipp.log()
    assert "TCP message received" in sipp.messages.read_text()


def test_tcp_trunk_callee_bye_and_busy(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    body = S.RECV_INVITE_FOR_BYE + S.TRYING + S.ok() + S.RECV_ACK + S.pause(800) + S.SEND_BYE
    sipp = S.Sipp(tmp_path, "tcp_bye", body, extra=("-t", "t1"))
    result = run(sipp, lambda: place(make_carrier(sipp, transport="tcp"), template, request()))
    assert result.hangup_side == "callee" and sipp.succeeded() == 1, sipp.log()
    busy = S.Sipp(
        tmp_path, "tcp_busy", S.RECV_INVITE + S._reply("486 Busy Here", retrans=True) + S.RECV_ACK,
        extra=("-t", "t1"),
    )  # fmt: skip
    result = run(busy, lambda: place(make_carrier(busy, transport="tcp"), template, request()))
    assert result.outcome is Outcome.BUSY and result.sip_code == 486


def test_proxy_auth_407(make_carrier: Any, template: Any, tmp_path: Path) -> None:
    sipp = S.Sipp.from_file(tmp_path, "auth407")
    carrier = make_carrier(sipp, username="carrieruser", password="s3cret")
    result = run(sipp, lambda: place(carrier, template, request(max_talk=3)))
    assert result.outcome is Outcome.CONNECTED and result.sip_code == 200, sipp.log()
    # SIPp cannot verify Proxy-Authorization itself: check the digest (RFC 2617, MD5) here.
    import hashlib
    import re

    header = re.search(r"Proxy-Authorization: Digest (.*)", sipp.messages.read_text())
    assert header, sipp.log()
    fields = dict(re.findall(r'(\w+)="?([^",]+)"?', header.group(1)))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"carrieruser:{fields['realm']}:s3cret")
    ha2 = md5(f"INVITE:{fields['uri']}")
    if fields.get("qop") == "auth":
        want = md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
    else:
        want = md5(f"{ha1}:{fields['nonce']}:{ha2}")
    assert fields["response"] == want

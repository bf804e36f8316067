"""Answering machine detection on real SIP calls: SIPp answers and plays a voicemail
greeting with its beep, or a person's short "hello?"; the record says voicemail or connected.

The greetings are flite renders, as the bench's (bench/voicemail_detection.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.domain.outcome import Outcome
from outdial.script.template import load, parse
from outdial.speech.audio import Audio, silence, to_pcm16
from outdial.speech.g711 import ulaw_encode
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import (
    make_carrier,  # noqa: F401 - a fixture, used by name
    place,
    request,
    run,
)
from tests.integration.sip.test_sip_media import FRAME, first_loud, stereo

GREETING = (
    "Hi, you've reached Sam. I can't take your call right now. "
    "Please leave a message after the tone."
)
MESSAGE = "Hello, this is your clinic calling about ${text1}. Please call us back."
TEMPLATE = f"""
name: sip voicemail
language: en
voicemail: {{action: leave_message, message: "{MESSAGE}"}}
nodes:
  ask:
    say: Will you come on ${{text1}}?
    listen: {{timeout: 1}}
    no_input: {{retries: 0, then: bye}}
  bye: {{say: Goodbye., hangup: true}}
"""


@pytest.fixture(scope="module")
def vm_template() -> Any:
    return load(parse(TEMPLATE))


def far_end(tmp: Path, audio: Audio) -> Path:
    path = tmp / "far-end.ulaw"
    path.write_bytes(ulaw_encode(audio))
    return path


def beep(seconds: float = 0.5, hz: float = 1000.0) -> Audio:
    t = np.arange(int(8000 * seconds)) / 8000
    return Audio(to_pcm16(0.3 * 32767 * np.sin(2 * np.pi * hz * t)), 8000)


def body(path: Path) -> str:
    return S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK + S.play(path) + S.RECV_BYE


def test_machine_greeting_ends_as_voicemail_with_the_message_after_the_beep(
    make_carrier: Any,  # noqa: F811 - the imported fixture
    vm_template: Any,
    flite: Any,
    tmp_path: Path,
) -> None:
    greeting = flite.render(GREETING).resampled(8000)
    beep_at = 0.3 + greeting.seconds + 0.4
    said = far_end(tmp_path, silence(0.3) + greeting + silence(0.4) + beep())
    sipp = S.Sipp(tmp_path, "machine", body(said))
    result = run(sipp, lambda: place(make_carrier(sipp), vm_template, request()))
    assert result.outcome is Outcome.VOICEMAIL and result.sip_code == 200, sipp.log()
    assert [t.text for t in result.transcript] == [
        "Hello, this is your clinic calling about Friday. Please call us back."
    ]
    assert result.conversation.path == () and result.hangup_side == "bot"
    assert result.transcript[0].at > beep_at  # said after the beep, not over the greeting
    assert result.recording is not None
    _, bot_db = stereo(tmp_path / "recordings" / f"{result.recording}-stereo.wav")
    # The bot was silent through the greeting and spoke once the beep had ended.
    assert first_loud(bot_db) > beep_at + 0.5 - 2 * FRAME
    assert sipp.succeeded() == 1, sipp.log()


def test_short_hello_is_a_person_who_hears_the_template(
    make_carrier: Any,  # noqa: F811 - the imported fixture
    vm_template: Any,
    flite: Any,
    tmp_path: Path,
) -> None:
    said = far_end(tmp_path, silence(0.3) + flite.render("hello?").resampled(8000))
    sipp = S.Sipp(tmp_path, "person", body(said))
    result = run(sipp, lambda: place(make_carrier(sipp), vm_template, request()))
    assert result.outcome is Outcome.CONNECTED, sipp.log()
    bot = [t for t in result.transcript if t.speaker == "bot"]
    assert [t.text for t in bot] == ["Will you come on Friday?", "Goodbye."]
    # The hello was the greeting, not an answer: the prompt went unanswered (no_input).
    assert result.conversation.path == ("ask", "bye")
    assert [t.speaker for t in result.transcript] == ["bot", "bot"], result.transcript
    assert 1.0 < bot[0].at < 3.5  # the detector's decision delayed the first prompt
    assert sipp.succeeded() == 1, sipp.log()


def test_hangup_option_ends_a_machine_call_at_the_decision(
    make_carrier: Any,  # noqa: F811 - the imported fixture
    flite: Any,
    tmp_path: Path,
) -> None:
    template = load(
        parse(TEMPLATE.replace(f'action: leave_message, message: "{MESSAGE}"', "action: hangup"))
    )
    greeting = flite.render(GREETING).resampled(8000)
    said = far_end(tmp_path, silence(0.3) + greeting + silence(0.4) + beep())
    sipp = S.Sipp(tmp_path, "machine-hangup", body(said))
    result = run(sipp, lambda: place(make_carrier(sipp), template, request()))
    assert result.outcome is Outcome.VOICEMAIL and result.hangup_side == "bot", sipp.log()
    assert result.transcript == [] and result.conversation.path == ()
    # Hung up some way into the greeting (a decision at ~3 s), not after it.
    assert result.talk_seconds <= 5 < greeting.seconds, result.talk_seconds
    assert sipp.succeeded() == 1, sipp.log()

"""Answering machine detection: the detector on synthetic signals and on TTS greetings, the
template's voicemail option, and the simulated carrier's screening."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from outdial.clock import SystemClock
from outdial.domain.conversation import CallRequest, screens_voicemail
from outdial.domain.outcome import Outcome
from outdial.script.engine import TemplateConversation
from outdial.script.template import TemplateProblem, load, parse
from outdial.speech.audio import Audio, silence, to_pcm16
from outdial.telephony.amd import AmdSettings, MachineDetector, Verdict, detect
from outdial.telephony.sim import SimCarrier, SimProfile

RATE = 8000
MACHINE_GREETING = (
    "Hi, you've reached Sam and Alex. We can't come to the phone right now. "
    "Please leave your name and number after the tone, and we will call you back."
)


def tone(hz: float = 1000.0, seconds: float = 0.5, level: float = 0.3) -> Audio:
    t = np.arange(int(RATE * seconds)) / RATE
    return Audio(to_pcm16(level * 32767 * np.sin(2 * np.pi * hz * t)), RATE)


def bursts(*pattern: float, seed: int = 1) -> Audio:
    """Speech-like noise: alternating (loud, quiet) seconds, loud parts amplitude-modulated
    at a syllable rate so they are not a steady noise."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for i, seconds in enumerate(pattern):
        n = int(RATE * seconds)
        if i % 2:
            out.append(rng.normal(0, 30, n))
        else:
            t = np.arange(n) / RATE
            envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
            out.append(rng.normal(0, 3000, n) * envelope)
    return Audio(to_pcm16(np.concatenate(out)), RATE)


def test_a_short_hello_then_silence_is_a_person() -> None:
    decided = detect(silence(0.5) + bursts(0.6, 3.0))
    assert (decided.verdict, decided.reason) == (Verdict.HUMAN, "short_greeting")
    assert 1.8 <= decided.at <= 2.1  # 0.5 + 0.6 of speech + 0.8 of silence


def test_a_monologue_with_short_pauses_is_a_machine() -> None:
    decided = detect(bursts(1.2, 0.3, 1.0, 0.4, 1.5, 0.3, 2.0))
    assert (decided.verdict, decided.reason) == (Verdict.MACHINE, "long_greeting")
    assert 2.6 < decided.at < 3.0


def test_a_beep_alone_is_a_machine_and_marks_where_a_message_starts() -> None:
    detector = MachineDetector()
    audio = silence(0.4) + tone(1000, 0.5) + silence(1.0)
    decisions = [d for f in audio.frames() if (d := detector.feed(f)) is not None]
    assert [(d.verdict, d.reason) for d in decisions] == [(Verdict.MACHINE, "beep")]
    assert decisions[0].at == pytest.approx(0.4 + 0.15, abs=0.05)
    assert detector.beep_at == pytest.approx(0.4, abs=0.03)
    assert detector.message_at == pytest.approx(0.9, abs=0.03)  # when the tone stopped


@pytest.mark.parametrize("hz", [425.0, 1400.0, 1950.0])
def test_beeps_across_the_band(hz: float) -> None:
    assert detect(silence(0.2) + tone(hz, 0.3)).reason == "beep"


def test_tones_outside_the_band_or_too_short_are_not_beeps() -> None:
    assert detect(tone(300, 0.6)).reason != "beep"
    assert detect(tone(2600, 0.6)).reason != "beep"
    assert detect(silence(0.3) + tone(1000, 0.08) + silence(4)).reason != "beep"


def test_silence_and_timeout_are_unknown() -> None:
    assert (detect(silence(6)).verdict, detect(silence(6)).reason) == (Verdict.UNKNOWN, "silence")
    assert detect(silence(6)).at == pytest.approx(AmdSettings().silence_seconds)
    late = detect(silence(3.0) + bursts(0.5, 0.3, 0.5, 0.3, 0.5, 0.3, 3.0))
    assert (late.verdict, late.reason) == (Verdict.UNKNOWN, "timeout")


def test_a_machine_without_a_beep_takes_a_message_after_its_greeting() -> None:
    detector = MachineDetector()
    for f in (bursts(1.5, 0.3, 1.5, 0.3, 1.0) + silence(3.0)).frames():
        detector.feed(f)
    assert detector.decision is not None and detector.decision.verdict is Verdict.MACHINE
    assert detector.beep_at is None
    assert detector.message_at == pytest.approx(4.6 + AmdSettings().message_silence, abs=0.05)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="end_silence"):
        AmdSettings(end_silence=5.0)
    with pytest.raises(ValueError, match="machine_speech"):
        AmdSettings(machine_speech=9.0)


@pytest.mark.parametrize("voice", ["kal", "slt", "awb"])
def test_tts_greeting_and_beep_versus_hello(voice: str, flite: Any) -> None:
    from outdial.speech.tts import FliteTts

    tts = FliteTts(voice)
    greeting = tts.render(MACHINE_GREETING, cache=False).resampled(RATE)
    assert 6.0 < greeting.seconds < 9.0
    machine = MachineDetector()
    for f in (silence(0.4) + greeting + silence(0.4) + tone(1000, 0.5) + silence(1)).frames():
        machine.feed(f)
    assert machine.decision is not None and machine.decision.verdict is Verdict.MACHINE
    assert machine.decision.reason == "long_greeting" and machine.decision.at < 4.0
    # The beep is found after the decision, and only the beep: not within the speech.
    assert machine.beep_at == pytest.approx(0.4 + greeting.seconds + 0.4, abs=0.05)
    assert machine.message_at is not None and machine.message_at > machine.beep_at
    hello = detect(silence(0.4) + tts.render("hello?", cache=False).resampled(RATE))
    assert (hello.verdict, hello.at < 2.5) == (Verdict.HUMAN, True)


VOICEMAIL_TEMPLATE = """
name: vm
language: en
voicemail: {action: leave_message, message: "Hello ${text1}, please call us back."}
grades:
  - {grade: V, when: {outcome: voicemail}}
  - {grade: C, when: {outcome: connected}}
nodes:
  ask:
    say: Will you come?
    listen: {timeout: 2}
    no_input: {retries: 0, then: bye}
  bye: {say: Goodbye., hangup: true}
"""


def test_leave_message_needs_a_message() -> None:
    with pytest.raises(TemplateProblem) as err:
        parse(VOICEMAIL_TEMPLATE.replace(', message: "Hello ${text1}, please call us back."', ""))
    assert ("voicemail.message", "leave_message needs the message to leave") in err.value.problems
    with pytest.raises(TemplateProblem):
        parse(VOICEMAIL_TEMPLATE.replace("leave_message", "shout"))


def _sim(fate: str, source: str) -> Any:
    weights = {k: 0.0 for k in ("busy", "no_answer", "unreachable", "vacant", "failed")}
    weights.update(answer=1.0 if fate == "human" else 0.0, voicemail=1.0 if fate != "human" else 0)
    carrier = SimCarrier(SystemClock(), SimProfile(instant=True, personas=((),), **weights))
    conversation = TemplateConversation(load(parse(source)))
    request = CallRequest("15550001", "15550002", 30, 60, variables=("Li",) + (None,) * 9)
    return asyncio.run(carrier.place(request, conversation, asyncio.Event()))


def test_sim_machine_gets_the_voicemail_message_and_grade() -> None:
    result = _sim("machine", VOICEMAIL_TEMPLATE)
    assert result.outcome is Outcome.VOICEMAIL
    assert [t.text for t in result.transcript] == ["Hello Li, please call us back."]
    assert (result.conversation.grade, result.conversation.path) == ("V", ())


def test_sim_machine_hang_up_option_says_nothing() -> None:
    source = VOICEMAIL_TEMPLATE.replace(
        'voicemail: {action: leave_message, message: "Hello ${text1}, please call us back."}',
        "voicemail: {action: hangup}",
    )
    result = _sim("machine", source)
    assert (result.outcome, result.transcript, result.hangup_side) == (
        Outcome.VOICEMAIL, [], "bot",
    )  # fmt: skip


def test_sim_person_hears_the_template() -> None:
    result = _sim("human", VOICEMAIL_TEMPLATE)
    assert result.outcome is Outcome.CONNECTED
    assert result.transcript[0].text == "Will you come?"
    assert result.conversation.grade == "C"


def test_templates_without_the_option_are_not_screened() -> None:
    plain = VOICEMAIL_TEMPLATE.split("grades:")[0].replace("voicemail:", "# voicemail:")
    assert (
        screens_voicemail(TemplateConversation(load(parse(plain + "nodes:\n  a: {say: x}\n"))))
        is None
    )
    assert screens_voicemail(TemplateConversation(load(parse(VOICEMAIL_TEMPLATE)))) is not None


def test_scripted_carrier_screens_as_the_simulated_one() -> None:
    from outdial.testing import Scripted, ScriptedCarrier

    conversation = TemplateConversation(load(parse(VOICEMAIL_TEMPLATE)))
    request = CallRequest("15550001", "15550002", 30, 60, variables=("Li",) + (None,) * 9)

    async def go(fate: Outcome) -> Any:
        script = Scripted(fate, ring=0.01, talk=5)
        carrier = ScriptedCarrier(SystemClock(), default=script, speech_seconds_per_char=0)
        return await carrier.place(request, conversation, asyncio.Event())

    machine = asyncio.run(go(Outcome.VOICEMAIL))
    assert (machine.outcome, machine.conversation.grade) == (Outcome.VOICEMAIL, "V")
    assert [t.text for t in machine.transcript] == ["Hello Li, please call us back."]

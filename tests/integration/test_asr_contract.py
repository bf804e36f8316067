"""One contract for every recogniser installed here (and the FakeAsr that tests use): what it
declares, what it makes of silence and of a clear answer through the 8 kHz mu-law line, the
pool and its timeout, and the metrics the base class keeps.

Engines are listed from the registry: each whose Python package is installed takes part, so
nothing here skips (Vosk, with no English model on the registries, is not installed)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from outdial.speech.asr import AsrEngine, make_asr
from outdial.speech.audio import silence
from outdial.speech.loopback import hear, spoken
from outdial.speech.registry import ASR_ENGINES
from outdial.speech.tts import FliteTts
from outdial.testing import FakeAsr

_PACKAGES = {"pocketsphinx": "pocketsphinx", "whisper": "faster_whisper", "vosk": "vosk"}
INSTALLED = [n for n in ASR_ENGINES if importlib.util.find_spec(_PACKAGES[n]) is not None]
PHRASES = ("yes", "i will be there", "no", "stop calling me", "call me later")
ANSWER = "yes I will be there"


def test_the_speech_extra_installs_pocketsphinx_and_whisper() -> None:
    assert {"pocketsphinx", "whisper"} <= set(INSTALLED)


@pytest.fixture(scope="module", params=[*INSTALLED, "fake"])
def engine(request: pytest.FixtureRequest) -> Iterator[AsrEngine]:
    made: AsrEngine = FakeAsr(grammar=True) if request.param == "fake" else make_asr(request.param)
    yield made
    made.close()


def _script(engine: AsrEngine, result: str) -> None:
    """What a FakeAsr hears next (real engines hear the audio)."""
    if isinstance(engine, FakeAsr):
        engine.say(result)


def test_capabilities_are_declared(engine: AsrEngine) -> None:
    caps = engine.capabilities
    assert caps.rate in (8000, 16000)
    assert "en" in caps.languages
    assert all(len(code) in (2, 3) and code == code.lower() for code in caps.languages)
    assert caps.grammar == engine.uses_grammar
    assert not (caps.grammar and caps.phrases_as_prompt)
    assert engine.workers >= 1 and engine.timeout > 0


def test_line_silence_is_not_accepted(engine: AsrEngine) -> None:
    before = (engine.metrics.utterances, engine.metrics.rejected)
    _script(engine, "")
    got = hear(engine, silence(1.0), PHRASES)
    assert (got.accepted, got.text) == (False, "")
    assert (engine.metrics.utterances, engine.metrics.rejected) == (before[0] + 1, before[1] + 1)


def test_a_clear_answer_is_heard(flite: FliteTts, engine: AsrEngine) -> None:
    before = engine.metrics.accepted
    _script(engine, "yes i will be there")
    got = hear(engine, spoken(flite, ANSWER), PHRASES)
    assert got.accepted, got
    assert "be there" in got.text and got.text == got.heard
    assert engine.metrics.accepted == before + 1
    assert engine.metrics.audio_seconds > 0


def test_finish_async_decodes_in_the_pool(flite: FliteTts, engine: AsrEngine) -> None:
    audio = spoken(flite, ANSWER)

    async def two() -> list[Any]:
        rs = [engine.recognizer(PHRASES) for _ in range(2)]
        for r in rs:
            for frame in audio.frames():
                r.feed(frame)
        return list(await asyncio.gather(*(r.finish_async() for r in rs)))

    _script(engine, "yes i will be there")
    _script(engine, "yes i will be there")
    recent = len(engine.metrics.recent)
    got = asyncio.run(two())
    assert all(g.accepted and "be there" in g.text and not g.timed_out for g in got), got
    assert len(engine.metrics.recent) == recent + 2
    assert engine.metrics.percentile(95) is not None


def test_a_decode_past_the_timeout_counts_as_not_understood(
    flite: FliteTts, engine: AsrEngine
) -> None:
    audio = spoken(flite, ANSWER)
    saved = engine.timeout
    engine.timeout = 1e-4
    if isinstance(engine, FakeAsr):
        engine.delay = 0.05
    try:
        _script(engine, "yes i will be there")
        before = engine.metrics.timeouts
        got = asyncio.run(engine.recognize_async(audio, PHRASES))
    finally:
        engine.timeout = saved
        if isinstance(engine, FakeAsr):
            engine.delay = 0.0
    assert got.timed_out and not got.accepted and got.text == ""
    assert engine.metrics.timeouts == before + 1
    engine.pool().submit(lambda: None).result()  # the pool is still usable afterwards


def test_fake_asr_follows_its_script() -> None:
    fake = FakeAsr(["first", "second"])
    assert fake.recognize(silence(0.1), ["x"]).text == "first"
    assert fake.recognize(silence(0.1), ["x"]).text == "second"
    assert fake.recognize(silence(0.1), ["x"]).accepted is False  # the script ran out
    assert fake.decoded == [(("x",),)] * 3
    echo = FakeAsr(lambda phrases: " ".join(p[0] for p in phrases))
    assert echo.recognize(silence(0.1), ["yes please", "no"]).text == "no yes"
    grammar = FakeAsr(["nothing like it"], grammar=True)
    assert grammar.recognize(silence(0.1), ["yes"]).accepted is False


def test_a_scoring_engine_reports_its_confidence(flite: FliteTts, engine: AsrEngine) -> None:
    _script(engine, "yes i will be there")
    got = hear(engine, spoken(flite, ANSWER), PHRASES)
    if engine.name == "whisper":  # scores by its tokens' log-probabilities
        # A clear answer clears the opt-out confirmation bar.
        assert got.confidence is not None and 0.9 <= got.confidence <= 1.0
    else:  # PocketSphinx's and the fake's (unset) hypotheses carry no score
        assert got.confidence is None
    scored = FakeAsr(["yes"], confidence=0.42)
    assert scored.recognize(silence(0.1), ["yes"]).confidence == 0.42


def test_whisper_confidence_puts_the_opt_out_bar_at_a_mean_log_probability_of_minus_half() -> None:
    whisper = pytest.importorskip("outdial.speech.asr.whisper")
    assert whisper.segment_confidence([]) is None
    assert whisper.segment_confidence([(0.0, 10)]) == 1.0
    assert whisper.segment_confidence([(-0.5, 10)]) == pytest.approx(0.9)
    both = whisper.segment_confidence([(-1.0, 30), (0.0, 10)])  # weighted by text length
    assert both == pytest.approx(1 - 0.75 / 5)
    assert whisper.segment_confidence([(-9.0, 5)]) == 0.0

"""Unit tests of the speech building blocks (no TTS or ASR engine needed): G.711, Audio, the
energy VAD, prompt parts, the ASR's phrase handling and language model, language detection,
and how the conversation engine uses them (unclear speech, expected phrases, prompt parts)."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import warnings
import wave
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from outdial.domain.conversation import CallRequest, ConversationOutcome, Heard
from outdial.script.engine import TemplateConversation
from outdial.script.playback import parts, render
from outdial.script.template import load, parse
from outdial.speech import asr, g711, languages
from outdial.speech.audio import Audio, concat, from_wav, silence
from outdial.speech.vad import EnergyVad, VadEvent


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    """CPython's audioop, the reference G.711 implementation (deprecated; gone in 3.13, where
    the audioop-lts package provides it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("audioop is not available (Python 3.13+: pip install audioop-lts)")
    return audioop


ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def pcm(values: list[int] | np.ndarray) -> bytes:
    return np.asarray(values, dtype="<i2").tobytes()


# --- G.711 ------------------------------------------------------------------------------------


def test_ulaw_encode_matches_audioop_for_every_sample(audioop: ModuleType) -> None:
    ours = g711.ulaw_encode(Audio(ALL_SAMPLES, 8000))
    ref = audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert len(ours) == 65536
    mismatched = [i - 32768 for i in range(65536) if ours[i] != ref[i]]
    assert mismatched == []


def test_alaw_encode_matches_audioop_for_every_sample(audioop: ModuleType) -> None:
    ours = g711.alaw_encode(Audio(ALL_SAMPLES, 8000))
    ref = audioop.lin2alaw(ALL_SAMPLES, 2)
    assert len(ours) == 65536
    mismatched = [i - 32768 for i in range(65536) if ours[i] != ref[i]]
    assert mismatched == []


def test_ulaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    out = g711.ulaw_decode(ALL_CODES)
    assert out.rate == 8000
    assert out.pcm == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_for_every_code(audioop: ModuleType) -> None:
    out = g711.alaw_decode(ALL_CODES)
    assert out.rate == 8000
    assert out.pcm == audioop.alaw2lin(ALL_CODES, 2)


def test_telephone_line_keeps_length_and_rate(audioop: ModuleType) -> None:
    t = np.arange(800) / 8000
    tone = Audio(pcm(8000 * np.sin(2 * np.pi * 440 * t)), 8000)
    heard = g711.telephone_line(tone)
    assert heard.rate == 8000
    assert heard.samples == tone.samples
    # mu-law is lossy but close: the error stays within a few percent of full scale
    assert np.max(np.abs(heard.array().astype(int) - tone.array().astype(int))) < 600
    assert heard.pcm == audioop.ulaw2lin(audioop.lin2ulaw(tone.pcm, 2), 2)


@pytest.mark.parametrize("encode", [g711.ulaw_encode, g711.alaw_encode])
def test_encoding_16khz_audio_resamples_to_8khz_first(encode: object) -> None:
    t = np.arange(1600) / 16000
    wide = Audio(pcm(8000 * np.sin(2 * np.pi * 440 * t)), 16000)
    encoded = encode(wide)  # type: ignore[operator]
    assert len(encoded) == wide.samples // 2 == 800


# --- Audio ------------------------------------------------------------------------------------


def test_seconds_and_samples() -> None:
    a = Audio(b"\x00\x00" * 4000, 8000)
    assert a.samples == 4000
    assert a.seconds == pytest.approx(0.5)
    assert Audio(b"\x00\x00" * 4000, 16000).seconds == pytest.approx(0.25)


def test_frames_are_20ms_with_the_last_padded_with_zeros() -> None:
    values = np.arange(1, 351)  # 350 samples: two full 160-sample frames and 30 more
    frames = Audio(pcm(values), 8000).frames()
    assert [f.samples for f in frames] == [160, 160, 160]
    assert all(f.rate == 8000 for f in frames)
    assert frames[0].array().tolist() == list(range(1, 161))
    assert frames[1].array().tolist() == list(range(161, 321))
    assert frames[2].array().tolist() == list(range(321, 351)) + [0] * 130
    # an exact multiple gets no padding frame
    assert len(Audio(pcm(np.ones(320)), 8000).frames()) == 2
    # frames at 16 kHz are 320 samples
    assert [f.samples for f in Audio(pcm(np.ones(640)), 16000).frames()] == [320, 320]


def test_resampled_to_16khz_doubles_the_samples_and_keeps_the_tone() -> None:
    t = np.arange(8000) / 8000
    a = Audio(pcm(10000 * np.sin(2 * np.pi * 300 * t)), 8000)
    b = a.resampled(16000)
    assert b.rate == 16000
    assert abs(b.samples - 2 * a.samples) <= 2
    spectrum = np.abs(np.fft.rfft(b.array().astype(float)))
    peak_hz = np.argmax(spectrum) * b.rate / b.samples
    assert peak_hz == pytest.approx(300, abs=2)
    assert a.resampled(8000) == a


def test_adding_audio_of_different_rates_resamples_the_right_side() -> None:
    a = Audio(pcm(np.full(800, 100)), 8000)
    b = Audio(pcm(np.zeros(1600)), 16000)
    joined = a + b
    assert joined.rate == 8000
    assert abs(joined.samples - 1600) <= 2
    assert joined.pcm.startswith(a.pcm)
    same = a + a
    assert same.pcm == a.pcm * 2 and same.rate == 8000
    assert concat([a, b]).rate == 8000
    assert abs(concat([a, b]).samples - 1600) <= 2


def test_wav_round_trip() -> None:
    a = Audio(pcm([0, 1, -1, 32767, -32768, 1234]), 16000)
    data = a.wav()
    assert data[:4] == b"RIFF"
    assert from_wav(data) == a
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)


def test_stereo_wav_is_mixed_down_to_mono() -> None:
    left = np.array([1000, -2000, 0, 32766], dtype="<i2")
    right = np.array([3000, -4000, 200, 32766], dtype="<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    mono = from_wav(buf.getvalue())
    assert mono.rate == 8000
    assert mono.array().tolist() == [2000, -3000, 100, 32766]


def test_non_16_bit_wav_is_rejected() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(80))
    with pytest.raises(ValueError, match="16-bit"):
        from_wav(buf.getvalue())


def test_silence() -> None:
    s = silence(0.5)
    assert s.rate == 8000 and s.samples == 4000 and not any(s.pcm)
    wide = silence(0.25, 16000)
    assert wide.rate == 16000 and wide.samples == 4000 and not any(wide.pcm)


# --- VAD --------------------------------------------------------------------------------------

RATE = 8000
_rng = np.random.default_rng(1234)


def noise(seconds: float, db: float = -60.0) -> np.ndarray:
    rms = 32768 * 10 ** (db / 20)
    return _rng.normal(0.0, rms, int(seconds * RATE))


def tone(seconds: float, db: float = -15.0, hz: float = 300.0) -> np.ndarray:
    amplitude = 32768 * 10 ** (db / 20) * np.sqrt(2)
    t = np.arange(int(seconds * RATE)) / RATE
    return np.asarray(amplitude * np.sin(2 * np.pi * hz * t), dtype=np.float64)


def vad_events(*pieces: np.ndarray) -> list[VadEvent]:
    signal = np.clip(np.concatenate(pieces), -32768, 32767)
    vad = EnergyVad()
    events = [vad.feed(f) for f in Audio(pcm(signal), RATE).frames()]
    return [e for e in events if e is not None]


def test_vad_levels_of_the_synthetic_signals() -> None:
    """The fixtures below are what they claim to be."""
    assert EnergyVad.level_db(Audio(pcm(noise(1.0)))) == pytest.approx(-60, abs=1)
    assert EnergyVad.level_db(Audio(pcm(tone(1.0)))) == pytest.approx(-15, abs=0.5)
    assert EnergyVad.level_db(silence(0.02)) == -100.0


def test_vad_finds_one_start_and_one_end_around_a_tone() -> None:
    events = vad_events(noise(1.0), tone(1.0), noise(1.5))
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert abs(start.at - 1.0) <= 0.06
    assert abs(end.at - 2.0) <= 0.06


def test_vad_start_is_not_on_a_frame_boundary() -> None:
    events = vad_events(noise(0.71), tone(0.8), noise(1.2))
    assert [e.kind for e in events] == ["start", "end"]
    assert abs(events[0].at - 0.71) <= 0.06
    assert abs(events[1].at - 1.51) <= 0.06


def test_vad_ignores_a_single_click() -> None:
    assert vad_events(noise(1.0), tone(0.02, db=-6.0), noise(1.0)) == []


def test_vad_two_loud_frames_are_not_yet_speech() -> None:
    assert vad_events(noise(1.0), tone(0.04), noise(1.0)) == []
    assert [e.kind for e in vad_events(noise(1.0), tone(0.06), noise(1.0))] == ["start", "end"]


def test_vad_short_pause_inside_speech_does_not_end_it() -> None:
    events = vad_events(noise(1.0), tone(0.5), noise(0.2), tone(0.5), noise(1.5))
    assert [e.kind for e in events] == ["start", "end"]
    assert abs(events[0].at - 1.0) <= 0.06
    assert abs(events[1].at - 2.2) <= 0.06


def test_vad_pause_longer_than_the_hangover_ends_speech() -> None:
    events = vad_events(noise(1.0), tone(0.5), noise(1.0), tone(0.5), noise(1.5))
    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    assert [round(e.at, 1) for e in events] == [1.0, 1.5, 2.5, 3.0]


# --- playback.parts ---------------------------------------------------------------------------

VARS = ("Li", "Friday", None, "", None, None, None, None, None, "ten")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Hello ${text1}, see you on ${text2}.",
            (
                ("Hello ", True),
                ("Li", False),
                (", see you on ", True),
                ("Friday", False),
                (".", True),
            ),
        ),
        ("${text1}${text2}", (("Li", False), ("Friday", False))),
        ("${text1} ${text2}!", (("Li", False), (" ", True), ("Friday", False), ("!", True))),
        ("Hi ${text3} and ${text4}.", (("Hi ", True), (" and ", True), (".", True))),
        ("No placeholders here.", (("No placeholders here.", True),)),
        (
            "Item ${text10} not ${text11}",
            (("Item ", True), ("ten", False), (" not ${text11}", True)),
        ),
        ("", ()),
    ],
)
def test_parts_split_fixed_words_from_variables(
    text: str, expected: tuple[tuple[str, bool], ...]
) -> None:
    assert parts(text, VARS) == expected
    assert "".join(t for t, _ in parts(text, VARS)) == render(text, VARS)


def test_parts_with_fewer_variables_than_placeholders() -> None:
    short: tuple[str | None, ...] = ("Ann",)
    text = "Dear ${text1}, your code is ${text5}."
    assert parts(text, short) == (
        ("Dear ", True),
        ("Ann", False),
        (", your code is ", True),
        (".", True),
    )
    assert (
        "".join(t for t, _ in parts(text, short))
        == render(text, short)
        == "Dear Ann, your code is ."
    )


# --- ASR phrase handling ----------------------------------------------------------------------


def test_words_lowercases_and_keeps_apostrophes_and_digits() -> None:
    assert asr.words("Yes, I'LL be THERE!") == ("yes", "i'll", "be", "there")
    assert asr.words("I don’t know") == ("i", "don't", "know")
    assert asr.words("  ...  ") == ()
    # Digits are kept: an open-vocabulary engine writes times and days as Whisper does.
    assert asr.words("call-back at 5pm") == ("call", "back", "at", "5pm")
    assert asr.words("Friday at 3:30, OK?") == ("friday", "at", "3", "30", "ok")


def _arpa_sections(text: str) -> tuple[dict[int, int], list[str], list[str]]:
    lines = text.splitlines()
    counts = {int(m[1]): int(m[2]) for ln in lines if (m := re.fullmatch(r"ngram (\d)=(\d+)", ln))}
    uni_at, bi_at, end_at = (
        lines.index("\\1-grams:"),
        lines.index("\\2-grams:"),
        lines.index("\\end\\"),
    )
    unigrams = [ln for ln in lines[uni_at + 1 : bi_at] if ln]
    bigrams = [ln for ln in lines[bi_at + 1 : end_at] if ln]
    return counts, unigrams, bigrams


def test_arpa_counts_and_vocabulary() -> None:
    phrases = (("i", "will", "be", "there"), ("no",), ("yes",), ("call", "me", "later"))
    text = asr.arpa(phrases)
    assert text.startswith("\\data\\\n")
    assert text.rstrip().endswith("\\end\\")
    counts, unigrams, bigrams = _arpa_sections(text)
    assert counts == {1: len(unigrams), 2: len(bigrams)}
    uni = {ln.split()[1]: ln.split() for ln in unigrams}
    assert len(uni) == len(unigrams)  # no word listed twice
    for word in {w for p in phrases for w in p} | set(asr.FILLERS) | {"<s>", "</s>"}:
        assert word in uni, word
    assert float(uni["<s>"][0]) == -99.0
    for fields in uni.values():
        assert len(fields) == 3 and float(fields[0]) <= 0
    bi = {(ln.split()[1], ln.split()[2]) for ln in bigrams}
    assert len(bi) == len(bigrams)
    for phrase in phrases:
        tokens = ["<s>", *phrase, "</s>"]
        assert set(itertools.pairwise(tokens)) <= bi
    assert all(float(ln.split()[0]) <= 0 for ln in bigrams)


def test_arpa_with_only_fillers_is_consistent() -> None:
    counts, unigrams, bigrams = _arpa_sections(asr.arpa(()))
    assert counts == {1: len(unigrams), 2: len(bigrams)}
    assert len(unigrams) == len(asr.FILLERS) + 2


class _NullStream(asr.Stream):
    def feed(self, pcm: bytes) -> None:
        pass

    def end(self) -> str:
        return ""


class _Engine(asr.AsrEngine):
    name = "test"

    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> asr.Stream:
        return _NullStream()


class _OpenEngine(_Engine):
    uses_grammar = False


class _SmallVocabulary(_Engine):
    vocabulary = frozenset({"yes", "please", "no", "i'll", "be", "there"})

    def known(self, word: str) -> bool:
        return word in self.vocabulary


def test_accepts_only_a_whole_phrase_in_order() -> None:
    engine = _Engine()
    phrases = engine.prepare(["I will be there", "no"])
    assert engine.accepts("well i will be there thanks", phrases)
    assert engine.accepts("i will be there", phrases)
    assert engine.accepts("uh no", phrases)
    assert not engine.accepts("i will be", phrases)
    assert not engine.accepts("there be will i", phrases)
    assert not engine.accepts("i will maybe be there", phrases)
    assert not engine.accepts("nothing", phrases)  # "no" is a whole word, not a prefix
    assert not engine.accepts("", phrases)


def test_open_vocabulary_engine_accepts_any_speech() -> None:
    engine = _OpenEngine()
    phrases = engine.prepare(["yes"])
    assert engine.accepts("what is the weather", phrases)
    assert not engine.accepts("", phrases)


def test_prepare_drops_unknown_words_and_dedupes() -> None:
    engine = _SmallVocabulary()
    kept = engine.prepare(
        ["Yes please", "yes  PLEASE!", "no", "I’ll be there", "zyzzyva no", "", "?"]
    )
    assert kept == (("i'll", "be", "there"), ("no",), ("yes", "please"))
    assert engine.metrics.unknown_words == {"zyzzyva"}
    assert _Engine().prepare(["zyzzyva"]) == (("zyzzyva",),)


# --- language detection -----------------------------------------------------------------------


def test_detect_languages_of_prompts() -> None:
    pytest.importorskip("lingua")
    english = [
        "Hello ${text1}, this is a reminder of your appointment on ${text2}.",
        "Will you be able to attend? Please say yes or no.",
    ]
    spanish = [
        "Hola ${text1}, le recordamos su cita del ${text2}.",
        "¿Podrá asistir? Por favor diga sí o no.",
    ]
    french = [
        "Bonjour ${text1}, ceci est un rappel de votre rendez-vous du ${text2}.",
        "Pourrez-vous venir ? Veuillez répondre oui ou non.",
    ]
    assert languages.detect(english) == "en"
    assert languages.detect(spanish) == "es"
    assert languages.detect(french) == "fr"


def test_detect_too_little_text_is_none() -> None:
    assert languages.detect(["Hello ${text1}"]) is None
    # 21 letters with the placeholders' "text", 5 without: too short once they are removed
    assert languages.detect(["Hello ${text1} ${text2} ${text3} ${text4}"]) is None
    assert languages.detect([]) is None
    assert languages.detect([""]) is None


def test_tts_languages() -> None:
    assert languages.tts_languages("flite") == ("en",)
    assert languages.tts_languages("espeak-ng", ["es-MX", "EN"]) == ("es", "en")
    assert languages.tts_languages("flite", ["de"]) == ("de",)


# --- engine: unclear speech, expected phrases, prompt parts -----------------------------------

TEMPLATE = """\
name: t
language: en
intents:
  ok: {phrases: ['yes', 'sure thing']}
  nope: {phrases: ['no'], positive: false}
nodes:
  ask:
    say: Hello ${text1}, shall we meet on ${text2}?
    listen: {timeout: 5}
    branches: {ok: bye, nope: bye}
    no_input: {retries: 1, say: I did not hear you, then: silent}
    no_match: {retries: 1, say: 'Please say yes or no, ${text1}', then: confused}
  bye:
    say: Bye
    hangup: true
  silent:
    say: Nobody there
    hangup: true
  confused:
    say: I could not understand
    hangup: true
"""


@dataclass
class ScriptedSession:
    """A CallSession that answers each listen from a script and records what it is given."""

    answers: list[Heard | None]
    said: list[tuple[str, tuple[tuple[str, bool], ...]]] = field(default_factory=list)
    expects: list[tuple[str, ...]] = field(default_factory=list)
    hung_up: bool = False

    async def say(self, text: str, parts: tuple[tuple[str, bool], ...] = ()) -> None:
        self.said.append((text, parts))

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        self.expects.append(expect)
        return self.answers.pop(0) if self.answers else None

    async def hangup(self) -> None:
        self.hung_up = True


def converse(answers: list[Heard | None]) -> tuple[ScriptedSession, ConversationOutcome]:
    session = ScriptedSession(answers)
    request = CallRequest(
        callee="+15550100",
        caller_id="+15550199",
        max_ringing=30,
        max_talk=300,
        variables=("Li", "Friday", *(None,) * 8),
    )
    outcome = asyncio.run(TemplateConversation(load(parse(TEMPLATE))).run(session, request))
    return session, outcome


def test_unclear_speech_takes_the_no_match_path() -> None:
    session, outcome = converse([Heard(unclear=True), Heard(text="yes")])
    assert [t for t, _ in session.said] == [
        "Hello Li, shall we meet on Friday?",
        "Please say yes or no, Li",
        "Bye",
    ]
    assert outcome.path == ("ask", "bye")
    assert outcome.intents == ("ok",)


def test_unclear_speech_gives_up_by_no_match_then() -> None:
    session, outcome = converse([Heard(unclear=True), Heard(unclear=True)])
    assert outcome.path == ("ask", "confused")
    assert session.said[-1][0] == "I could not understand"
    # and silence, by contrast, takes the no_input path
    session, outcome = converse([None, Heard(text="   ")])
    assert [t for t, _ in session.said][1] == "I did not hear you"
    assert outcome.path == ("ask", "silent")


def test_listen_expects_node_and_global_intent_phrases() -> None:
    session, _ = converse([Heard(unclear=True), Heard(text="sure thing")])
    assert len(session.expects) == 2
    expect = session.expects[0]
    assert session.expects[1] == expect
    for phrase in ("yes", "sure thing", "no", "stop calling me"):
        assert phrase in expect
    assert len(set(expect)) == len(expect)


def test_say_gets_parts_with_variables_not_fixed() -> None:
    session, _ = converse([Heard(unclear=True), Heard(text="no")])
    for text, said_parts in session.said:
        assert "".join(t for t, _ in said_parts) == text
    assert session.said[0][1] == (
        ("Hello ", True),
        ("Li", False),
        (", shall we meet on ", True),
        ("Friday", False),
        ("?", True),
    )
    assert session.said[1][1] == (("Please say yes or no, ", True), ("Li", False))
    assert session.said[2][1] == (("Bye", True),)


# --- the recogniser registry and settings ----------------------------------------------------


def test_settings_validate_the_asr_engine_against_the_registry() -> None:
    from pydantic import ValidationError

    from outdial.config import Settings
    from outdial.speech.registry import ASR_ENGINES, DEFAULT_ASR

    assert Settings(_env_file=None).asr_engine == DEFAULT_ASR == "whisper"  # type: ignore[call-arg]
    for name in ASR_ENGINES:
        assert Settings(_env_file=None, asr_engine=name).asr_engine == name  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="unknown ASR engine 'nope'; choose whisper"):
        Settings(_env_file=None, asr_engine="nope")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, asr_workers=0)  # type: ignore[call-arg]


def test_asr_languages_are_known_without_loading_a_model(tmp_path: Path) -> None:
    from outdial.speech.registry import WHISPER_MULTILINGUAL_VOCABULARY, asr_languages

    assert asr_languages("pocketsphinx") == asr_languages("whisper") == frozenset({"en"})
    assert asr_languages("vosk", "/some/model") is None  # a Vosk model names no language
    assert asr_languages("whisper", str(tmp_path)) is None  # not a model folder
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("t\n" * (WHISPER_MULTILINGUAL_VOCABULARY - 1))
    assert asr_languages("whisper", str(tmp_path)) == frozenset({"en"})  # a *.en model
    vocabulary.write_text("t\n" * WHISPER_MULTILINGUAL_VOCABULARY)
    multilingual = asr_languages("whisper", str(tmp_path))
    assert multilingual is not None and {"en", "es", "fr", "zh"} <= multilingual


def test_acceptance_expands_contractions_as_the_matcher_does() -> None:
    """Regression: "do not contact me" was heard exactly and rejected against the phrase
    "don't contact me"."""
    engine = _Engine()
    phrases = engine.prepare(["don't contact me", "I'll be there"])
    assert engine.accepts("do not contact me", phrases)
    assert engine.accepts("i will be there", phrases)
    assert engine.accepts("don't contact me", phrases)

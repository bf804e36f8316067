"""The conversation engine, through personas (the offline template tests operators run)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from outdial.cli.main import app
from outdial.script.persona import load_persona, run_persona
from outdial.script.template import load, parse

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "examples" / "templates"
PERSONAS = ROOT / "examples" / "personas"


def run(template: str, persona_yaml: str) -> dict:  # type: ignore[type-arg]
    t = load(parse((TEMPLATES / template).read_text()))
    return asyncio.run(run_persona(t, load_persona(persona_yaml)))


@pytest.mark.parametrize(
    ("template", "persona"),
    [
        ("appointment-reminder.yaml", "reminder-confirms.yaml"),
        ("appointment-reminder.yaml", "reminder-silent-then-keys.yaml"),
        ("appointment-reminder.yaml", "reminder-opts-out.yaml"),
        ("appointment-reminder.yaml", "reminder-hangs-up.yaml"),
        ("payment-reminder.yaml", "payment-cannot-pay.yaml"),
        ("satisfaction-survey.yaml", "survey-unhappy.yaml"),
    ],
)
def test_example_personas_pass(template: str, persona: str) -> None:
    result = run(template, (PERSONAS / persona).read_text())
    assert result["passed"], result["failures"]


def test_no_match_re_asks_then_gives_up() -> None:
    result = run(
        "appointment-reminder.yaml",
        "variables: {text1: A, text2: B}\nturns:\n  - say: what is the weather\n"
        "  - say: I like pizza\n",
    )
    bot = [t["text"] for t in result["transcript"] if t["speaker"] == "bot"]
    assert bot[1] == "Please say yes if you will attend, or no if you cannot."
    assert result["outcome"]["path"] == ["remind", "goodbye"]
    assert result["outcome"]["intents"] == []


def test_variables_fill_prompts_and_sms() -> None:
    result = run(
        "appointment-reminder.yaml",
        "variables: {text1: Li, text2: Friday}\nturns:\n  - say: sure, see you then\n",
    )
    assert result["transcript"][0]["text"].startswith("Hello Li, this is a reminder")
    assert result["outcome"]["smsText"].startswith("Hi Li, your appointment is on Friday")


def test_global_intent_without_a_route_uses_the_built_in_reply() -> None:
    template = load(
        parse(
            "name: t\nlanguage: en\nintents: {ok: {phrases: ['yes']}}\nnodes:\n"
            "  ask:\n    say: Shall we?\n    listen: {timeout: 5}\n    branches: {ok: bye}\n"
            "  bye:\n    say: Bye\n    hangup: true\n"
        )
    )
    result = asyncio.run(run_persona(template, load_persona("turns:\n  - say: stop calling me\n")))
    assert result["outcome"]["intent"] == "opt_out"
    assert "not be called again" in result["transcript"][-1]["text"]


def test_max_turns_bounds_a_loop() -> None:
    template = load(
        parse(
            "name: loop\nlanguage: en\nmax_turns: 3\nnodes:\n"
            "  a:\n    say: one\n    next: b\n  b:\n    say: two\n    next: a\n"
        )
    )
    result = asyncio.run(run_persona(template, load_persona("name: p\n")))
    assert len(result["transcript"]) == 3


def test_script_test_command_passes_and_fails_as_its_personas_say(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "script",
            "test",
            str(TEMPLATES / "appointment-reminder.yaml"),
            "--persona",
            str(PERSONAS / "reminder-confirms.yaml"),
            "--persona",
            str(PERSONAS / "reminder-opts-out.yaml"),
        ],
    )
    assert ok.exit_code == 0, ok.stdout
    assert ok.stdout.startswith("{"), repr(ok.stdout[:200])
    assert json.loads(ok.stdout)["passed"] is True
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("turns:\n  - say: 'yes'\nexpect:\n  grade: F\n")
    bad = runner.invoke(
        app,
        ["script", "test", str(TEMPLATES / "appointment-reminder.yaml"), "--persona", str(wrong)],
    )
    assert bad.exit_code == 1
    out = json.loads(bad.stdout)
    assert out["results"][0]["failures"] == ["grade: expected 'F', got 'A'"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("turns: [{sing: la}]\n")
    err = runner.invoke(
        app,
        ["script", "test", str(TEMPLATES / "appointment-reminder.yaml"), "--persona", str(broken)],
    )
    assert err.exit_code == 1 and "persona" in err.stderr


# --- opt-out confirmation (issue 10, item 4) ---

UNSURE_OPT_OUT = """
name: asked who is calling, heard as an opt-out
variables: {text1: Li, text2: Friday}
turns:
  - {say: quit calling, confidence: 0.4}
  - say: no, I asked who is calling
  - say: yes I'll be there
expect: {intent: confirm, intents: [confirm], grade: A}
"""

UNSURE_BUT_MEANT = """
name: an unsure opt-out, confirmed
variables: {text1: Li, text2: Friday}
turns:
  - {say: quit calling, confidence: 0.4}
  - say: yes please
expect: {intent: opt_out, grade: F, path: [remind, opted_out]}
"""

SURE_OPT_OUT = """
name: a clear opt-out lists at once
variables: {text1: Li, text2: Friday}
turns:
  - say: stop calling me
expect: {intent: opt_out, path: [remind, opted_out]}
"""


def test_a_low_confidence_opt_out_is_confirmed_and_a_no_keeps_the_callee() -> None:
    result = run("appointment-reminder.yaml", UNSURE_OPT_OUT)
    assert result["passed"], result["failures"]
    bot = [t["text"] for t in result["transcript"] if t["speaker"] == "bot"]
    assert "Just to confirm, you'd like us to stop calling you?" in bot
    assert "opt_out" not in result["outcome"]["intents"]


def test_a_low_confidence_opt_out_confirmed_lists_the_callee() -> None:
    result = run("appointment-reminder.yaml", UNSURE_BUT_MEANT)
    assert result["passed"], result["failures"]


def test_silence_after_the_confirmation_question_does_not_list() -> None:
    persona = UNSURE_BUT_MEANT.replace("  - say: yes please\n", "  - silence: true\n").replace(
        "expect: {intent: opt_out, grade: F, path: [remind, opted_out]}", "expect: {}"
    )
    result = run("appointment-reminder.yaml", persona)
    assert result["outcome"]["intent"] != "opt_out"


def test_a_confident_opt_out_lists_without_asking() -> None:
    result = run("appointment-reminder.yaml", SURE_OPT_OUT)
    assert result["passed"], result["failures"]
    assert not any("Just to confirm" in t["text"] for t in result["transcript"])


def test_the_template_confirmation_node_asks_instead_of_the_built_in() -> None:
    source = (TEMPLATES / "appointment-reminder.yaml").read_text()
    source = source.replace(
        "  busy: later\n", "  busy: later\n  opt_out_confirm: check_stop\n", 1
    ).replace(
        "  goodbye:\n",
        "  check_stop:\n    say: Shall we stop calling you, ${text1}?\n    listen: {timeout: 4}\n"
        "  goodbye:\n",
        1,
    )
    t = load(parse(source))
    result = asyncio.run(run_persona(t, load_persona(UNSURE_BUT_MEANT)))
    assert result["outcome"]["intent"] == "opt_out"
    assert "Shall we stop calling you, Li?" in [t["text"] for t in result["transcript"]]
    assert result["outcome"]["path"] == ["remind", "check_stop", "opted_out"]


def test_a_reschedule_slot_reaches_the_outcome() -> None:
    persona = """
name: counter-offer
variables: {text1: Li, text2: Monday}
turns:
  - say: not that day but maybe friday afternoon
expect: {intent: reschedule}
"""
    result = run("appointment-reminder.yaml", persona)
    assert result["passed"], result["failures"]
    assert result["outcome"]["slots"] == {"day": "friday", "time": "afternoon"}

"""outdial.script.template: parsing with path-level problems, and the facts submission checks."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from outdial.script.template import (
    TemplateFacts,
    TemplateProblem,
    facts,
    from_json,
    parse,
    to_json,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "examples" / "templates"
EXAMPLES = sorted(TEMPLATES.glob("*.yaml"))


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems_of(source: str) -> list[tuple[str, str]]:
    with pytest.raises(TemplateProblem) as info:
        parse(source)
    return info.value.problems


def paths_of(source: str) -> list[str]:
    return [path for path, _ in problems_of(source)]


MINIMAL = yaml_text(
    """
    name: Minimal
    nodes:
      a:
        say: Hello
    """
)


# --- valid files -------------------------------------------------------------------------------


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"appointment-reminder.yaml", "simple-notice.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_templates_parse(path: Path) -> None:
    data = parse(path.read_text(encoding="utf-8"))
    assert isinstance(data["name"], str)
    assert data["nodes"]
    assert data["start"] in data["nodes"]


def test_appointment_reminder_facts() -> None:
    data = parse((TEMPLATES / "appointment-reminder.yaml").read_text(encoding="utf-8"))
    f = facts(data, long_chars=200)
    assert f == TemplateFacts(
        name="Appointment reminder",
        language="en",
        variables=(1, 2),
        has_prompts=True,
        sms_enabled=True,
        sms_has_trigger=True,
        long_variable_prompt_chars=0,
    )


def test_simple_notice_facts() -> None:
    data = parse((TEMPLATES / "simple-notice.yaml").read_text(encoding="utf-8"))
    f = facts(data, long_chars=200)
    assert f.name == "Simple notice"
    assert f.variables == (1,)
    assert f.has_prompts
    assert not f.sms_enabled


def test_minimal_template_parses_and_returns_data() -> None:
    assert parse(MINIMAL) == {"name": "Minimal", "nodes": {"a": {"say": "Hello"}}}


def test_json_source_is_accepted() -> None:
    data = parse('{"name": "J", "nodes": {"a": {"say": "Hi ${text2}"}}}')
    assert data["nodes"]["a"]["say"] == "Hi ${text2}"


def test_extra_keys_are_kept() -> None:
    data = parse(MINIMAL + "intents:\n  confirm: {phrases: [sure]}\n")
    assert data["intents"] == {"confirm": {"phrases": ["sure"]}}


def test_yaml_1_1_booleans_in_phrases_are_reported() -> None:
    # Unquoted yes/no are YAML 1.1 booleans: the example templates quote their phrases.
    with pytest.raises(TemplateProblem) as err:
        parse(MINIMAL + "intents:\n  confirm: {phrases: [yes, no, 'yes']}\n")
    assert [p for p, _m in err.value.problems] == [
        "intents.confirm.phrases.0",
        "intents.confirm.phrases.1",
    ]
    assert "quote" in err.value.problems[0][1]


@pytest.mark.parametrize("language", ["en", "en-US", "zh-Hans-CN", "yue", "es-419"])
def test_language_tags_ok(language: str) -> None:
    assert parse(MINIMAL + f"language: {language}\n")["language"] == language


def test_json_round_trip() -> None:
    data = parse((TEMPLATES / "appointment-reminder.yaml").read_text(encoding="utf-8"))
    text = to_json(data)
    assert from_json(text) == data
    assert to_json(from_json(text)) == text


# --- problems carry paths ----------------------------------------------------------------------


def test_missing_name() -> None:
    assert problems_of("nodes:\n  a:\n    say: hi\n") == [("name", "Field required")]


def test_name_too_long() -> None:
    assert paths_of(f"name: {'x' * 129}\nnodes:\n  a: {{}}\n") == ["name"]
    assert parse(f"name: {'x' * 128}\nnodes:\n  a: {{}}\n")["name"] == "x" * 128


def test_empty_nodes() -> None:
    assert paths_of("name: x\nnodes: {}\n") == ["nodes"]


def test_missing_nodes() -> None:
    assert problems_of("name: x\n") == [("nodes", "Field required")]


def test_nodes_must_be_a_mapping() -> None:
    assert paths_of("name: x\nstart: a\nnodes: [a]\n") == ["nodes"]


def test_say_must_be_a_string() -> None:
    assert paths_of("name: x\nnodes:\n  a:\n    say: 5\n") == ["nodes.a.say"]


@pytest.mark.parametrize("var", ["text11", "text0", "foo", "Text1", " text1 ", "", "text01"])
def test_bad_placeholder_in_say(var: str) -> None:
    source = MINIMAL.replace("say: Hello", f'say: "Hello ${{{var}}}"')
    assert problems_of(source) == [
        ("nodes.a.say", f"${{{var}}} is not a callee variable (text1..text10)")
    ]


def test_bad_placeholders_anywhere_in_nodes_and_sms_are_all_reported() -> None:
    source = yaml_text(
        """
        name: x
        nodes:
          a:
            say: Hi ${foo}
            no_input:
              say: Again ${text11}
        sms:
          enabled: true
          text: Dear ${name}
        """
    )
    assert paths_of(source) == [
        "nodes.a.say",
        "nodes.a.no_input.say",
        "sms.text",
    ]


def test_placeholders_outside_nodes_and_sms_are_not_checked() -> None:
    assert parse(MINIMAL + "description: uses ${whatever}\n")["description"] == ("uses ${whatever}")


def test_unknown_start_node() -> None:
    assert problems_of(MINIMAL + "start: b\n") == [("start", "unknown node 'b'")]


def test_known_start_node() -> None:
    assert parse(MINIMAL + "start: a\n")["start"] == "a"


@pytest.mark.parametrize("language", ["EN", "en_US", "english", "e", "en-"])
def test_bad_language(language: str) -> None:
    assert paths_of(MINIMAL + f"language: {language}\n") == ["language"]


def test_several_problems_reported_together() -> None:
    source = "language: EN\nstart: z\nnodes:\n  a:\n    say: ${foo}\n"
    problems = problems_of(source)
    assert sorted(p for p, _ in problems) == ["language", "name", "nodes.a.say", "start"]
    message = str(TemplateProblem(problems))
    assert "name: Field required" in message
    assert "start: unknown node 'z'" in message


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("name: x\nnodes:\n  a: [1,\n", "line 4"),
        ("name: x\n  bad: indent\n", "line 2"),
        ("name: x\nnodes:\n\ta: 1\n", "line 3"),
    ],
)
def test_invalid_yaml_gives_a_line(source: str, line: str) -> None:
    problems = problems_of(source)
    assert len(problems) == 1
    assert problems[0][0] == line
    assert problems[0][1].startswith("not valid YAML: ")


@pytest.mark.parametrize("source", ["- a\n- b\n", "hello", "", "# only a comment\n", "42", "null"])
def test_non_mapping_file(source: str) -> None:
    assert problems_of(source) == [
        ("file", "a template is a mapping with name, language and nodes")
    ]


# --- facts -------------------------------------------------------------------------------------


def facts_of(source: str, long_chars: int = 200) -> TemplateFacts:
    return facts(parse(source), long_chars)


def test_facts_variables_sorted_unique_from_nodes_and_sms() -> None:
    source = yaml_text(
        """
        name: Vars
        language: zh-CN
        nodes:
          a:
            say: ${text10} ${text2} ${text2}
            no_input:
              say: ${text1}
            next: b
          b:
            say: nothing here
        sms:
          enabled: true
          text: Code ${text7}
          triggers: [{outcome: connected}]
        """
    )
    f = facts_of(source)
    assert f.variables == (1, 2, 7, 10)
    assert f.name == "Vars"
    assert f.language == "zh-CN"


def test_facts_without_variables_or_language() -> None:
    f = facts_of(MINIMAL)
    assert f.variables == ()
    assert f.language is None


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ({"a": {"say": "Hello"}}, True),
        ({"a": {"hangup": True}}, False),
        ({"a": {"say": "   "}}, False),
        ({"a": {"say": ""}, "b": {"say": "x"}}, True),
        ({"a": {"no_input": {"say": "Nested"}}}, True),
    ],
)
def test_facts_has_prompts(nodes: dict[str, Any], expected: bool) -> None:
    assert facts({"name": "x", "nodes": nodes}, 200).has_prompts is expected


@pytest.mark.parametrize(
    ("sms", "enabled", "has_trigger"),
    [
        (None, False, False),
        ({"enabled": False}, False, False),
        ({"enabled": True}, True, False),
        ({"enabled": True, "triggers": []}, True, False),
        ({"enabled": True, "triggers": [{"grade": "A"}]}, True, True),
        ({"enabled": False, "triggers": [{"grade": "A"}]}, False, True),
    ],
)
def test_facts_sms_flags(sms: dict[str, Any] | None, enabled: bool, has_trigger: bool) -> None:
    data: dict[str, Any] = {"name": "x", "nodes": {"a": {"say": "hi"}}}
    if sms is not None:
        data["sms"] = sms
    f = facts(data, 200)
    assert f.sms_enabled is enabled
    assert f.sms_has_trigger is has_trigger


def test_facts_sms_flags_after_parse() -> None:
    source = (
        MINIMAL
        + "grades: [{grade: A}]\nsms:\n  enabled: true\n  text: hi\n  triggers:\n    - grade: A\n"
    )
    f = facts_of(source)
    assert f.sms_enabled
    assert f.sms_has_trigger


def test_long_variable_prompt_chars_counts_only_long_prompts_with_variables() -> None:
    with_var = "Hello ${text1} " + "x" * 30  # 45 characters
    without_var = "y" * 80
    longest = "Dear ${text2}, " + "z" * 50  # 65 characters
    data = {
        "name": "x",
        "nodes": {
            "a": {"say": with_var},
            "b": {"say": without_var},
            "c": {"no_input": {"say": longest}},
        },
    }
    assert len(with_var) == 45
    assert len(longest) == 65
    assert facts(data, long_chars=40).long_variable_prompt_chars == 65
    assert facts(data, long_chars=50).long_variable_prompt_chars == 65
    assert facts(data, long_chars=64).long_variable_prompt_chars == 65
    assert facts(data, long_chars=65).long_variable_prompt_chars == 0  # strictly longer
    assert facts(data, long_chars=200).long_variable_prompt_chars == 0


def test_long_variable_prompt_chars_counts_characters() -> None:
    say = "您好 ${text1}，" + "请" * 40
    data = {"name": "x", "nodes": {"a": {"say": say}}}
    assert facts(data, long_chars=10).long_variable_prompt_chars == len(say)


def test_long_variable_prompt_ignores_sms_text() -> None:
    data = {
        "name": "x",
        "nodes": {"a": {"say": "short"}},
        "sms": {"enabled": True, "text": "${text1} " + "s" * 300},
    }
    f = facts(data, long_chars=10)
    assert f.long_variable_prompt_chars == 0
    assert f.variables == (1,)


# --- regressions found by review ----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        "    branches:\n      yes: a\n      no: a\n",
        "grades:\n  1: {when: {intent: confirm}}\n",
    ],
    ids=["yes-no-branch-keys", "integer-grade-key"],
)
def test_parsed_template_is_storable_or_rejected(extra: str) -> None:
    try:
        data = parse(MINIMAL + extra)
    except TemplateProblem:
        return
    assert from_json(to_json(data))

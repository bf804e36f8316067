"""The template format's semantic checks: each problem reported with its path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outdial.script.model import json_schema
from outdial.script.template import TemplateProblem, parse

ROOT = Path(__file__).resolve().parent.parent.parent

BASE = """
name: t
language: en
intents:
  yes_please: {phrases: ["yes"]}
nodes:
  ask:
    say: Shall we?
    listen: {timeout: 5}
    branches: {yes_please: done}
  done:
    say: Bye
    hangup: true
"""


def problems(source: str) -> list[tuple[str, str]]:
    with pytest.raises(TemplateProblem) as err:
        parse(source)
    return err.value.problems


def test_the_base_template_is_valid() -> None:
    assert parse(BASE)["nodes"]["ask"]["branches"] == {"yes_please": "done"}


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            ("branches: {yes_please: done}", "branches: {yes_please: nowhere}"),
            "nodes.ask.branches.yes_please",
            "unknown node 'nowhere'",
        ),
        (
            ("branches: {yes_please: done}", "branches: {maybe: done}"),
            "nodes.ask.branches.maybe",
            "unknown intent 'maybe'",
        ),
        (("listen: {timeout: 5}", "listen: {timeout: 500}"), "nodes.ask.listen.timeout", "60"),
        (
            ("    hangup: true", "    hangup: true\n  orphan:\n    say: never"),
            "nodes.orphan",
            "unreachable",
        ),
        (
            ("branches: {yes_please: done}", "branches: {yes_please: done}\n    dtmf: {'x': done}"),
            "nodes.ask.dtmf.x",
            "0-9",
        ),
        (("    listen: {timeout: 5}\n", ""), "nodes.ask.listen", "does not listen"),
        (("    hangup: true", "    hangup: true\n    next: ask"), "nodes.done", "one of hangup"),
        (
            ("branches: {yes_please: done}", "branches: {yes_please: done}\n    brnaches: {}"),
            "nodes.ask.brnaches",
            "Extra inputs",
        ),
        (("name: t", "name: t\nglobal: {opt_out: gone}"), "global.opt_out", "unknown node"),
        (("name: t", "name: t\nglobal: {weather: done}"), "global.weather", "not a global"),
        (
            ("name: t", "name: t\ngrades: [{grade: A, when: {intent: nope}}]"),
            "grades[0].when.intent",
            "unknown intent",
        ),
        (
            ("name: t", "name: t\nsms: {enabled: true, triggers: [{grade: Z}], text: hi}"),
            "sms.triggers[0].grade",
            "no grade rule",
        ),
        (
            ("name: t", "name: t\nsms: {enabled: true, triggers: [{outcome: connected}]}"),
            "sms.text",
            "without a text",
        ),
    ],
)
def test_each_problem_has_its_path(change: tuple[str, str], path: str, words: str) -> None:
    source = BASE.replace(*change)
    assert source != BASE
    found = problems(source)
    assert any(p == path and words in m for p, m in found), found


def test_sms_enabled_without_trigger_imports_with_a_warning_not_a_problem() -> None:
    source = BASE.replace("name: t", "name: t\nsms: {enabled: true, text: hi}")
    assert parse(source)["sms"]["enabled"] is True


def test_global_intents_route_and_make_their_nodes_reachable() -> None:
    source = BASE.replace("name: t", "name: t\nglobal: {opt_out: stop}") + (
        "  stop:\n    say: Sorry\n    hangup: true\n"
    )
    assert "stop" in parse(source)["nodes"]


@pytest.mark.parametrize(
    "name", ["appointment-reminder", "payment-reminder", "satisfaction-survey"]
)
def test_examples_import_cleanly(name: str) -> None:
    parse((ROOT / "examples" / "templates" / f"{name}.yaml").read_text())


def test_published_json_schema_is_current() -> None:
    published = json.loads((ROOT / "docs" / "template.schema.json").read_text())
    assert published == json_schema(), (
        "run: python -m outdial script schema > docs/template.schema.json"
    )

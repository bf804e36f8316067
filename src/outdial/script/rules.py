"""Grades and hang-up SMS: ordered rules over a call's outcome, path and intents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outdial.script.model import Condition, Template
from outdial.script.playback import render


def holds(c: Condition, outcome: str, path: Sequence[str], intents: Sequence[str]) -> bool:
    """Whether every field the condition gives holds for the call."""
    if c.intent is not None and c.intent not in intents:
        return False
    if c.intent_any is not None and not set(c.intent_any) & set(intents):
        return False
    if c.node is not None and c.node not in path:
        return False
    return c.outcome is None or c.outcome == outcome


def grade(t: Template, outcome: str, path: Sequence[str], intents: Sequence[str]) -> str | None:
    """The first grade rule that holds (None when the template grades nothing)."""
    for rule in t.grades:
        if holds(rule.when, outcome, path, intents):
            return rule.grade
    return None


def sms_text(
    t: Template,
    outcome: str,
    path: Sequence[str],
    intents: Sequence[str],
    given_grade: str | None,
    variables: tuple[str | None, ...],
) -> str | None:
    """The hang-up SMS to send, when the template enables one and a trigger fires."""
    if t.sms is None or not t.sms.enabled or not t.sms.text:
        return None
    for trigger in t.sms.triggers:
        fired = (
            trigger.get("grade") == given_grade
            if isinstance(trigger, dict)
            else holds(trigger, outcome, path, intents)
        )
        if fired:
            return render(t.sms.text, variables)
    return None


def trigger_json(trigger: Condition | dict[str, Any]) -> dict[str, Any]:
    return trigger if isinstance(trigger, dict) else trigger.model_dump(exclude_none=True)

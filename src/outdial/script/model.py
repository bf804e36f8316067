"""The AI speech template format, as typed models, and its semantic checks.

A template is a graph of nodes. A node may say a prompt, listen for speech or keys, branch on
the intent heard, re-ask on silence or on an answer it cannot match, hang up or transfer.
Intents are phrase lists; four global intents (opt_out, who_is_this, call_later, busy) apply on
every listening node. Grades are ordered rules over the path, the intents and the outcome;
hang-up SMS rules send a text when a trigger matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GLOBAL_INTENT_NAMES = ("opt_out", "who_is_this", "call_later", "busy")
# ``global`` may also name the node that confirms a low-confidence opt-out (see the engine).
OPT_OUT_CONFIRM = "opt_out_confirm"
GLOBAL_ROUTES = (*GLOBAL_INTENT_NAMES, OPT_OUT_CONFIRM)
OUTCOMES = (
    "connected", "voicemail", "busy", "no_answer", "rejected", "vacant", "unreachable", "failed",
)  # fmt: skip
_DTMF_KEY = re.compile(r"[0-9*#]", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", re.ASCII)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    timeout: float = Field(5.0, ge=0.5, le=60, description="seconds of silence before no_input")


class Retry(_Strict):
    """What to do when the callee says nothing (no_input) or nothing that matches (no_match)."""

    retries: int = Field(1, ge=0, le=5, description="times to re-ask before giving up")
    say: str | None = Field(None, description="the re-ask prompt (default: the node's prompt)")
    then: str | None = Field(None, description="node after the last retry (default: hang up)")


class Transfer(_Strict):
    to: str = Field(min_length=1, description="a SIP URI or a phone number")
    fallback: str | None = Field(
        None,
        description="said to the callee when the transfer does not go through (refused, busy, "
        "no answer), before the call hangs up; may use ${text1}..${text10}",
    )


class Node(_Strict):
    say: str | None = Field(None, description="prompt; may use ${text1}..${text10}")
    listen: Listen | None = None
    branches: dict[str, str] = Field(default_factory=dict, description="intent -> node")
    dtmf: dict[str, str] = Field(default_factory=dict, description="key (0-9, *, #) -> node")
    no_input: Retry | None = None
    no_match: Retry | None = None
    next: str | None = Field(None, description="node to go to after saying (no listening)")
    hangup: bool = False
    transfer: Transfer | None = None


class Intent(_Strict):
    phrases: list[str] = Field(min_length=1)
    positive: bool = Field(True, description="false for refusals (decline, opt-out...)")


class Condition(_Strict):
    """Every field given must hold (an empty condition always holds)."""

    intent: str | None = Field(None, description="this intent was heard")
    intent_any: list[str] | None = Field(None, description="one of these intents was heard")
    node: str | None = Field(None, description="the call passed through this node")
    outcome: str | None = Field(None, description="the call's outcome, e.g. connected")


class GradeRule(_Strict):
    grade: str = Field(min_length=1, max_length=8)
    when: Condition = Field(default_factory=Condition)


class Sms(_Strict):
    enabled: bool = False
    text: str | None = None
    triggers: list[Condition | dict[str, Any]] = Field(
        default_factory=list, description="conditions, or {grade: X}"
    )


class Voicemail(_Strict):
    """Answering machine detection on answered calls (SIP carriers listen to the greeting
    before the first prompt; see the README). A detected machine ends the call as outcome
    ``voicemail``."""

    action: Literal["hangup", "leave_message"] = Field(
        "hangup", description="hang up at once, or leave ``message`` after the beep"
    )
    message: str | None = Field(None, description="the message; may use ${text1}..${text10}")


class Template(_Strict):
    """An AI speech template file."""

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    language: str | None = Field(None, description="e.g. en, en-US")
    voice: str | None = None
    start: str | None = Field(None, description="first node (default: the first listed)")
    max_turns: int = Field(20, ge=1, le=100)
    intents: dict[str, Intent] = Field(default_factory=dict)
    global_intents: dict[str, str | None] = Field(
        default_factory=dict,
        alias="global",
        description="opt_out, who_is_this, call_later, busy -> node (null: built-in reply)",
    )
    nodes: dict[str, Node] = Field(min_length=1)
    grades: list[GradeRule] = Field(default_factory=list)
    sms: Sms | None = None
    voicemail: Voicemail | None = Field(None, description="detect answering machines")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def start_node(self) -> str:
        return self.start or next(iter(self.nodes))


def problems(t: Template) -> Iterator[tuple[str, str]]:
    """Semantic problems of a well-typed template, each with its path."""
    nodes = set(t.nodes)
    known_intents = set(t.intents) | set(GLOBAL_INTENT_NAMES)
    for name in t.nodes:
        if not _NAME.fullmatch(name):
            yield f"nodes.{name}", "a node name is letters, digits, _ and -"
    if t.start is not None and t.start not in nodes:
        yield "start", f"unknown node {t.start!r}"
    for key, target in t.global_intents.items():
        if key not in GLOBAL_ROUTES:
            yield f"global.{key}", f"not a global intent ({', '.join(GLOBAL_ROUTES)})"
        elif target is not None and target not in nodes:
            yield f"global.{key}", f"branch to unknown node {target!r}"
        elif key == OPT_OUT_CONFIRM and target is not None and t.nodes[target].listen is None:
            yield f"global.{key}", f"the confirmation node {target!r} must listen"
    for name, node in t.nodes.items():
        where = f"nodes.{name}"
        for intent, target in node.branches.items():
            if intent not in known_intents:
                yield f"{where}.branches.{intent}", f"unknown intent {intent!r}"
            if target not in nodes:
                yield f"{where}.branches.{intent}", f"branch to unknown node {target!r}"
        for key, target in node.dtmf.items():
            if not _DTMF_KEY.fullmatch(key):
                yield f"{where}.dtmf.{key}", "a key is one of 0-9, * or #"
            if target not in nodes:
                yield f"{where}.dtmf.{key}", f"branch to unknown node {target!r}"
        for field in ("no_input", "no_match"):
            retry: Retry | None = getattr(node, field)
            if retry is not None and retry.then is not None and retry.then not in nodes:
                yield f"{where}.{field}.then", f"branch to unknown node {retry.then!r}"
        if node.next is not None and node.next not in nodes:
            yield f"{where}.next", f"branch to unknown node {node.next!r}"
        if (node.branches or node.dtmf) and node.listen is None and not node.dtmf:
            yield f"{where}.listen", "the node branches on speech but does not listen"
        endings = sum(bool(x) for x in (node.hangup, node.transfer, node.next))
        if endings > 1:
            yield where, "choose one of hangup, transfer and next"
        if (node.listen or node.dtmf) and (node.hangup or node.transfer):
            yield where, "a node that listens cannot also hang up or transfer"
    for i, rule in enumerate(t.grades):
        yield from _condition_problems(rule.when, f"grades[{i}].when", t, known_intents)
    if t.sms is not None:
        grades = {r.grade for r in t.grades}
        for i, trig in enumerate(t.sms.triggers):
            where = f"sms.triggers[{i}]"
            if isinstance(trig, dict):
                if set(trig) != {"grade"}:
                    yield where, "a trigger is a condition (intent, node, outcome) or {grade: X}"
                elif trig["grade"] not in grades:
                    yield f"{where}.grade", f"no grade rule gives {trig['grade']!r}"
            else:
                yield from _condition_problems(trig, where, t, known_intents)
        if t.sms.enabled and not t.sms.text:
            yield "sms.text", "hang-up SMS is enabled without a text"
    vm = t.voicemail
    if vm is not None and vm.action == "leave_message" and not (vm.message or "").strip():
        yield "voicemail.message", "leave_message needs the message to leave"
    yield from _unreachable(t)


def _condition_problems(
    c: Condition, where: str, t: Template, known_intents: set[str]
) -> Iterator[tuple[str, str]]:
    for intent in [c.intent] if c.intent else []:
        if intent not in known_intents:
            yield f"{where}.intent", f"unknown intent {intent!r}"
    for i, intent in enumerate(c.intent_any or []):
        if intent not in known_intents:
            yield f"{where}.intent_any[{i}]", f"unknown intent {intent!r}"
    if c.node is not None and c.node not in t.nodes:
        yield f"{where}.node", f"unknown node {c.node!r}"
    if c.outcome is not None and c.outcome not in OUTCOMES:
        yield f"{where}.outcome", f"unknown outcome {c.outcome!r} ({', '.join(OUTCOMES)})"


def successors(t: Template, name: str) -> set[str]:
    node = t.nodes[name]
    out = set(node.branches.values()) | set(node.dtmf.values())
    for retry in (node.no_input, node.no_match):
        if retry is not None and retry.then:
            out.add(retry.then)
    if node.next:
        out.add(node.next)
    if node.listen is not None:
        out |= {n for n in t.global_intents.values() if n}
    return out & set(t.nodes)


def _unreachable(t: Template) -> Iterator[tuple[str, str]]:
    start = t.start_node
    if start not in t.nodes:
        return
    seen = {start}
    todo = [start]
    while todo:
        for nxt in successors(t, todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for name in t.nodes:
        if name not in seen:
            yield f"nodes.{name}", "unreachable from the start node"


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the template format."""
    schema = Template.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "outdial AI speech template"
    return schema

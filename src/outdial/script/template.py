"""The AI speech template file: parsing, validation with path-level problems, and the facts
that task submission checks (variables used, language, hang-up SMS triggers, long prompts).

The format itself (nodes, intents, grades, SMS rules) is typed in ``outdial.script.model``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from pydantic import ValidationError as PydanticError

from outdial.domain.text import unstorable
from outdial.errors import ValidationError
from outdial.script.model import Template
from outdial.script.model import problems as semantic_problems

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}", re.ASCII)
_TEXT_VAR = re.compile(r"text([1-9]|10)", re.ASCII)
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", re.ASCII)


class TemplateProblem(ValidationError):
    """A template file that cannot be imported; ``problems`` lists (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """What submission needs to know about a template."""

    name: str
    language: str | None
    variables: tuple[int, ...]
    has_prompts: bool
    sms_enabled: bool
    sms_has_trigger: bool
    long_variable_prompt_chars: int


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _unstorable_texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    # Names and texts are stored (the name in its own column): each must be storable text.
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}".lstrip(".") if isinstance(k, str) else path
            if isinstance(k, str) and (why := unstorable(k)) is not None:
                yield here, f"the key {why}"
            yield from _unstorable_texts(v, here)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _unstorable_texts(v, f"{path}[{i}]")
    elif isinstance(value, str) and (why := unstorable(value)) is not None:
        yield path or "file", why


def _non_string_keys(value: Any, path: str) -> Iterator[tuple[str, str]]:
    # YAML reads unquoted yes/no/on/off and numbers as booleans and ints; a key must be text.
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if not isinstance(k, str):
                yield where, f'key {k!r} must be text: quote it ("{k}")'
            yield from _non_string_keys(v, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_string_keys(v, f"{path}[{i}]")


def _variables(text: str) -> Iterator[str]:
    for m in _PLACEHOLDER.finditer(text):
        yield m.group(1)


def _prompts(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, text in _strings(data.get("nodes", {}), "nodes"):
        if path.endswith(".say"):
            yield path, text


def parse(source: str) -> dict[str, Any]:
    """Parse and validate a template's YAML (or JSON) text; raise TemplateProblem."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        raise TemplateProblem([(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if not isinstance(data, dict):
        raise TemplateProblem([("file", "a template is a mapping with name, language and nodes")])
    problems: list[tuple[str, str]] = list(_non_string_keys(data, ""))
    problems.extend(_unstorable_texts(data, ""))
    if problems:
        raise TemplateProblem(problems)
    try:
        template = Template.model_validate(data)
    except PydanticError as exc:
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "file"
            message = err["msg"]
            if isinstance(err.get("input"), bool) and err["type"] == "string_type":
                message = "YAML reads unquoted yes/no/on/off as true/false: quote the text"
            problems.append((path, message))
        start, nodes = data.get("start"), data.get("nodes")
        if isinstance(start, str) and isinstance(nodes, dict) and start not in nodes:
            problems.append(("start", f"unknown node {start!r}"))
    else:
        problems.extend(semantic_problems(template))
    language = data.get("language")
    if isinstance(language, str) and not _LANGUAGE.fullmatch(language):
        problems.append(("language", f"{language!r} is not a language tag such as en or en-US"))
    for path, text in _strings({k: data.get(k) for k in ("nodes", "sms")}, ""):
        for var in _variables(text):
            if not _TEXT_VAR.fullmatch(var):
                problems.append(
                    (path.lstrip("."), f"${{{var}}} is not a callee variable (text1..text10)")
                )
    if problems:
        raise TemplateProblem(problems)
    return data


def facts(data: dict[str, Any], long_chars: int) -> TemplateFacts:
    """Summarise a parsed template for submission checks."""
    variables: set[int] = set()
    for _path, text in _strings({k: data.get(k) for k in ("nodes", "sms")}, ""):
        for var in _variables(text):
            m = _TEXT_VAR.fullmatch(var)
            if m:
                variables.add(int(m.group(1)))
    prompts = list(_prompts(data))
    long_len = max(
        (len(t) for _p, t in prompts if _PLACEHOLDER.search(t) and len(t) > long_chars),
        default=0,
    )
    sms = data.get("sms") or {}
    return TemplateFacts(
        name=str(data.get("name", "")),
        language=data.get("language"),
        variables=tuple(sorted(variables)),
        has_prompts=any(t.strip() for _p, t in prompts),
        sms_enabled=bool(sms.get("enabled")),
        sms_has_trigger=bool(sms.get("triggers")),
        long_variable_prompt_chars=long_len,
    )


def load(definition: dict[str, Any]) -> Template:
    """The typed template of a stored (already validated) definition."""
    return Template.model_validate(definition)


def to_json(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def from_json(text: str) -> dict[str, Any]:
    value = orjson.loads(text)
    assert isinstance(value, dict)
    return value

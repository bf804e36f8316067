"""The conversation used until the full template engine lands: it says the template's opening
prompt, with the callee's ``${textN}`` variables filled in, then hangs up."""

from __future__ import annotations

import re
from typing import Any

from outdial.domain.conversation import CallRequest, CallSession, ConversationOutcome

_VARIABLE = re.compile(r"\$\{text([1-9]|10)\}", re.ASCII)


def render(text: str, variables: tuple[str | None, ...]) -> str:
    """Fill ``${text1}``..``${text10}`` from a callee's variables (missing ones become "")."""

    def value(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (variables[n - 1] if n <= len(variables) else None) or ""

    return _VARIABLE.sub(value, text)


def opening_prompt(definition: dict[str, Any]) -> str | None:
    """The ``say`` text of the start node (or the first node when no start is named)."""
    nodes = definition.get("nodes") or {}
    if not isinstance(nodes, dict) or not nodes:
        return None
    start = definition.get("start")
    node = nodes.get(start) if isinstance(start, str) else next(iter(nodes.values()))
    say = node.get("say") if isinstance(node, dict) else None
    return say if isinstance(say, str) else None


class PromptPlayback:
    """Says one prompt and hangs up (a Conversation)."""

    def __init__(self, prompt: str | None) -> None:
        self.prompt = prompt

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        if self.prompt:
            await call.say(render(self.prompt, request.variables))
        await call.hangup()
        return ConversationOutcome()

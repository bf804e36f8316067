"""Offline template tests: scripted callers (personas) talk to a template, in text or audio.

A persona file (YAML):

    name: confirms at once
    variables: {text1: Li, text2: June 21}
    turns:                      # one per time the bot listens
      - say: yes I will be there
      - silence: true           # says nothing until the listen times out
      - dtmf: "1"
      - {say: quit calling, confidence: 0.4}   # as a recogniser unsure of it would report
      - hangup: true            # hangs up instead of answering
    expect:                     # every field optional
      intent: confirm           # the last intent heard
      intents: [confirm]
      grade: A
      path: [remind, confirmed]
      sms: true                 # a hang-up SMS is sent (or false)
      ended_by: bot             # bot | callee
      feedback: "1"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from outdial.domain.conversation import CalleeHungUp, CallRequest, Heard, PromptParts
from outdial.errors import ValidationError
from outdial.script.engine import TemplateConversation
from outdial.script.model import Template

if TYPE_CHECKING:
    from outdial.script.audio import AudioSession, Hearing


class PersonaProblem(ValidationError):
    """A persona file that cannot be read."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Turn(_Strict):
    say: str | None = None
    # The recogniser's confidence to report with ``say`` (a mishearing, in text tests).
    confidence: float | None = Field(None, ge=0, le=1)
    silence: bool = False
    dtmf: str | None = None
    hangup: bool = False


class Expect(_Strict):
    intent: str | None = None
    intents: list[str] | None = None
    grade: str | None = None
    path: list[str] | None = None
    sms: bool | None = None
    ended_by: str | None = Field(None, pattern="^(bot|callee)$")
    feedback: str | None = None


class Persona(_Strict):
    name: str = "persona"
    variables: dict[str, str] = Field(default_factory=dict)
    turns: list[Turn] = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)


def load_persona(text: str) -> Persona:
    try:
        return Persona.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, PydanticError) as exc:
        raise PersonaProblem(str(exc)) from exc


@dataclass
class TextSession:
    """A CallSession played by a persona, in text."""

    persona: Persona
    transcript: list[dict[str, str]] = field(default_factory=list)
    _next: int = 0
    hung_up_by_bot: bool = False

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        self.transcript.append({"speaker": "bot", "text": text})

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        if self._next >= len(self.persona.turns):
            self.transcript.append({"speaker": "callee", "text": "(silence)"})
            return None
        turn = self.persona.turns[self._next]
        self._next += 1
        if turn.hangup:
            self.transcript.append({"speaker": "callee", "text": "(hangs up)"})
            raise CalleeHungUp
        if turn.dtmf:
            self.transcript.append({"speaker": "callee", "text": f"(keys {turn.dtmf})"})
            return Heard(dtmf=turn.dtmf)
        if turn.silence or not turn.say:
            self.transcript.append({"speaker": "callee", "text": "(silence)"})
            return None
        heard = await self._spoken(turn.say, expect)
        if heard is not None and turn.confidence is not None and not heard.unclear:
            heard = Heard(heard.text, heard.dtmf, heard.unclear, turn.confidence)
        return heard

    async def _spoken(self, said: str, expect: tuple[str, ...]) -> Heard | None:
        """What the bot gets of an answer the persona says (here: the text itself)."""
        self.transcript.append({"speaker": "callee", "text": said})
        return Heard(text=said)

    async def hangup(self) -> None:
        self.hung_up_by_bot = True


def variables_of(persona: Persona) -> tuple[str | None, ...]:
    return tuple(persona.variables.get(f"text{i}") for i in range(1, 11))


async def run_persona(
    template: Template, persona: Persona, hearing: Hearing | None = None
) -> dict[str, Any]:
    """Run one persona; return its transcript, the outcome and the failed expectations.

    With ``hearing`` the persona talks over audio (TTS -> 8 kHz line -> ASR) instead of text.
    """
    session: TextSession
    audio: AudioSession | None = None
    if hearing is None:
        session = TextSession(persona)
    else:
        from outdial.script.audio import AudioSession  # needs the speech extra

        session = audio = AudioSession(persona, hearing, template.voice)
    request = CallRequest(
        callee="0", caller_id="", max_ringing=60, max_talk=999, variables=variables_of(persona)
    )
    outcome = await TemplateConversation(template).run(session, request)
    got = {
        "intent": outcome.intent,
        "intents": list(outcome.intents),
        "grade": outcome.grade,
        "path": list(outcome.path),
        "sms": outcome.sms is not None,
        "ended_by": "callee" if outcome.ended_by_callee else "bot",
        "feedback": outcome.feedback,
    }
    failures = [
        f"{key}: expected {want!r}, got {got[key]!r}"
        for key, want in persona.expect.model_dump(exclude_none=True).items()
        if got[key] != want
    ]
    result: dict[str, Any] = {
        "persona": persona.name,
        "transcript": session.transcript,
        "outcome": {
            **got,
            "smsText": outcome.sms,
            "transferTo": outcome.transfer_to,
            "slots": dict(outcome.slots),
        },
        "failures": failures,
        "passed": not failures,
    }
    if audio is not None:
        result["audio"] = {
            "replyLatencyMs": [round(x * 1000, 1) for x in audio.latencies],
            "promptSeconds": round(sum(a.seconds for a in audio.bot_audio), 2),
        }
    return result

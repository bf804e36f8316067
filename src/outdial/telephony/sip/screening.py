"""Answering machine screening on a SIP call: the detector hears the greeting before the
conversation says anything.

Listening first is what lets the cadence cue work: a person says "hello?" and waits, which a
prompt talking over them would hide (and barge-in would cut the prompt anyway). It costs a
person the detector's decision time (about 1.5-2.5 s after a short hello, at most
``max_seconds`` for one who says nothing) before the first prompt. A person's greeting is then
forgotten, so it is not taken as the answer to that prompt.

On a machine the conversation's ``voicemail_reached`` runs instead of the template: with
``leave_message`` after the beep (or the greeting's end), else at once (it hangs up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from outdial.domain.conversation import (
    CalleeHungUp,
    CallRequest,
    CallSession,
    ConversationOutcome,
    ScreensVoicemail,
)
from outdial.speech.audio import Audio
from outdial.telephony.amd import AmdSettings, Decision, MachineDetector, Verdict
from outdial.telephony.sip.session import SipCallSession

log = logging.getLogger(__name__)

# Beyond the detector's own limits (counted in received frames), in loop seconds: frames stop
# only when media never started, and then nothing will decide.
WALL_MARGIN = 2.0


class Screening:
    """A Conversation that screens the call, then runs ``conversation`` or its voicemail
    branch; ``decision`` says what answered once ``run`` has returned."""

    def __init__(
        self, conversation: ScreensVoicemail, session: SipCallSession, settings: AmdSettings
    ) -> None:
        self.conversation, self.session, self.settings = conversation, session, settings
        self.decision: Decision | None = None
        self.message_at: float | None = None  # audio seconds from the answer, when left

    @property
    def machine(self) -> bool:
        return self.decision is not None and self.decision.verdict is Verdict.MACHINE

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        detector = MachineDetector(self.settings)
        loop = asyncio.get_running_loop()
        decided: asyncio.Future[object] = loop.create_future()
        ready: asyncio.Future[object] = loop.create_future()

        def hear(frame: Audio) -> None:
            if detector.feed(frame) is not None and not decided.done():
                decided.set_result(None)
            if detector.message_at is not None and not ready.done():
                ready.set_result(None)

        self.session.tap = hear
        try:
            await self._until(decided, self.settings.max_seconds)
            self.decision = detector.decision or Decision(
                Verdict.UNKNOWN, detector.seconds, "no_media"
            )
            log.info(
                "answering machine detection",
                extra={"verdict": self.decision.verdict.value, "reason": self.decision.reason,
                       "at": self.decision.at},
            )  # fmt: skip
            if not self.machine:
                self.session.tap = None
                self.session.forget_speech()
                return await self.conversation.run(call, request)
            plan = self.conversation.voicemail
            if plan is not None and plan.leave_message:
                await self._until(ready, self.settings.max_greeting)
                self.message_at = detector.message_at
            self.session.tap = None
            return await self.conversation.voicemail_reached(call, request)
        finally:
            self.session.tap = None

    async def _until(self, event: asyncio.Future[object], seconds: float) -> None:
        """Wait for ``event``; raise CalleeHungUp when the callee hangs up first."""
        gone: asyncio.Future[object] = asyncio.ensure_future(self.session.hung_up.wait())
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds + WALL_MARGIN):
                    await asyncio.wait({event, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if self.session.hung_up.is_set():
            raise CalleeHungUp

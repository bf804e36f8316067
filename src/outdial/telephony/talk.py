"""Running a conversation on an answered call until the bot, the callee, the talk limit or a
stop ends it: the part every carrier shares."""

from __future__ import annotations

import asyncio
import contextlib

from outdial.domain.conversation import (
    CalleeHungUp,
    CallRequest,
    CallSession,
    Conversation,
    ConversationOutcome,
)


async def converse(
    conversation: Conversation,
    session: CallSession,
    request: CallRequest,
    stop: asyncio.Event,
    limit: float | None,
) -> tuple[ConversationOutcome, str]:
    """Run ``conversation``; return what it decided and who ended the call: "bot" (it
    finished), "callee" (hung up), "limit" (``limit`` seconds passed) or "system" (stop)."""
    run = asyncio.ensure_future(conversation.run(session, request))
    stopper = asyncio.ensure_future(stop.wait())
    outcome = ConversationOutcome()
    side = "bot"
    try:
        done, _ = await asyncio.wait(
            {run, stopper}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
        if run in done:
            try:
                outcome = run.result()
            except CalleeHungUp:
                side = "callee"
            else:
                # An engine that caught the hang-up to keep what it learned says so.
                if outcome.ended_by_callee:
                    side = "callee"
        elif stopper in done:
            side = "system"
        else:
            side = "limit"
    finally:
        for fut in (run, stopper):
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(asyncio.CancelledError, CalleeHungUp):
                    await fut
    return outcome, side

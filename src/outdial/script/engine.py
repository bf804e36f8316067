"""The conversation engine: runs a template on one answered call (a Conversation).

It says each node's prompt, listens, matches what the callee says (or keys) to the node's
branches and the global intents, re-asks on silence or on an answer it cannot match, and
follows the graph until a node hangs up or transfers, the callee hangs up, or ``max_turns``
prompts have been said. It then grades the call and decides the hang-up SMS.
"""

from __future__ import annotations

from outdial.domain.conversation import (
    CalleeHungUp,
    CallRequest,
    CallSession,
    ConversationOutcome,
    Heard,
    PromptParts,
    VoicemailPlan,
)
from outdial.script.intents import (
    GLOBAL_INTENTS,
    OPT_OUT,
    IntentMatch,
    IntentSpec,
    Matcher,
    RuleMatcher,
    match_off_loop,
)
from outdial.script.model import GLOBAL_INTENT_NAMES, OPT_OUT_CONFIRM, Node, Retry, Template
from outdial.script.playback import parts, render
from outdial.script.rules import grade, sms_text

# What the bot says for a global intent the template routes nowhere.
BUILT_IN_REPLIES = {
    "opt_out": "We are sorry to have bothered you. You will not be called again. Goodbye.",
    "who_is_this": None,
    "call_later": "Of course, we will call you back later. Goodbye.",
    "busy": "Sorry to disturb you. We will call you back later. Goodbye.",
}

# An opt-out heard with less confidence than this (the match's, or the recogniser's when it
# gives one) is confirmed before the callee is listed: a mishearing ("who's calling" heard as
# "quit calling") must not put a willing callee on the do-not-call list.
OPT_OUT_CONFIRM_BELOW = 0.9
BUILT_IN_OPT_OUT_CONFIRM = "Just to confirm, you'd like us to stop calling you?"
# How a confirmation's answer is read: a yes (or another opt-out) confirms; anything else,
# silence included, does not, and the conversation goes back to the node that was asking.
CONFIRM_INTENTS = (
    IntentSpec(
        "yes",
        (
            "yes", "yeah", "yep", "yup", "correct", "that is right", "right", "please do",
            "please", "i do", "exactly", "sure", "absolutely", "definitely", "that is correct",
            "go ahead", "do it", "stop", "yes please", "of course",
        ),
    ),
    IntentSpec(
        "no",
        (
            "no", "nope", "nah", "not at all", "i did not say that", "that is not what i said",
            "i did not", "wrong", "keep calling", "you misheard", "never mind",
        ),
        positive=False,
    ),
    GLOBAL_INTENTS[OPT_OUT],
)  # fmt: skip


class TemplateConversation:
    """A Conversation that follows a template."""

    def __init__(self, template: Template, matcher: Matcher | None = None) -> None:
        self.t = template
        self.matcher = matcher or RuleMatcher()
        self._specs = {
            name: IntentSpec(name, tuple(i.phrases), i.positive)
            for name, i in template.intents.items()
        }
        self._expected: dict[int, tuple[str, ...]] = {}
        vm = template.voicemail
        # Read by carriers that detect machines (domain.conversation.voicemail_plan).
        self.voicemail = (
            VoicemailPlan(leave_message=vm.action == "leave_message") if vm is not None else None
        )

    def prepare(self) -> None:
        """Let the matcher get ready for every listening node (the semantic matcher encodes
        its examples off the loop), so the first callee is not kept waiting."""
        prepare = getattr(self.matcher, "prepare", None)
        if prepare is None:
            return
        for node in self.t.nodes.values():
            if node.branches:
                prepare(self._intents_for(node))

    def _intents_for(self, node: Node) -> list[IntentSpec]:
        own = [self._specs[n] for n in node.branches if n in self._specs]
        globals_ = [GLOBAL_INTENTS[n] for n in GLOBAL_INTENT_NAMES]
        for name in node.branches:
            if name in GLOBAL_INTENTS and name not in GLOBAL_INTENT_NAMES:
                globals_.append(GLOBAL_INTENTS[name])
        return own + globals_

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        state = _State()
        try:
            await self._walk(call, request, state)
        except CalleeHungUp:
            state.callee_hung_up = True
        return self._outcome(request, state)

    async def voicemail_reached(
        self, call: CallSession, request: CallRequest
    ) -> ConversationOutcome:
        """A machine answered: leave the template's message when it asks to (the carrier
        has waited for the beep), then hang up; grades and SMS see outcome voicemail. The
        path is empty: the call went through no node."""
        state = _State()
        vm = self.t.voicemail
        try:
            if vm is not None and vm.action == "leave_message" and vm.message:
                state.turns += 1
                await self._say(call, vm.message, request.variables)
            await call.hangup()
        except CalleeHungUp:
            state.callee_hung_up = True
        return self._outcome(request, state, "voicemail")

    def _outcome(
        self, request: CallRequest, s: _State, outcome: str = "connected"
    ) -> ConversationOutcome:
        given = grade(self.t, outcome, s.path, s.intents)
        return ConversationOutcome(
            intent=s.intents[-1] if s.intents else None,
            grade=given,
            feedback=s.dtmf or "-1",
            path=tuple(s.path),
            intents=tuple(s.intents),
            sms=sms_text(self.t, outcome, s.path, s.intents, given, request.variables),
            transfer_to=s.transfer_to,
            transfer_fallback=s.transfer_fallback,
            ended_by_callee=s.callee_hung_up,
            slots=s.slots,
        )

    async def _walk(self, call: CallSession, request: CallRequest, s: _State) -> None:
        name: str | None = self.t.start_node
        v = request.variables
        while name is not None and s.turns < self.t.max_turns:
            node = self.t.nodes[name]
            s.path.append(name)
            if node.say:
                s.turns += 1
                await self._say(call, node.say, v)
            if node.transfer is not None:
                s.transfer_to = node.transfer.to
                if node.transfer.fallback:
                    said = node.transfer.fallback
                    s.transfer_fallback = (render(said, v), parts(said, v))
                await call.hangup()
                return
            if node.hangup:
                await call.hangup()
                return
            if node.listen is not None or node.dtmf:
                name = await self._listen(call, node, v, s)
            else:
                name = node.next
        await call.hangup()

    async def _listen(
        self, call: CallSession, node: Node, v: tuple[str | None, ...], s: _State
    ) -> str | None:
        timeout = node.listen.timeout if node.listen else 5.0
        silences = misses = 0
        while True:
            heard = await call.listen(timeout, self._expect(node))
            if heard is None or not (heard.text.strip() or heard.dtmf or heard.unclear):
                silences += 1
                retry = node.no_input or Retry(retries=0)
                if silences > retry.retries or s.turns >= self.t.max_turns:
                    return retry.then
                s.turns += 1
                await self._say(call, retry.say or node.say or "", v)
                continue
            target = await self._route(node, heard, s)
            if target is _CONFIRM_OPT_OUT:
                if await self._confirm_opt_out(call, v, s):
                    s.intents.append(OPT_OUT)
                    target = self._global(OPT_OUT)
                elif s.turns >= self.t.max_turns:
                    return None
                else:
                    s.turns += 1  # not confirmed: ask the node's question again
                    await self._say(call, node.say or "", v)
                    continue
            if isinstance(target, _Reply):
                s.turns += 1
                await call.say(target.text, ((target.text, True),))
                return None
            if target is not _NO_MATCH:
                return target  # type: ignore[return-value]
            misses += 1
            retry = node.no_match or Retry(retries=0)
            if misses > retry.retries or s.turns >= self.t.max_turns:
                return retry.then
            s.turns += 1
            await self._say(call, retry.say or node.say or "", v)

    async def _confirm_opt_out(
        self, call: CallSession, v: tuple[str | None, ...], s: _State
    ) -> bool:
        """Ask whether a low-confidence opt-out was meant; True only for a clear yes (or a
        confident opt-out). The template's ``global.opt_out_confirm`` node gives the
        question and the listen timeout, else the built-in question is asked."""
        name = self.t.global_intents.get(OPT_OUT_CONFIRM)
        node = self.t.nodes[name] if name else None
        s.turns += 1
        if name and node is not None and node.say:
            s.path.append(name)
            await self._say(call, node.say, v)
        else:
            await call.say(BUILT_IN_OPT_OUT_CONFIRM, ((BUILT_IN_OPT_OUT_CONFIRM, True),))
        timeout = node.listen.timeout if node is not None and node.listen else 5.0
        heard = await call.listen(timeout, tuple(p for i in CONFIRM_INTENTS for p in i.phrases))
        if heard is None or not heard.text.strip():
            return False
        answer = await match_off_loop(self.matcher, heard.text, CONFIRM_INTENTS)
        if answer is None:
            return False
        if answer.intent == OPT_OUT:
            return _confidence(answer, heard) >= OPT_OUT_CONFIRM_BELOW
        return answer.intent == "yes"

    async def _say(self, call: CallSession, template: str, v: tuple[str | None, ...]) -> None:
        await call.say(render(template, v), parts(template, v))

    def _expect(self, node: Node) -> tuple[str, ...]:
        """The phrases a recogniser should listen for at ``node`` (its intents and globals)."""
        cached = self._expected.get(id(node))
        if cached is None:
            cached = tuple(dict.fromkeys(p for i in self._intents_for(node) for p in i.phrases))
            self._expected[id(node)] = cached
        return cached

    async def _route(self, node: Node, heard: Heard, s: _State) -> str | object | None:
        if heard.dtmf:
            s.dtmf = (s.dtmf or "") + heard.dtmf
            return node.dtmf.get(heard.dtmf[0], _NO_MATCH)
        if not heard.text.strip():
            return _NO_MATCH  # spoken but not made out: re-ask
        match = await match_off_loop(self.matcher, heard.text, self._intents_for(node))
        if match is None:
            return _NO_MATCH
        if match.intent == OPT_OUT and _confidence(match, heard) < OPT_OUT_CONFIRM_BELOW:
            return _CONFIRM_OPT_OUT
        s.intents.append(match.intent)
        if match.slots:
            s.slots = match.slots
        if match.intent in node.branches:
            return node.branches[match.intent]
        if match.intent in GLOBAL_INTENT_NAMES:
            return self._global(match.intent)
        return _NO_MATCH

    def _global(self, intent: str) -> str | object | None:
        target = self.t.global_intents.get(intent)
        if target is not None:
            return target
        reply = BUILT_IN_REPLIES.get(intent)
        return _Reply(reply) if reply else _NO_MATCH


class _State:
    def __init__(self) -> None:
        self.path: list[str] = []
        self.intents: list[str] = []
        self.turns = 0
        self.dtmf: str | None = None
        self.transfer_to: str | None = None
        self.transfer_fallback: tuple[str, PromptParts] | None = None
        self.callee_hung_up = False
        self.slots: tuple[tuple[str, str], ...] = ()


class _Reply:
    """A built-in reply: say it and hang up (a global intent the template routes nowhere)."""

    def __init__(self, text: str) -> None:
        self.text = text


_NO_MATCH = object()
_CONFIRM_OPT_OUT = object()


def _confidence(match: IntentMatch, heard: Heard) -> float:
    """The lower of the match's confidence and the recogniser's (when it gave one)."""
    if heard.confidence is None:
        return match.confidence
    return min(match.confidence, heard.confidence)


def conversation_for(template: Template, matcher: Matcher | None = None) -> TemplateConversation:
    return TemplateConversation(template, matcher)


__all__ = [
    "BUILT_IN_OPT_OUT_CONFIRM",
    "BUILT_IN_REPLIES",
    "OPT_OUT_CONFIRM_BELOW",
    "TemplateConversation",
    "conversation_for",
]

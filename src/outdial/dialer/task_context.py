"""What the dialer knows of a running task besides its callees: the template it talks with,
the account's rates and the task's calling windows, each read once and kept.

The dialer plans every running task on every step and records every call; reading a template
or a rate table from the database each time would cost a statement per call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from outdial.clock import Clock
from outdial.domain.rates import Rate, RateTable
from outdial.domain.windows import Window, parse_windows
from outdial.script.engine import TemplateConversation
from outdial.script.intents import Matcher
from outdial.script.model import Template
from outdial.script.rules import grade, sms_text
from outdial.script.template import from_json, load
from outdial.store.dialing import RunnableTask
from outdial.store.leases import Claimed
from outdial.store.repo import Store
from outdial.telephony.carrier import CallResult, Conversation, HangUpAtOnce


class TaskContext:
    """Templates by script id, rate tables by account (kept ``rates_ttl_seconds``, so a new
    rate card applies within that time) and parsed windows by (windows, zone)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        matcher: Matcher,
        rates_ttl_seconds: float,
        conversation: Conversation | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.matcher = matcher
        self.rates_ttl = timedelta(seconds=rates_ttl_seconds)
        # A fixed conversation (tests), or each task's template run by the engine.
        self.conversation = conversation
        self._templates: dict[int, Template | None] = {}
        self._rates: dict[int, tuple[datetime, RateTable]] = {}
        self._windows: dict[tuple[str, str], tuple[list[Window], ZoneInfo]] = {}

    def windows_of(self, task: RunnableTask) -> tuple[list[Window], ZoneInfo]:
        """The task's calling windows and its zone."""
        key = (task.allow_send_time, task.timezone)
        found = self._windows.get(key)
        if found is None:
            windows = parse_windows(
                [(w["strTime"], w["endTime"]) for w in orjson.loads(task.allow_send_time)]
            )
            found = self._windows[key] = (windows, ZoneInfo(task.timezone))
        return found

    def template(self, task: RunnableTask) -> Template | None:
        """The task's template (``None`` when its script is gone)."""
        if task.script_id not in self._templates:
            with self.store.read() as tx:
                script = tx.script(task.account_id, task.script_id)
            template = load(from_json(script.definition)) if script else None
            self._templates[task.script_id] = template
            if template is not None and self.conversation is None:
                TemplateConversation(template, self.matcher).prepare()
        return self._templates[task.script_id]

    def conversation_for(self, task: RunnableTask) -> Conversation:
        """What runs once the callee answers."""
        if self.conversation is not None:
            return self.conversation
        template = self.template(task)
        if template is None:
            return HangUpAtOnce()
        return TemplateConversation(template, self.matcher)

    def grade_unanswered(self, task: RunnableTask, claimed: Claimed, result: CallResult) -> None:
        """Calls the conversation never ran on still get the template's grade and SMS rules
        (e.g. an SMS when nobody answers)."""
        template = self.template(task)
        if template is None or result.answered_at is not None:
            return
        outcome = str(result.outcome)
        given = grade(template, outcome, (), ())
        result.conversation.grade = given
        result.conversation.sms = sms_text(template, outcome, (), (), given, claimed.texts)

    def rate_table(self, account_id: int) -> RateTable:
        """The account's rates as of at most ``rates_ttl_seconds`` ago."""
        cached = self._rates.get(account_id)
        now = self.clock.now()
        if cached is not None and now - cached[0] < self.rates_ttl:
            return cached[1]
        with self.store.read() as tx:
            table = RateTable(Rate(*r) for r in tx.rates_for(account_id))
        self._rates[account_id] = (now, table)
        return table

"""The composition root: every service, built once from settings, a store and a clock.

The API, the console and the CLI all take their services from here, so a rule lives in one
service and every front end applies the same one. Building is cheap (no I/O); the services
share the store, the clock and the submit policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from outdial.clock import Clock
from outdial.config import Settings
from outdial.notify.ssrf import PushTargets
from outdial.service.accounts import AccountService
from outdial.service.console import ConsoleService
from outdial.service.operator import Operator, OperatorService
from outdial.service.operators import OperatorService as ConsoleUsers
from outdial.service.recall import RecallService
from outdial.service.records import RecordService
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.service.tasks import TaskService
from outdial.service.trunks import TrunkService
from outdial.store.repo import Store


@dataclass(frozen=True)
class Services:
    """Every service over one store and clock. Build it with :meth:`build`."""

    settings: Settings
    store: Store
    clock: Clock
    policy: SubmitPolicy
    submit: SubmitService
    tasks: TaskService
    records: RecordService
    recalls: RecallService
    accounts: AccountService
    # Operator actions across accounts (the CLI's), audited under ``actor``.
    operator: OperatorService
    # The web console's sign-in users and sessions.
    console_users: ConsoleUsers
    console: ConsoleService
    trunks: TrunkService

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        actor: str = "operator",
        push_targets: PushTargets | None = None,
    ) -> Services:
        """``actor`` names who acts in the audit log; ``push_targets`` (default: public
        addresses only) limits where an account's push URL may point."""
        policy = SubmitPolicy.from_settings(settings)
        tasks = TaskService(store, clock, policy)
        recalls = RecallService(store, clock, policy)
        return cls(
            settings=settings,
            store=store,
            clock=clock,
            policy=policy,
            submit=SubmitService(store, clock, policy),
            tasks=tasks,
            records=RecordService(store),
            recalls=recalls,
            accounts=AccountService(store, clock, push_targets=push_targets, actor=actor),
            operator=OperatorService(store, clock, Operator(actor=actor, policy=policy), tasks),
            console_users=ConsoleUsers(store, clock),
            console=ConsoleService(store, clock, tasks, recalls),
            trunks=TrunkService(store, clock),
        )

    @cached_property
    def scripts(self) -> ScriptService:
        """Template import; built on first use, as it asks the speech engines what they
        support."""
        from outdial.speech.languages import tts_languages
        from outdial.speech.registry import asr_languages

        s = self.settings
        return ScriptService(
            self.store,
            self.clock,
            tts_languages=tts_languages(s.tts_engine, s.tts_languages),
            long_chars=s.long_tts_chars,
            asr_languages=asr_languages(s.asr_engine, s.asr_model),
            asr_engine=s.asr_engine,
        )

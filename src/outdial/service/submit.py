"""send/ai: accepting a task and its callees atomically, with every LAAFFIC check."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from outdial.clock import Clock, epoch_ms
from outdial.config import Settings
from outdial.domain.billing import may_dial
from outdial.domain.callees import CalleeStream
from outdial.domain.codes import TaskStatus
from outdial.domain.money import to_units
from outdial.domain.rates import RateTable
from outdial.domain.task import TaskFields, TaskSettings, validate_task, zone
from outdial.domain.text import check_text
from outdial.errors import (
    AuthError,
    Conflict,
    InsufficientBalance,
    LanguageRequired,
    LanguageUnsupported,
    NoNumber,
    NoRate,
    NotFound,
    OutdialError,
    ParameterError,
    ScriptNotFound,
    SmsTriggerRequired,
    TaskNameExists,
    TooManyTasks,
    TtsQuotaUsed,
    ValidationError,
)
from outdial.script.template import TemplateFacts, facts, from_json
from outdial.speech.languages import tts_languages
from outdial.store.records import AccountRecord, NewTask, ScriptRecord
from outdial.store.repo import IntegrityError, Store, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmitPolicy:
    """Server-wide limits that submission enforces."""

    min_balance: int = 0
    tts_languages: tuple[str, ...] = ("en",)
    long_tts_chars: int = 200
    long_tts_daily_quota: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmitPolicy:
        return cls(
            min_balance=to_units(settings.min_balance),
            tts_languages=tts_languages(settings.tts_engine, settings.tts_languages),
            long_tts_chars=settings.long_tts_chars,
            long_tts_daily_quota=settings.long_tts_daily_quota,
        )


def funds_below_minimum(acc: AccountRecord, policy: SubmitPolicy) -> bool:
    """Balance + gift + credit under OUTDIAL_MIN_BALANCE: no task may start or resume (-10)."""
    return not may_dial(acc.balance + acc.gift + acc.credit, policy.min_balance)


def check_template(script: ScriptRecord, policy: SubmitPolicy) -> TemplateFacts:
    """The template checks of send/ai and update/ai: -38, -39, -53."""
    info = facts(from_json(script.definition), policy.long_tts_chars)
    # The stored language is the template's own or, when it gave none, the detected one.
    language = script.language or info.language
    if info.has_prompts and not language:
        raise LanguageRequired(
            f"template {script.id} has prompt text but no language (none given, none detected)"
        )
    if language and language.split("-")[0].lower() not in policy.tts_languages:
        raise LanguageUnsupported(
            f"template {script.id}: language {language!r} is not supported by the TTS "
            f"(supported: {', '.join(policy.tts_languages)})"
        )
    if info.sms_enabled and not info.sms_has_trigger:
        raise SmsTriggerRequired(f"template {script.id} enables hang-up SMS without a trigger")
    return info


def template_for_task(
    tx: Tx, account_id: int, script_id: int, task_id: int, policy: SubmitPolicy
) -> TemplateFacts:
    """The checks of a template given to an existing task's callees (update/ai, resend/ai):
    it exists (-60), passes the template checks, and finds every text variable it uses (-21)."""
    script = tx.script(account_id, script_id)
    if script is None:
        raise ScriptNotFound(f"scriptId {script_id} does not exist")
    info = check_template(script, policy)
    for n in info.variables:
        missing = tx.first_callee_without_text(task_id, n)
        if missing is not None:
            raise ValidationError(
                f"callee {missing} has no text{n}, which template {script.id} uses"
            )
    return info


def task_row_values(settings: TaskSettings) -> dict[str, Any]:
    return {
        "task_name": settings.task_name,
        "script_id": settings.script_id,
        "display_num": settings.display_num,
        "send_at": epoch_ms(settings.send_at) if settings.send_at else None,
        "allow_send_time": orjson.dumps([w.as_json() for w in settings.windows]).decode(),
        "timezone": settings.timezone,
        "window_zone": settings.window_zone,
        "max_calls": settings.max_calls,
        "max_ringing_time": settings.max_ringing_time,
        "enable_recording": settings.enable_recording,
        "callout_rate": settings.callout_rate,
    }


@dataclass(frozen=True, slots=True)
class RecallPlan:
    """A recall flow's rounds: ``recall_type`` 0 calls every callee again, 1 only those not
    connected; ``recall_num`` rounds, each ``interval_minutes`` after the last finished."""

    recall_type: int
    interval_minutes: int
    recall_num: int


def check_recall_flow(plan: RecallPlan) -> None:
    """LAAFFIC's rules for a recall flow (-21)."""
    if plan.recall_type not in (0, 1):
        raise ValidationError("recallFlow.recallType must be 0 (all) or 1 (not connected)")
    if not 1 <= plan.interval_minutes <= 1440:
        raise ValidationError("recallFlow.recallInterval must be 1-1440 minutes")
    if not 1 <= plan.recall_num <= 10:
        raise ValidationError("recallFlow.recallNum must be 1-10")


@dataclass(frozen=True, slots=True)
class TaskSubmission:
    """A send/ai request, typed: the application, the task's fields (range-checked by
    ``submit``), the callee list as sent (a comma-separated string, or a list of numbers and
    ``{calleeNumber, text1..text10}`` objects: each entry is checked while it is stored, see
    ``domain.callees``) and an optional recall flow."""

    app_id: str
    fields: TaskFields
    callees: Any
    recall: RecallPlan | None = None


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An Idempotency-Key and a digest of the request it came with: the same key with the
    same digest replays the first task's id, with another answers -20."""

    key: str
    request_hash: str

    @classmethod
    def of(cls, key: str, request: bytes) -> Idempotency:
        """The checked key (-22 when empty, too long or not storable text)."""
        key = key.strip()
        if not 1 <= len(key) <= 255:
            raise ParameterError("Idempotency-Key must be 1-255 characters")
        check_text(key, "Idempotency-Key")
        return cls(key, hashlib.sha256(request).hexdigest())


def tts_day(now: datetime, timezone: str) -> str:
    return now.astimezone(zone(timezone)).date().isoformat()


class SubmitService:
    """Creates AI group-call tasks."""

    def __init__(self, store: Store, clock: Clock, policy: SubmitPolicy) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy

    def replayed(self, account_id: int, idempotency: Idempotency) -> int | None:
        """The task an earlier request with this key made (None if none did); -20 when that
        request's body differed. Checked before the body is read, and again in ``submit``."""
        return self._replayed(account_id, idempotency.key, idempotency.request_hash)

    def submit(
        self, account_id: int, req: TaskSubmission, idempotency: Idempotency | None = None
    ) -> int:
        """Check a send/ai request and store the task with its callees; return the task id."""
        if req.recall is not None:
            check_recall_flow(req.recall)
        if idempotency is not None:
            replay = self.replayed(account_id, idempotency)
            if replay is not None:
                return replay
        now = self.clock.now()
        with self.store.read() as tx:
            account = tx.account(account_id)
            if account is None:
                raise AuthError("account vanished")
            settings = validate_task(req.fields, account.timezone, now)
            app = tx.app(account_id, req.app_id)
            if app is None:
                raise NotFound(f"appId {req.app_id!r} does not exist")
            script = tx.script(account_id, req.fields.script_id)
            if script is None:
                raise ScriptNotFound(f"scriptId {req.fields.script_id} does not exist")
            info = check_template(script, self.policy)
            rates = RateTable(tx.rates_of(account_id))
        callees = CalleeStream(req.callees, info.variables)
        if callees.empty:
            raise NoNumber("numberList is empty")
        # SQLite: the list is checked in full before the write transaction opens, which then
        # only stores rows: that transaction holds the database's one write lock, which the
        # dialer waits on, and on a busy API process the checking thread gets a slice of the
        # interpreter's time only now and then. A bad entry's error is kept and raised in the
        # documented order, after the account's limits. PostgreSQL: the callees are checked
        # while the database ingests them (it parses the COPY stream in its own process
        # meanwhile); its transaction holds nothing the dialer needs (account_for_new_task).
        checked_first = self.store.dialect == "sqlite"
        rejected = self._check_callees(callees, rates) if checked_first else None
        task = NewTask(
            account_id=account_id,
            app_pk=app.id,
            status=int(TaskStatus.WAITING),
            num_cnt=0,
            submitted_cnt=0,
            created_at=epoch_ms(now),
            **task_row_values(settings),
        )
        try:
            with self.store.write() as tx:
                acc = tx.account_for_new_task(account_id)
                assert acc is not None
                if idempotency is not None:
                    replay = self._check_key(
                        tx, account_id, idempotency.key, idempotency.request_hash
                    )
                    if replay is not None:
                        return replay
                self.check_account(tx, acc, settings.task_name)
                if info.long_variable_prompt_chars > 0:
                    self._use_tts_quota(tx, acc, now)
                if rejected is not None:
                    raise rejected
                task_id = tx.insert_task(task, updated_at=task.created_at)
                if checked_first:
                    tx.insert_callees(task_id, callees.rows)
                else:
                    # Any bad entry raises from the stream and rolls back the whole task.
                    tx.insert_callees(task_id, callees)
                    rejected = self._check_callees(callees, rates)
                    if rejected is not None:
                        raise rejected
                blocked = 0
                if tx.has_dnc(account_id):
                    blocked = tx.block_dnc_callees(task_id, account_id)
                    if blocked >= callees.unique:
                        raise NoNumber("every callee is on the do-not-call list")
                tx.update_task(
                    task_id,
                    num_cnt=callees.unique,
                    submitted_cnt=callees.submitted,
                    blocked_cnt=blocked,
                )
                if req.recall is not None:
                    tx.insert_flow(
                        account_id=account_id,
                        task_id=task_id,
                        recall_type=req.recall.recall_type,
                        interval_minutes=req.recall.interval_minutes,
                        recall_num=req.recall.recall_num,
                        created_at=task.created_at,
                        updated_at=task.created_at,
                    )
                if idempotency is not None:
                    tx.insert_idempotency(
                        account_id,
                        idempotency.key,
                        idempotency.request_hash,
                        task_id,
                        task.created_at,
                    )
        except IntegrityError as exc:
            # A concurrent submission won a race on the task name or the idempotency key.
            if idempotency is not None:
                replay = self.replayed(account_id, idempotency)
                if replay is not None:
                    return replay
            raise TaskNameExists(f"task name {settings.task_name!r} already exists") from exc
        log.info(
            "task accepted",
            extra={
                "task_id": task_id,
                "account_id": account_id,
                "callees": callees.unique,
                "duplicates": callees.duplicates,
            },
        )
        return task_id

    @staticmethod
    def _check_callees(callees: CalleeStream, rates: RateTable) -> OutdialError | None:
        """Validate every callee (unless the stream was consumed already) and its rate; the
        first error found (None: all good)."""
        if not callees.consumed:
            try:
                for _row in callees:
                    pass
            except OutdialError as exc:
                return exc
        unrated = rates.first_unrated(callees.numbers)
        if unrated is not None:
            return NoRate(
                f"no rate for callee {unrated}: add its destination prefix to the rate table"
            )
        return None

    def _replayed(self, account_id: int, key: str, body_hash: str) -> int | None:
        with self.store.read() as tx:
            return self._check_key(tx, account_id, key, body_hash)

    @staticmethod
    def _check_key(tx: Tx, account_id: int, key: str, body_hash: str) -> int | None:
        seen = tx.idempotent_task(account_id, key)
        if seen is None:
            return None
        if seen[0] != body_hash:
            raise Conflict("Idempotency-Key was already used with a different request body")
        return seen[1]

    def check_account(self, tx: Tx, acc: AccountRecord, task_name: str) -> None:
        unfinished = tx.count_unfinished(acc.id)
        if unfinished >= acc.max_tasks:
            raise TooManyTasks(
                f"the account has {unfinished} unfinished tasks; its limit is {acc.max_tasks}"
            )
        if funds_below_minimum(acc, self.policy):
            raise InsufficientBalance(
                "balance plus credit is below the minimum needed to start a task"
            )
        if tx.task_name_taken(acc.id, task_name):
            raise TaskNameExists(f"task name {task_name!r} already exists")

    def _use_tts_quota(self, tx: Tx, acc: AccountRecord, now: datetime) -> None:
        day = tts_day(now, acc.timezone)
        if tx.tts_used(acc.id, day) >= self.policy.long_tts_daily_quota:
            raise TtsQuotaUsed(
                f"the account's {self.policy.long_tts_daily_quota} long-TTS tasks for {day} "
                "are used up"
            )
        tx.add_tts_use(acc.id, day)

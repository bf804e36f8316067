"""Turning a carrier's CallResult into a call record and its effects."""

from __future__ import annotations

from datetime import datetime

import orjson

from outdial.clock import epoch_ms
from outdial.domain.billing import charge
from outdial.domain.outcome import TERMINATIONS, Outcome
from outdial.domain.rates import RateTable
from outdial.store import schema as s
from outdial.store.dialing import RunnableTask
from outdial.store.leases import Claimed, LeaseLost
from outdial.store.results import FinishedCall
from outdial.telephony.carrier import CallResult

# An attempt cut short by a dying worker is retried once: at most this many attempts then.
MAX_INTERRUPTED_ATTEMPTS = 2
# The intent a conversation reports when the callee asks never to be called again.
OPT_OUT_INTENT = "opt_out"


def _ms(dt: datetime | None) -> int | None:
    return epoch_ms(dt) if dt is not None else None


def _transcript(result: CallResult) -> str | None:
    if not result.transcript:
        return None
    turns = [
        {"speaker": t.speaker, "text": t.text, "at": round(t.at, 2)} for t in result.transcript
    ]
    return orjson.dumps(turns).decode()


def finished_call(
    claimed: Claimed,
    task: RunnableTask,
    result: CallResult,
    rates: RateTable,
    now: datetime,
    worker: str | None = None,
) -> FinishedCall:
    """The record and state change of a completed attempt."""
    termination = TERMINATIONS[result.outcome]
    success = termination.code == 200
    talk = result.talk_seconds
    rate = rates.find(claimed.number)
    billed = charge(talk, rate) if rate is not None and success else None
    record = _base_record(
        claimed, task.account_id, task.display_num, task.script_id, task.created_at, now
    )
    record.update(
        outcome=str(result.outcome),
        call_time=_ms(result.started_at),
        ringing_time=_ms(result.ringing_at),
        answer_time=_ms(result.answered_at),
        hangup_time=_ms(result.ended_at),
        call_duration=talk,
        ring_duration=result.ring_seconds,
        charged_duration=billed.charged_seconds if billed else 0,
        bill_period=rate.bill_period if rate else None,
        rate=rate.price if rate else None,
        cost=billed.cost if billed else 0,
        currency=rate.currency if rate else None,
        termination_code=termination.code,
        termination_reason=termination.reason,
        sip_code=result.sip_code,
        feedback_value=result.conversation.feedback,
        recording_file_id=result.recording,
        intent=result.conversation.intent,
        grade=result.conversation.grade,
        transcript=_transcript(result),
        hangup_side=result.hangup_side,
        sms_text=result.conversation.sms,
        transfer_to=result.conversation.transfer_to,
        transfer_result=result.transfer,
        path=orjson.dumps(list(result.conversation.path)).decode()
        if result.conversation.path
        else None,
        slots=orjson.dumps(dict(result.conversation.slots)).decode()
        if result.conversation.slots
        else None,
        worker=worker,
    )
    return FinishedCall(
        record=record,
        callee_id=claimed.callee_id,
        callee_state=s.CALLEE_CONNECTED if success else s.CALLEE_FAILED,
        task_id=task.task_id,
        account_id=task.account_id,
        success=success,
        final=True,
        talk_seconds=talk,
        cost=billed.cost if billed else 0,
        push_url=task.push_url,
        opt_out=result.conversation.intent == OPT_OUT_INTENT,
        epoch=claimed.epoch,
    )


def blocked_call(
    claimed: Claimed, task: RunnableTask, now: datetime, why: Outcome = Outcome.BLOCKED
) -> FinishedCall:
    """The record of a callee that is never dialed: on the do-not-call list, or with no moment
    when all its time zones are inside a window."""
    termination = TERMINATIONS[why]
    record = _base_record(
        claimed, task.account_id, task.display_num, task.script_id, task.created_at, now
    )
    record.update(
        outcome=str(why),
        termination_code=termination.code,
        termination_reason=termination.reason,
        sip_code=0,
        hangup_side=None,
    )
    return FinishedCall(
        record=record,
        callee_id=claimed.callee_id,
        callee_state=s.CALLEE_BLOCKED,
        task_id=task.task_id,
        account_id=task.account_id,
        success=False,
        final=True,
        talk_seconds=0,
        cost=0,
        push_url=task.push_url,
        epoch=claimed.epoch,
    )


def _base_record(
    claimed: Claimed,
    account_id: int,
    display_num: str,
    script_id: int,
    submit_time: int,
    now: datetime,
) -> dict[str, object]:
    """A record of an attempt that never reached the network (every call field empty)."""
    ms = epoch_ms(now)
    return {
        "account_id": account_id,
        "task_id": claimed.task_id,
        "callee_id": claimed.callee_id,
        "attempt": claimed.attempt,
        "callee": claimed.number,
        "display_num": display_num,
        "script_id": script_id,
        "submit_time": submit_time,
        "call_time": None,
        "ringing_time": None,
        "answer_time": None,
        "hangup_time": ms,
        "call_duration": 0,
        "ring_duration": 0,
        "charged_duration": 0,
        "bill_period": None,
        "rate": None,
        "cost": 0,
        "currency": None,
        "feedback_value": "-1",
        "called_info": None,
        "recording_file_id": None,
        "intent": None,
        "grade": None,
        "transcript": None,
        "sms_text": None,
        "path": None,
        "slots": None,
        "transfer_to": None,
        "transfer_result": None,
        "worker": None,
        "created_at": ms,
    }


def interrupted_call(lost: LeaseLost, now: datetime) -> FinishedCall:
    """The record of an attempt whose worker died mid-call; the callee is retried once."""
    claimed = lost.claimed
    termination = TERMINATIONS[Outcome.INTERRUPTED]
    final = claimed.attempt >= MAX_INTERRUPTED_ATTEMPTS
    record = _base_record(
        claimed, lost.account_id, lost.display_num, lost.script_id, lost.submit_time, now
    )
    record.update(
        outcome=str(Outcome.INTERRUPTED),
        termination_code=termination.code,
        termination_reason=termination.reason,
        sip_code=termination.code,
        hangup_side="system",
        worker=lost.worker,
    )
    return FinishedCall(
        record=record,
        callee_id=claimed.callee_id,
        callee_state=s.CALLEE_FAILED if final else s.CALLEE_PENDING,
        task_id=claimed.task_id,
        account_id=lost.account_id,
        success=False,
        final=final,
        talk_seconds=0,
        cost=0,
        push_url=lost.push_url,
        epoch=claimed.epoch,
    )


def cut_short(claimed: Claimed, task: RunnableTask, now: datetime, worker: str) -> FinishedCall:
    """The record of this worker's own call ended by a stop before it finished: recorded
    ``interrupted`` and given back at once, as a stopped worker's calls are."""
    lost = LeaseLost(
        claimed,
        task.account_id,
        task.display_num,
        task.script_id,
        task.created_at,
        task.push_url,
        worker,
    )
    return interrupted_call(lost, now)

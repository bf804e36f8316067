"""The task-action bodies of the LAAFFIC API and their translation to the services' types.

The services take typed values (task ids, :class:`TaskChanges`); only the API knows the
JSON names and that a field absent differs from a field sent as null.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field

from outdial.service.requests import Body as _Body
from outdial.service.requests import Int, TaskFieldsBody, load_object, validate
from outdial.service.tasks import KEEP, Keep, TaskChanges

T = TypeVar("T")


class UpdateAiBody(TaskFieldsBody):
    """POST /v3/voice/group/call/update/ai."""

    keyId: Int = Field(description="the task id returned by send/ai")
    maxCalls: Int | None = Field(None, description="max talk seconds after answer, 1-999")


class TaskIdsBody(_Body):
    """POST /voice/group/call/cancel (and the pause/resume extensions)."""

    taskIdList: list[Int]


def task_ids(body: bytes) -> list[int]:
    """The ``taskIdList`` of a cancel, pause or resume body (-22 when mistyped)."""
    return validate(TaskIdsBody, load_object(body)).taskIdList


def task_changes(body: bytes) -> tuple[int, TaskChanges]:
    """The task id and the changes of an update/ai body: the fields it names (null
    included) replace the task's; ``maxCalls`` sent as null keeps the task's."""
    req = validate(UpdateAiBody, load_object(body))
    given = req.model_fields_set

    def pick(name: str, value: T) -> T | Keep:
        return value if name in given else KEEP

    windows = [(w.strTime, w.endTime) for w in req.allowSendTime or []]
    changes = TaskChanges(
        task_name=pick("taskName", req.taskName),
        max_calls=KEEP if req.maxCalls is None else req.maxCalls,
        script_id=pick("scriptId", req.scriptId),
        display_num=pick("displayNum", req.displayNum),
        send_time=pick("sendTime", req.sendTime),
        allow_send_time=pick("allowSendTime", windows),
        max_ringing_time=pick("maxRingingTime", req.maxRingingTime),
        enable_recording=pick("enableRecording", req.enableRecording),
        callout_rate=pick("calloutRate", req.calloutRate),
        timezone=pick("timezone", req.timezone),
        window_zone=pick("windowZone", req.windowZone),
    )
    return req.keyId, changes

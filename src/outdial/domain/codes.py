"""LAAFFIC status codes and task statuses."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Status codes of LAAFFIC's v3 voice API, as outdial answers them."""

    SUCCESS = 0
    AUTH = -1
    IP_RESTRICTED = -2
    INSUFFICIENT_BALANCE = -10
    TIMESTAMP_EXPIRED = -16
    SERVER_FAULT = -18
    DATA_EXISTS = -20
    VALIDATION = -21
    PARAMETER = -22
    DATA_CAPS = -23
    NOT_FOUND = -24
    FEE_FAILED = -26
    NO_CALLABLE_LEFT = -34
    NO_NUMBER = -35
    TOO_MANY_TASKS = -37
    LANGUAGE_REQUIRED = -38
    LANGUAGE_UNSUPPORTED = -39
    TASK_NAME_EXISTS = -41
    TASK_STATUS = -42
    TTS_QUOTA = -46
    SMS_TRIGGER_REQUIRED = -53
    TASK_NOT_OPERABLE = -54
    SCRIPT_NOT_FOUND = -60


REASONS: dict[Code, str] = {
    Code.SUCCESS: "success",
    Code.AUTH: "authentication error",
    Code.IP_RESTRICTED: "restricted IP access",
    Code.INSUFFICIENT_BALANCE: "insufficient balance",
    Code.TIMESTAMP_EXPIRED: "timestamp expires",
    Code.SERVER_FAULT: "port program unusual",
    Code.DATA_EXISTS: "data existing",
    Code.VALIDATION: "data validation exception",
    Code.PARAMETER: "parameter exception",
    Code.DATA_CAPS: "data caps",
    Code.NOT_FOUND: "data unexisting",
    Code.FEE_FAILED: "getting fee failed",
    Code.NO_CALLABLE_LEFT: "no callable number left",
    Code.NO_NUMBER: "no number called",
    Code.TOO_MANY_TASKS: "too many concurrent tasks",
    Code.LANGUAGE_REQUIRED: "conversion text and language type required",
    Code.LANGUAGE_UNSUPPORTED: "failed to obtain text language type",
    Code.TASK_NAME_EXISTS: "task name already exists",
    Code.TASK_STATUS: "task status does not allow this operation",
    Code.TTS_QUOTA: "daily long-TTS conversions used up",
    Code.SMS_TRIGGER_REQUIRED: "hang-up SMS needs a trigger condition",
    Code.TASK_NOT_OPERABLE: "task does not exist or cannot be operated",
    Code.SCRIPT_NOT_FOUND: "AI speech template does not exist",
}


class TaskStatus(IntEnum):
    """Task status as LAAFFIC reports it."""

    WAITING = 0
    CALLING = 1
    FINISHED = 2
    SUBMIT_FAILED = 3
    CANCELLED = 4
    SUSPENDED = 5
    SUBMITTING = 6


UNFINISHED_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.WAITING, TaskStatus.CALLING, TaskStatus.SUSPENDED, TaskStatus.SUBMITTING}
)

TASK_TYPE_AI = 2

"""The exception root and one class per LAAFFIC status code.

Every error outdial raises on purpose is an :class:`OutdialError`; its class fixes the status
code the API answers with (and the CLI prints), so code that raises never names a code. The
default message is the code's LAAFFIC reason, else the class's docstring. ``retryable`` says
whether the same operation may succeed if tried again unchanged (a transient fault), so that
callers decide from it, never from a library's exception type.

This module is standard library only, so the domain rules can raise these;
``outdial.errors`` re-exports them for everything else.
"""

from __future__ import annotations

from typing import ClassVar

from outdial.domain.codes import REASONS, Code


class OutdialError(Exception):
    """outdial error."""

    code: ClassVar[Code] = Code.SERVER_FAULT
    retryable: ClassVar[bool] = False

    def __init__(self, message: str | None = None) -> None:
        self.message = message or REASONS.get(self.code) or (self.__doc__ or "").strip()
        super().__init__(self.message)


class AuthError(OutdialError):
    """authentication error"""

    code = Code.AUTH


class IpRestricted(OutdialError):
    """restricted IP access"""

    code = Code.IP_RESTRICTED


class InsufficientBalance(OutdialError):
    """insufficient balance: balance + gift + credit is below the configured minimum"""

    code = Code.INSUFFICIENT_BALANCE


class TimestampExpired(OutdialError):
    """timestamp expires"""

    code = Code.TIMESTAMP_EXPIRED


class Conflict(OutdialError):
    """data existing"""

    code = Code.DATA_EXISTS


class ValidationError(OutdialError):
    """data validation exception: a field value is out of its rule"""

    code = Code.VALIDATION


class ParameterError(OutdialError):
    """parameter exception: malformed body, wrong types or missing required fields"""

    code = Code.PARAMETER


class DataCaps(OutdialError):
    """data caps exceeded"""

    code = Code.DATA_CAPS


class NotFound(OutdialError):
    """data unexisting"""

    code = Code.NOT_FOUND


class NoRate(OutdialError):
    """getting fee failed: no rate for a callee's destination"""

    code = Code.FEE_FAILED


class NoCallableLeft(OutdialError):
    """no callable number left"""

    code = Code.NO_CALLABLE_LEFT


class NoNumber(OutdialError):
    """no number called"""

    code = Code.NO_NUMBER


class TooManyTasks(OutdialError):
    """too many concurrent tasks"""

    code = Code.TOO_MANY_TASKS


class LanguageRequired(OutdialError):
    """conversion text and language type required"""

    code = Code.LANGUAGE_REQUIRED


class LanguageUnsupported(OutdialError):
    """failed to obtain text language type"""

    code = Code.LANGUAGE_UNSUPPORTED


class TaskNameExists(OutdialError):
    """task name already exists"""

    code = Code.TASK_NAME_EXISTS


class TtsQuotaUsed(OutdialError):
    """daily long-TTS conversions used up"""

    code = Code.TTS_QUOTA


class SmsTriggerRequired(OutdialError):
    """hang-up SMS needs a trigger condition"""

    code = Code.SMS_TRIGGER_REQUIRED


class TaskNotOperable(OutdialError):
    """task does not exist or cannot be operated"""

    code = Code.TASK_NOT_OPERABLE


class ScriptNotFound(OutdialError):
    """AI speech template does not exist"""

    code = Code.SCRIPT_NOT_FOUND

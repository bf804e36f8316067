"""One exception root, one class per LAAFFIC status code, and the carrier's failures.

The root and the per-code classes live in ``outdial.domain.errors`` (standard library only, so
the domain rules can raise them) and are re-exported here: import them from this module. The
docstring of each class is its default message when its code has no LAAFFIC reason.
"""

from __future__ import annotations

from outdial.domain.errors import (
    AuthError,
    Conflict,
    DataCaps,
    InsufficientBalance,
    IpRestricted,
    LanguageRequired,
    LanguageUnsupported,
    NoCallableLeft,
    NoNumber,
    NoRate,
    NotFound,
    OutdialError,
    ParameterError,
    ScriptNotFound,
    SmsTriggerRequired,
    TaskNameExists,
    TaskNotOperable,
    TimestampExpired,
    TooManyTasks,
    TtsQuotaUsed,
    ValidationError,
)

__all__ = [
    "AuthError",
    "CallRejected",
    "CarrierError",
    "CarrierUnavailable",
    "Conflict",
    "DataCaps",
    "InsufficientBalance",
    "IpRestricted",
    "LanguageRequired",
    "LanguageUnsupported",
    "NoCallableLeft",
    "NoNumber",
    "NoRate",
    "NotFound",
    "OutdialError",
    "ParameterError",
    "ScriptNotFound",
    "SmsTriggerRequired",
    "TaskNameExists",
    "TaskNotOperable",
    "TimestampExpired",
    "TooManyTasks",
    "TtsQuotaUsed",
    "ValidationError",
]


# --- the carrier ----------------------------------------------------------------------------
# A carrier adapter turns its library's and network's exceptions into these, so the dialer
# decides from ``retryable`` alone: try the callee again, or record the attempt as failed.


class CarrierError(OutdialError):
    """the carrier could not place the call"""

    retryable = False


class CarrierUnavailable(CarrierError):
    """the carrier cannot be reached (trunk down, transient network failure): try the callee
    again later instead of recording the attempt as failed"""

    retryable = True


class CallRejected(CarrierError):
    """the carrier refused the call for good (final: record the attempt as failed)"""

    retryable = False

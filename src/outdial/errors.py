"""One exception root; each error carries the LAAFFIC status code it answers with.

The docstring of each class is its default message.
"""

from __future__ import annotations

from outdial.domain.codes import REASONS, Code


class OutdialError(Exception):
    """outdial error."""

    code: Code = Code.SERVER_FAULT
    retryable: bool = False

    def __init__(self, message: str | None = None, *, code: Code | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message or REASONS.get(self.code) or (self.__doc__ or "").strip()
        super().__init__(self.message)


class AuthError(OutdialError):
    """authentication error"""

    code = Code.AUTH


class IpRestricted(OutdialError):
    """restricted IP access"""

    code = Code.IP_RESTRICTED


class TimestampExpired(OutdialError):
    """timestamp expires"""

    code = Code.TIMESTAMP_EXPIRED


class ParameterError(OutdialError):
    """parameter exception: malformed body, wrong types or missing required fields"""

    code = Code.PARAMETER


class ValidationError(OutdialError):
    """data validation exception: a field value is out of its rule"""

    code = Code.VALIDATION


class DataCaps(OutdialError):
    """data caps exceeded"""

    code = Code.DATA_CAPS


class NotFound(OutdialError):
    """data unexisting"""

    code = Code.NOT_FOUND


class Conflict(OutdialError):
    """data existing"""

    code = Code.DATA_EXISTS

"""The exception root: one class per LAAFFIC code, retryable on the class, the carrier's kinds."""

from __future__ import annotations

import inspect

import pytest

from outdial import errors
from outdial.domain.codes import REASONS, Code
from outdial.errors import (
    CallRejected,
    CarrierError,
    CarrierUnavailable,
    InsufficientBalance,
    OutdialError,
    ValidationError,
)
from outdial.script.persona import PersonaProblem
from outdial.script.template import TemplateProblem
from outdial.service.rates_csv import RatesFileError
from outdial.speech.errors import SpeechUnavailable

# -42 is in LAAFFIC's table but outdial answers a task in the wrong status with -54.
UNUSED = {Code.SUCCESS, Code.TASK_STATUS}


def _code_classes() -> dict[Code, list[type[OutdialError]]]:
    by_code: dict[Code, list[type[OutdialError]]] = {}
    for _name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, OutdialError) and cls.code != OutdialError.code:
            by_code.setdefault(cls.code, []).append(cls)
    return by_code


def test_each_code_has_exactly_one_class() -> None:
    by_code = _code_classes()
    for code in Code:
        if code in UNUSED or code == Code.SERVER_FAULT:
            continue
        assert len(by_code.get(code, [])) == 1, (code, by_code.get(code))


def test_the_default_message_is_the_codes_reason_and_the_code_is_fixed_by_the_class() -> None:
    assert InsufficientBalance().message == REASONS[Code.INSUFFICIENT_BALANCE]
    assert InsufficientBalance("top up").code == Code.INSUFFICIENT_BALANCE
    with pytest.raises(TypeError):
        ValidationError("x", code=Code.AUTH)  # type: ignore[call-arg]


def test_retryable_is_a_class_attribute() -> None:
    assert OutdialError.retryable is False
    assert CarrierError.retryable is False
    assert CarrierUnavailable.retryable is True and CarrierUnavailable("trunk down").retryable
    assert CallRejected.retryable is False
    assert issubclass(CarrierUnavailable, CarrierError) and issubclass(CallRejected, CarrierError)
    assert CarrierError().code == Code.SERVER_FAULT


def test_the_projects_own_errors_are_under_the_root() -> None:
    assert issubclass(TemplateProblem, ValidationError)
    assert TemplateProblem([("nodes.a", "bad")]).problems == [("nodes.a", "bad")]
    assert issubclass(RatesFileError, ValidationError)
    assert RatesFileError(3, "bad").line == 3
    assert issubclass(PersonaProblem, ValidationError)
    assert issubclass(SpeechUnavailable, OutdialError)
    assert SpeechUnavailable("no flite").code == Code.SERVER_FAULT

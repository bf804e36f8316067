"""Property-based fuzzing of the OpenAPI schema: no request may produce a 5xx or a -18."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.testing import FakeClock, make_account, temp_sqlite_store

_clock = FakeClock()
_store = temp_sqlite_store()
_account = make_account(_store, _clock, name="fuzz")
_app = create_app(Settings(_env_file=None), _store, _clock)  # type: ignore[call-arg]
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@pytest.fixture(scope="module", autouse=True)
def _close_store() -> Iterator[None]:
    yield
    _store.close()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case: Any) -> None:
    response = case.call(headers=_account.headers(_clock))
    assert response.status_code < 500, response.text
    body = response.json()
    code = body.get("status", body.get("code"))
    assert str(code) != "-18", body

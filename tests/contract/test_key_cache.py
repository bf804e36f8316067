"""A key is looked up at most once per OUTDIAL_AUTH_CACHE_SECONDS; a change to it shows within
that time, and a cached key still needs the right signature."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from outdial.store import schema
from outdial.testing import FakeClock, make_account

PATH = "/v3/voice/group/call/query"


def _code(api: Any, headers: dict[str, str]) -> str:
    body = api.post(PATH, content=b"{}", headers=headers).json()
    return str(body.get("status", body.get("code")))


def _disable(store: Any, api_key: str) -> None:
    with store.write() as tx:
        tx.conn.execute(
            update(schema.api_keys).where(schema.api_keys.c.api_key == api_key).values(disabled=1)
        )


@pytest.mark.parametrize("cache_seconds", [5, 0])
def test_a_disabled_key_stops_working_within_the_cache_time(
    make_client: Any, store: Any, clock: FakeClock, cache_seconds: int
) -> None:
    api = make_client(auth_cache_seconds=cache_seconds)
    account = make_account(store, clock, name=f"cached {cache_seconds}")
    assert _code(api, account.headers(clock)) == "0"
    _disable(store, account.api_key)
    # Served from the cache for its time; without the cache the change shows at once.
    assert _code(api, account.headers(clock)) == ("0" if cache_seconds else "-1")
    clock.advance(cache_seconds)
    assert _code(api, account.headers(clock)) == "-1"


def test_a_cached_key_still_needs_its_signature(
    make_client: Any, store: Any, clock: FakeClock
) -> None:
    api = make_client(auth_cache_seconds=60, auth_fail_key_limit=2)
    account = make_account(store, clock, name="forged")
    assert _code(api, account.headers(clock)) == "0"
    forged = account.headers(clock) | {"Sign": "0" * 32}
    assert _code(api, forged) == "-1"
    assert _code(api, forged) == "-1"
    # Two failures reach the key's limit: throttled even with the right signature.
    assert _code(api, account.headers(clock)) == "-1"

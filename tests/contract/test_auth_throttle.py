"""Failed signatures are throttled per Api-Key and per address: -1 without checking."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from outdial.testing import FakeClock, TestAccount, make_account

PATH = "/v3/voice/group/call/query"


def _ask(api: Any, account: TestAccount, clock: FakeClock, *, good: bool) -> dict[str, Any]:
    headers = account.headers(clock)
    if not good:
        headers["Sign"] = "0" * 32
    resp = api.post(PATH, content=b"{}", headers=headers)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def _code(body: dict[str, Any]) -> str:
    return str(body.get("status", body.get("code")))


def test_a_key_with_too_many_bad_signatures_is_refused_for_the_window(
    make_client: Any, store: Any, clock: FakeClock
) -> None:
    api = make_client(auth_fail_key_limit=3, auth_fail_ip_limit=0, auth_fail_window_seconds=60)
    victim = make_account(store, clock, name="victim")
    bystander = make_account(store, clock, name="bystander")
    assert _code(_ask(api, victim, clock, good=True)) == "0"
    for _ in range(3):
        assert _code(_ask(api, victim, clock, good=False)) == "-1"
    # Throttled: even the right signature answers -1, and says why.
    blocked = _ask(api, victim, clock, good=True)
    assert _code(blocked) == "-1" and "too many failed signatures" in str(blocked)
    # Another key from the same address is not affected (the address limit is off here).
    assert _code(_ask(api, bystander, clock, good=True)) == "0"
    clock.advance(61)
    assert _code(_ask(api, victim, clock, good=True)) == "0"
    text = generate_latest(api.app.state.metrics).decode()
    assert "outdial_auth_failures_total 3.0" in text
    assert 'outdial_auth_throttled_total{by="key"} 1.0' in text


def test_an_address_spraying_keys_is_refused(
    make_client: Any, store: Any, clock: FakeClock
) -> None:
    api = make_client(
        peer="203.0.113.9", auth_fail_key_limit=0, auth_fail_ip_limit=4, auth_fail_window_seconds=60
    )
    elsewhere = make_client(
        peer="198.51.100.1",
        auth_fail_key_limit=0,
        auth_fail_ip_limit=4,
        auth_fail_window_seconds=60,
    )
    account = make_account(store, clock, name="sprayed")
    for i in range(4):
        headers = account.headers(clock)
        headers["Api-Key"] = f"guess{i:027d}"
        assert _code(api.post(PATH, content=b"{}", headers=headers).json()) == "-1"
    assert "too many failed" in str(_ask(api, account, clock, good=True))
    # Each app (and each address) counts on its own.
    assert _code(_ask(elsewhere, account, clock, good=True)) == "0"


def test_other_refusals_are_not_counted(make_client: Any, store: Any, clock: FakeClock) -> None:
    api = make_client(auth_fail_key_limit=2, auth_fail_ip_limit=2, auth_fail_window_seconds=60)
    account = make_account(store, clock, name="late")
    late = FakeClock(clock.now())
    late.advance(3600)
    for _ in range(5):  # a good signature with a stale Timestamp: -16, not a failure
        assert _code(api.post(PATH, content=b"{}", headers=account.headers(late)).json()) == "-16"
    assert _code(_ask(api, account, clock, good=True)) == "0"


def test_the_counters_stay_bounded() -> None:
    from outdial.api.throttle import FailureThrottle

    throttle = FailureThrottle(
        FakeClock(), key_limit=1, ip_limit=0, window_seconds=60, max_entries=10
    )
    for i in range(50):
        throttle.failed(f"k{i}", "192.0.2.1")
    assert len(throttle._seen) == 10
    assert throttle.retry_after("k49", "x") is not None and throttle.retry_after("k0", "x") is None

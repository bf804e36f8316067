"""Arbitrary Unicode in the string fields of send/ai and the query routes, on SQLite and
PostgreSQL: never a 5xx, never -18, and a NUL never accepted.

Texts mix any code point (NUL, other control characters, lone surrogates, non-characters) and
go out either as JSON with ``\\uXXXX`` escapes (a surrogate as an escape such as ``"\\ud800"``)
or as raw UTF-8 (a surrogate then as its invalid three bytes).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount, make_account
from tests.helpers import SEND, import_example, send_body

SPECIAL = ["\x00", "\x01", "\x1f", "\x7f", "\ud800", "\udbff", "\udc00", "\udfff", "\ufffe"]
texts = st.lists(
    st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
        st.sampled_from(SPECIAL),
    ),
    max_size=40,
).map("".join)
FUZZ = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SEND_FIELDS = ["taskName", "appId", "displayNum", "sendTime", "timezone", "windowZone"]
CALLEE_FIELDS = ["calleeNumber", "text1", "text10"]
QUERY_FIELDS: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("/v3/voice/group/call/query", ("params", "searchCondition"), {"params": {}}),
    ("/v3/voice/group/call/query", ("params", "idxAppId"), {"params": {}}),
    ("/v3/voice/group/call/query", ("params", "strTime"), {"params": {}}),
    ("/v3/voice/recordGroupQuery", ("params", "callee"), {"params": {}}),
    ("/v3/voice/recordGroupQuery", ("params", "strTime"), {"params": {}}),
    ("/v3/voice/recallFlow/queryPage", ("params", "taskName"), {"params": {}}),
    ("/v3/voice/dnc/query", ("number",), {}),
    ("/v3/voice/dnc/add", ("reason",), {"numbers": ["8613242926514"]}),
]
RANGE = {"strTime": "2026-06-01T00:00:00+00:00", "endTime": "2026-06-02T00:00:00+00:00"}


@pytest.fixture
def fuzz_account(store: Store, clock: FakeClock) -> TestAccount:
    return make_account(store, clock, name="text fuzz", max_tasks=1_000_000)


@pytest.fixture
def script_id(store: Store, clock: FakeClock, fuzz_account: TestAccount) -> int:
    return import_example(store, clock, fuzz_account, "simple-notice.yaml")


def encode(body: Any, escaped: bool) -> bytes:
    if escaped:
        return json.dumps(body).encode("ascii")
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def answer(api: TestClient, account: TestAccount, clock: FakeClock, path: str, raw: bytes) -> Any:
    resp = api.post(path, content=raw, headers=account.headers(clock))
    assert resp.status_code < 500, resp.text
    assert resp.status_code == 200, resp.text
    body = resp.json()
    code = int(body["status"] if "status" in body else body["code"])
    assert code != -18, body
    return code, body


@given(field=st.sampled_from(SEND_FIELDS + CALLEE_FIELDS), text=texts, escaped=st.booleans())
@FUZZ
def test_send_ai_text_fields(
    api: TestClient,
    clock: FakeClock,
    fuzz_account: TestAccount,
    script_id: int,
    field: str,
    text: str,
    escaped: bool,
) -> None:
    body = send_body(fuzz_account, script_id, taskName=f"fuzz {text[:8]!r}")
    if field in CALLEE_FIELDS:
        entry = {"calleeNumber": "8613242926514", "text1": "Li", field: text}
        body["numberInfoList"] = [entry]
    else:
        body[field] = text
    code, resp = answer(api, fuzz_account, clock, SEND, encode(body, escaped))
    if "\x00" in text:
        assert code != 0, resp


@given(case=st.sampled_from(QUERY_FIELDS), text=texts, escaped=st.booleans())
@FUZZ
def test_query_text_fields(
    api: TestClient,
    clock: FakeClock,
    fuzz_account: TestAccount,
    case: tuple[str, tuple[str, ...], dict[str, Any]],
    text: str,
    escaped: bool,
) -> None:
    path, where, base = case
    body = json.loads(json.dumps(base))
    if path.endswith("recordGroupQuery"):
        body["params"].update(RANGE)
    target = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = text
    code, resp = answer(api, fuzz_account, clock, path, encode(body, escaped))
    if "\x00" in text:
        assert code != 0, resp

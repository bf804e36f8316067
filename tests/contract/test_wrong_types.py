"""One rule for wrong types: strict JSON types, never coerced. An integer field takes a JSON
integer only, a string field a JSON string only; anything else answers -22 naming the field
and writes nothing. The right types pass (the other direction)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount
from tests.helpers import SEND, counts, import_example, post, send_body

INTEGER_FIELDS = {"maxCalls": 40, "scriptId": None, "maxRingingTime": 60, "enableRecording": 0,
                  "calloutRate": 1}  # fmt: skip
STRING_FIELDS = {"appId": None, "taskName": "types", "displayNum": "1008122211",
                 "sendTime": "2024-06-21 00:00:00", "timezone": "UTC"}  # fmt: skip
NOT_INTEGERS = ["40", True, False, 40.0, 40.5, [40], {"v": 40}]
NOT_STRINGS = [12, 12.5, True, ["x"], {"v": "x"}]


@pytest.fixture
def script_id(store: Store, clock: FakeClock, account: TestAccount) -> int:
    return import_example(store, clock, account, "simple-notice.yaml")


def _send(api: TestClient, account: TestAccount, clock: FakeClock, script_id: int,
          **fields: Any) -> dict[str, Any]:  # fmt: skip
    return post(api, account, clock, SEND, send_body(account, script_id, **fields))


@pytest.mark.parametrize("field", sorted(INTEGER_FIELDS))
@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
def test_an_integer_field_takes_only_a_json_integer(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int,
    field: str, value: Any,
) -> None:  # fmt: skip
    resp = _send(api, account, clock, script_id, **{field: value})
    assert resp["status"] == "-22", resp
    assert resp["reason"].startswith(field), resp
    assert counts(store, account.account_id) == (0, 0)


@pytest.mark.parametrize("field", sorted(STRING_FIELDS))
@pytest.mark.parametrize("value", NOT_STRINGS, ids=repr)
def test_a_string_field_takes_only_a_json_string(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int,
    field: str, value: Any,
) -> None:  # fmt: skip
    resp = _send(api, account, clock, script_id, **{field: value})
    assert resp["status"] == "-22", resp
    assert resp["reason"].startswith(field), resp


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [("recallFlow", {"recallType": "1", "recallInterval": 5, "recallNum": 1}, "recallType"),
     ("allowSendTime", [{"strTime": 900, "endTime": "18:00"}], "strTime"),
     ("numberInfoList", [{"calleeNumber": "8613242926514", "text1": 12}], "text1")],
)  # fmt: skip
def test_nested_fields_follow_the_same_rule(
    api: TestClient, clock: FakeClock, account: TestAccount, script_id: int,
    path: str, value: Any, named: str,
) -> None:  # fmt: skip
    resp = _send(api, account, clock, script_id, **{path: value})
    assert resp["status"] == "-22", resp
    assert named in resp["reason"], resp


def test_the_right_types_are_accepted(
    api: TestClient, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    fields = {k: v for k, v in {**INTEGER_FIELDS, **STRING_FIELDS}.items() if v is not None}
    fields.update(enableRecording=1, displayNum=None, sendTime=None,
                  recallFlow={"recallType": 1, "recallInterval": 5, "recallNum": 1})  # fmt: skip
    resp = _send(api, account, clock, script_id, **fields)
    assert resp["status"] == "0", resp


def test_query_paging_is_strict_too(
    api: TestClient, clock: FakeClock, account: TestAccount
) -> None:
    resp = post(api, account, clock, "/v3/voice/group/call/query", {"current": "1", "size": 10})
    assert resp["code"] == -22 and resp["msg"].startswith("current"), resp
    ok = post(api, account, clock, "/v3/voice/group/call/query", {"current": 1, "size": 10})
    assert ok["code"] == 0, ok

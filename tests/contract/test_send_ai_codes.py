"""Every status code of the send/ai table, each produced by a request that should trigger it.
A rejected request must leave no task and no callee behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from outdial.api.app import create_app
from outdial.client import sign
from outdial.service.accounts import AccountService
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount, make_account
from tests.helpers import SEND, counts, import_example, import_script, post, send_body

NOTICE = "simple-notice.yaml"


@pytest.fixture
def script_id(store: Store, clock: FakeClock, account: TestAccount) -> int:
    return import_example(store, clock, account, NOTICE)


def expect(
    resp: dict[str, Any], code: int, store: Store, account: TestAccount, contains: str = ""
) -> None:
    assert resp["status"] == str(code), resp
    assert isinstance(resp["reason"], str) and resp["reason"]
    assert contains.lower() in resp["reason"].lower(), resp
    if code != 0:
        assert resp["data"] is None
        assert counts(store, account.account_id) == (0, 0), "a rejected task left rows behind"


def test_0_success_with_the_published_example(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    resp = post(api, account, clock, SEND, send_body(account, script_id))
    assert resp["status"] == "0" and resp["reason"] == "success"
    assert isinstance(resp["data"], int)
    assert counts(store, account.account_id) == (1, 2)


def test_0_success_without_the_v3_prefix(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    resp = post(api, account, clock, "/voice/group/call/send/ai", send_body(account, script_id))
    assert resp["status"] == "0"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: {**h, "Sign": "0" * 32},
        lambda h: {**h, "Api-Key": "nope"},
        lambda h: {k: v for k, v in h.items() if k != "Sign"},
        lambda h: {k: v for k, v in h.items() if k != "Timestamp"},
        lambda h: {**h, "Timestamp": "soon"},
    ],
    ids=["bad-sign", "unknown-key", "no-sign", "no-timestamp", "non-numeric-timestamp"],
)
def test_minus_1_authentication(
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    script_id: int,
    mutate: Callable[[dict[str, str]], dict[str, str]],
) -> None:
    headers = mutate(account.headers(clock))
    resp = api.post(SEND, content=orjson.dumps(send_body(account, script_id)), headers=headers)
    expect(resp.json(), -1, store, account)


def test_sign_is_case_insensitive(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    headers = account.headers(clock)
    headers["Sign"] = headers["Sign"].upper()
    resp = api.post(SEND, content=orjson.dumps(send_body(account, script_id)), headers=headers)
    assert resp.json()["status"] == "0"


def test_minus_2_ip_not_allowed(make_client: Any, store: Store, clock: FakeClock) -> None:
    acc = make_account(store, clock, ip_allow=("10.1.0.0/16",))
    script_id = import_example(store, clock, acc, NOTICE)
    outside = make_client(peer="192.0.2.7")
    expect(post(outside, acc, clock, SEND, send_body(acc, script_id)), -2, store, acc)
    inside = make_client(peer="10.1.2.3")
    assert post(inside, acc, clock, SEND, send_body(acc, script_id))["status"] == "0"


def test_minus_2_forwarded_for_counts_only_behind_a_trusted_proxy(
    make_client: Any, store: Store, clock: FakeClock
) -> None:
    acc = make_account(store, clock, ip_allow=("10.1.0.0/16",))
    script_id = import_example(store, clock, acc, NOTICE)
    spoofed = make_client(peer="192.0.2.7")
    body = send_body(acc, script_id)
    resp = post(spoofed, acc, clock, SEND, body, **{"X-Forwarded-For": "10.1.2.3"})
    expect(resp, -2, store, acc)
    proxied = make_client(peer="127.0.0.1", trusted_proxies=["127.0.0.1/32"])
    resp = post(proxied, acc, clock, SEND, body, **{"X-Forwarded-For": "10.1.2.3"})
    assert resp["status"] == "0"


def test_minus_16_timestamp_outside_the_skew(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    old = str(int(clock.now().timestamp()) - 301)
    headers = account.headers(clock)
    headers.update(Timestamp=old, Sign=sign(account.api_key, account.api_secret, old))
    resp = api.post(SEND, content=orjson.dumps(send_body(account, script_id)), headers=headers)
    expect(resp.json(), -16, store, account)


class _BrokenClock:
    def now(self) -> datetime:
        raise RuntimeError("clock hardware fault")


def test_minus_18_server_fault_answers_its_envelope(
    store: Store, clock: FakeClock, account: TestAccount, script_id: int, settings: Any
) -> None:
    with TestClient(create_app(settings, store, _BrokenClock())) as broken:
        resp = broken.post(
            SEND,
            content=orjson.dumps(send_body(account, script_id)),
            headers=account.headers(clock),
        )
    assert resp.status_code == 200
    body = resp.json()
    expect(body, -18, store, account, contains="ref ")
    assert "Traceback" not in resp.text and "RuntimeError" not in resp.text


def test_minus_20_idempotency_key_with_another_body(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    first = post(
        api, account, clock, SEND, send_body(account, script_id), **{"Idempotency-Key": "k1"}
    )
    again = post(
        api, account, clock, SEND, send_body(account, script_id), **{"Idempotency-Key": "k1"}
    )
    assert first["status"] == again["status"] == "0"
    assert first["data"] == again["data"]
    other = send_body(account, script_id, taskName="another name")
    resp = post(api, account, clock, SEND, other, **{"Idempotency-Key": "k1"})
    assert resp["status"] == "-20", resp
    assert counts(store, account.account_id) == (1, 2)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"taskName": "x"}, "taskName"),
        ({"taskName": "y" * 65}, "taskName"),
        ({"displayNum": "12ab"}, "displayNum"),
        ({"displayNum": "1" * 21}, "displayNum"),
        ({"maxCalls": 0}, "maxCalls"),
        ({"maxCalls": 1000}, "maxCalls"),
        ({"maxRingingTime": 19}, "maxRingingTime"),
        ({"maxRingingTime": 121}, "maxRingingTime"),
        ({"enableRecording": 2}, "enableRecording"),
        ({"calloutRate": 0}, "calloutRate"),
        ({"sendTime": "2024/06/21 00:00"}, "sendTime"),
        ({"sendTime": "2024-02-30 00:00:00"}, "sendTime"),
        ({"allowSendTime": [{"strTime": "25:00", "endTime": "19:28"}]}, "allowSendTime[0]"),
        ({"allowSendTime": [{"strTime": "9:00", "endTime": "19:28"}]}, "allowSendTime[0]"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"numberInfoList": [{"calleeNumber": "12345"}]}, "numberList[0]"),
        (
            {
                "numberInfoList": [
                    {"calleeNumber": "8613242926514", "text1": "a"},
                    {"calleeNumber": "86132429265149999999", "text1": "b"},
                ]
            },
            "numberList[1]",
        ),
        ({"numberInfoList": [{"calleeNumber": "86-1324-2926"}]}, "numberList[0]"),
        ({"numberInfoList": [{"calleeNumber": "8613242926514"}]}, "text1"),
        ({"numberInfoList": [{"calleeNumber": "8613242926514", "text1": ""}]}, "text1"),
    ],
)
def test_minus_21_values_out_of_rule(
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    script_id: int,
    fields: dict[str, Any],
    needle: str,
) -> None:
    resp = post(api, account, clock, SEND, send_body(account, script_id, **fields))
    expect(resp, -21, store, account, contains=needle)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "JSON"),
        (b"", "empty"),
        (b"[1, 2]", "object"),
        (None, "appId"),
        ({"maxCalls": "forty"}, "maxCalls"),
        ({"scriptId": None}, "scriptId"),
        ({"allowSendTime": "18:28-19:28"}, "allowSendTime"),
        ({"allowSendTime": [{"strTime": "18:28"}]}, "endTime"),
        ({"numberInfoList": None}, "numberList"),
        ({"numberInfoList": 8613242926514}, "numberList"),
        ({"numberInfoList": [{"text1": "no number"}]}, "calleeNumber"),
        ({"numberInfoList": [{"calleeNumber": "8613242926514", "text1": ["a"]}]}, "text1"),
        ({"numberInfoList": [42]}, "numberList[0]"),
    ],
)
def test_minus_22_malformed_or_missing(
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    script_id: int,
    body: Any,
    needle: str,
) -> None:
    if isinstance(body, bytes):
        resp = post(api, account, clock, SEND, raw=body)
    elif body is None:
        full = send_body(account, script_id)
        del full["appId"]
        resp = post(api, account, clock, SEND, full)
    else:
        resp = post(api, account, clock, SEND, send_body(account, script_id, **body))
    expect(resp, -22, store, account, contains=needle)


def test_minus_23_more_than_200k_numbers(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    numbers = [{"calleeNumber": str(8613000000000 + i), "text1": "x"} for i in range(200_001)]
    resp = post(api, account, clock, SEND, send_body(account, script_id, numberInfoList=numbers))
    expect(resp, -23, store, account, contains="200000")


def test_minus_23_more_than_three_windows(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    windows = [{"strTime": f"0{i}:00", "endTime": f"0{i}:30"} for i in range(4)]
    resp = post(api, account, clock, SEND, send_body(account, script_id, allowSendTime=windows))
    expect(resp, -23, store, account, contains="windows")


def test_minus_23_body_over_the_size_limit(
    make_client: Any, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    small = make_client(max_body_bytes=4096)
    numbers = [{"calleeNumber": str(8613000000000 + i), "text1": "x"} for i in range(200)]
    resp = post(small, account, clock, SEND, send_body(account, script_id, numberInfoList=numbers))
    expect(resp, -23, store, account, contains="limit")


def test_minus_24_app_of_another_account(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    other = make_account(store, clock, name="other")
    resp = post(api, account, clock, SEND, send_body(account, script_id, appId=other.app_id))
    expect(resp, -24, store, account, contains="appId")
    resp = post(api, account, clock, SEND, send_body(account, script_id, appId="unknown1"))
    expect(resp, -24, store, account)


def test_minus_26_no_rate_for_a_destination(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    numbers = [
        {"calleeNumber": "8613242926514", "text1": "a"},
        {"calleeNumber": "99912345678", "text1": "b"},
    ]
    resp = post(api, account, clock, SEND, send_body(account, script_id, numberInfoList=numbers))
    expect(resp, -26, store, account, contains="99912345678")


def test_minus_35_empty_number_list(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    resp = post(api, account, clock, SEND, send_body(account, script_id, numberInfoList=[]))
    expect(resp, -35, store, account)


def test_minus_35_every_number_on_the_do_not_call_list(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    AccountService(store, clock).add_dnc(
        account.account_id, ["8613242926514", "+8613242926515"], "asked"
    )
    resp = post(api, account, clock, SEND, send_body(account, script_id))
    expect(resp, -35, store, account, contains="do-not-call")


def test_minus_37_too_many_unfinished_tasks(
    api: TestClient, store: Store, clock: FakeClock
) -> None:
    acc = make_account(store, clock, max_tasks=1)
    script_id = import_example(store, clock, acc, NOTICE)
    assert post(api, acc, clock, SEND, send_body(acc, script_id))["status"] == "0"
    resp = post(api, acc, clock, SEND, send_body(acc, script_id, taskName="second task"))
    assert resp["status"] == "-37", resp
    assert counts(store, acc.account_id) == (1, 2)


def test_minus_38_prompts_without_language(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount
) -> None:
    sid = import_script(store, clock, account, "name: x\nnodes:\n  a:\n    say: Hello ${text1}\n")
    expect(post(api, account, clock, SEND, send_body(account, sid)), -38, store, account)


def test_minus_39_language_the_tts_cannot_speak(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount
) -> None:
    src = "name: x\nlanguage: xx\nnodes:\n  a:\n    say: Hello ${text1}\n"
    sid = import_script(store, clock, account, src)
    expect(post(api, account, clock, SEND, send_body(account, sid)), -39, store, account)


def test_minus_41_duplicate_task_name(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    assert post(api, account, clock, SEND, send_body(account, script_id))["status"] == "0"
    resp = post(api, account, clock, SEND, send_body(account, script_id))
    assert resp["status"] == "-41", resp
    assert counts(store, account.account_id) == (1, 2)


def test_task_names_are_unique_per_account_only(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    other = make_account(store, clock, name="other")
    other_script = import_example(store, clock, other, NOTICE)
    assert post(api, account, clock, SEND, send_body(account, script_id))["status"] == "0"
    assert post(api, other, clock, SEND, send_body(other, other_script))["status"] == "0"


def test_minus_46_daily_long_tts_quota(
    make_client: Any, store: Store, clock: FakeClock, account: TestAccount
) -> None:
    api = make_client(long_tts_daily_quota=2, long_tts_chars=50)
    long_prompt = "Dear ${text1}, " + "this is a long personalised message. " * 3
    sid = import_script(
        store, clock, account, f"name: long\nlanguage: en\nnodes:\n  a:\n    say: '{long_prompt}'\n"
    )
    for i in range(2):
        resp = post(api, account, clock, SEND, send_body(account, sid, taskName=f"long {i}"))
        assert resp["status"] == "0", resp
    resp = post(api, account, clock, SEND, send_body(account, sid, taskName="long 2"))
    assert resp["status"] == "-46", resp
    assert counts(store, account.account_id) == (2, 4)
    clock.advance(days=1)
    resp = post(api, account, clock, SEND, send_body(account, sid, taskName="long 3"))
    assert resp["status"] == "0", resp


def test_minus_53_hangup_sms_without_trigger(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount
) -> None:
    src = (
        "name: x\nlanguage: en\nnodes:\n  a:\n    say: Hello ${text1}\n"
        "sms:\n  enabled: true\n  text: Thanks ${text1}\n"
    )
    sid = import_script(store, clock, account, src)
    expect(post(api, account, clock, SEND, send_body(account, sid)), -53, store, account)


def test_minus_60_script_of_another_account(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount
) -> None:
    other = make_account(store, clock, name="other")
    foreign = import_example(store, clock, other, NOTICE)
    expect(post(api, account, clock, SEND, send_body(account, foreign)), -60, store, account)
    expect(post(api, account, clock, SEND, send_body(account, 987654)), -60, store, account)


def test_minus_10_insufficient_balance(make_client: Any, store: Store, clock: FakeClock) -> None:
    api = make_client(min_balance="1")
    acc = make_account(store, clock, balance="0.5", credit="0.4")
    sid = import_example(store, clock, acc, NOTICE)
    expect(post(api, acc, clock, SEND, send_body(acc, sid)), -10, store, acc)
    rich = make_account(store, clock, balance="0.5", credit="0.5")
    sid = import_example(store, clock, rich, NOTICE)
    assert post(api, rich, clock, SEND, send_body(rich, sid))["status"] == "0"

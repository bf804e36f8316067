"""group/call/query, detail, update/ai, cancel, pause/resume and getBalance, with tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from outdial.domain.codes import TaskStatus
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount, make_account
from tests.helpers import SEND, get, import_example, post, send_body

QUERY = "/v3/voice/group/call/query"
UPDATE = "/v3/voice/group/call/update/ai"
CANCEL = "/voice/group/call/cancel"
PAUSE = "/v3/voice/group/call/pause"
RESUME = "/v3/voice/group/call/resume"


@pytest.fixture
def script_id(store: Store, clock: FakeClock, account: TestAccount) -> int:
    return import_example(store, clock, account, "simple-notice.yaml")


def submit(
    api: TestClient, account: TestAccount, clock: FakeClock, script_id: int, **f: Any
) -> int:
    resp = post(api, account, clock, SEND, send_body(account, script_id, **f))
    assert resp["status"] == "0", resp
    return int(resp["data"])


def set_status(store: Store, task_id: int, status: TaskStatus) -> None:
    with store.write() as tx:
        tx.update_task(task_id, status=int(status))


def test_query_lists_the_new_task_as_ai_and_waiting(
    api: TestClient, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task_id = submit(api, account, clock, script_id)
    resp = post(api, account, clock, QUERY, {"current": 1, "size": 10, "params": {}})
    assert resp["code"] == 0 and resp["msg"] == "success"
    page = resp["data"]
    assert (page["total"], page["size"], page["current"], page["pages"]) == (1, 10, 1, 1)
    rec = page["records"][0]
    assert rec["taskId"] == task_id and rec["taskType"] == 2 and rec["status"] == 0
    assert rec["numCnt"] == 2 and rec["rate"] == "0" and rec["scriptId"] == script_id
    assert rec["createdTime"] == "2026-06-01 12:00:00"


def test_query_filters_and_pages(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    ids = []
    for i in range(5):
        ids.append(submit(api, account, clock, script_id, taskName=f"batch {i}"))
        clock.advance(hours=1)
    set_status(store, ids[0], TaskStatus.FINISHED)
    page = post(api, account, clock, QUERY, {"current": 2, "size": 2})["data"]
    assert page["total"] == 5 and page["pages"] == 3
    assert [r["taskId"] for r in page["records"]] == [ids[2], ids[1]]
    by_status = post(api, account, clock, QUERY, {"params": {"statusList": [2]}})["data"]
    assert [r["taskId"] for r in by_status["records"]] == [ids[0]]
    window = {"strTime": "2026-06-01 13:00:00", "endTime": "2026-06-01 14:00:00"}
    by_time = post(api, account, clock, QUERY, {"params": window})["data"]
    assert sorted(r["taskId"] for r in by_time["records"]) == [ids[1], ids[2]]
    by_name = post(api, account, clock, QUERY, {"params": {"searchCondition": "batch 3"}})["data"]
    assert [r["taskId"] for r in by_name["records"]] == [ids[3]]
    by_app = post(api, account, clock, QUERY, {"params": {"idxAppId": "nope", "taskType": 2}})
    assert by_app["data"]["total"] == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"size": 101}, -21),
        ({"current": 0}, -21),
        ({"size": "many"}, -22),
        ({"params": {"strTime": "yesterday"}}, -21),
    ],
)
def test_query_rejects_bad_paging(
    api: TestClient, clock: FakeClock, account: TestAccount, body: dict[str, Any], code: int
) -> None:
    assert post(api, account, clock, QUERY, body)["code"] == code


def test_query_accepts_an_empty_body(
    api: TestClient, clock: FakeClock, account: TestAccount
) -> None:
    resp = post(api, account, clock, QUERY, raw=b"")
    assert resp["code"] == 0 and resp["data"]["total"] == 0


def test_detail_has_counters_and_settings(
    api: TestClient, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    numbers = [{"calleeNumber": "8613242926514", "text1": "a"}] * 3
    task_id = submit(api, account, clock, script_id, numberInfoList=numbers, sendTime=None)
    resp = get(api, account, clock, f"/v3/voice/group/call/detail/{task_id}")
    assert resp["code"] == 0
    d = resp["data"]
    assert d["taskId"] == task_id and d["numCnt"] == 1 and d["duplicateCnt"] == 2
    assert d["allowSendTime"] == [{"strTime": "18:28", "endTime": "19:28"}]
    assert d["maxCalls"] == 40 and d["displayNum"] == "1008122211"
    assert (d["success"], d["fail"], d["acd"], d["successRate"]) == (0, 0, "0", "0")
    unprefixed = get(api, account, clock, f"/voice/group/call/detail/{task_id}")
    assert unprefixed == resp


def test_detail_of_unknown_or_foreign_task(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task_id = submit(api, account, clock, script_id)
    other = make_account(store, clock, name="other")
    assert get(api, other, clock, f"/v3/voice/group/call/detail/{task_id}")["code"] == -24
    assert get(api, account, clock, "/v3/voice/group/call/detail/999999")["code"] == -24
    assert get(api, account, clock, "/v3/voice/group/call/detail/abc")["code"] == -22


def test_update_changes_a_waiting_task(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task_id = submit(api, account, clock, script_id)
    body = {
        "keyId": task_id,
        "taskName": "renamed",
        "scriptId": script_id,
        "maxRingingTime": 30,
        "sendTime": "2026-06-02 09:00:00",
        "allowSendTime": [{"strTime": "22:00", "endTime": "06:00"}],
    }
    resp = post(api, account, clock, UPDATE, body)
    assert resp == {"status": "0", "reason": "success", "data": None}
    d = get(api, account, clock, f"/v3/voice/group/call/detail/{task_id}")["data"]
    assert d["taskName"] == "renamed" and d["maxRingingTime"] == 30 and d["maxCalls"] == 40
    assert d["sendTime"] == "2026-06-02 09:00:00"
    assert d["allowSendTime"] == [{"strTime": "22:00", "endTime": "06:00"}]
    assert d["displayNum"] == "1008122211"  # omitted fields keep their values


def test_update_null_resets_a_field_and_absent_keeps_it(
    api: TestClient, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task_id = submit(
        api, account, clock, script_id, sendTime="2026-06-03 08:00:00", maxRingingTime=25
    )
    body = {"keyId": task_id, "taskName": "kept", "scriptId": script_id, "sendTime": None}
    assert post(api, account, clock, UPDATE, body)["status"] == "0"
    d = get(api, account, clock, f"/v3/voice/group/call/detail/{task_id}")["data"]
    assert d["sendTime"] is None and d["maxRingingTime"] == 25
    assert d["allowSendTime"] == [{"strTime": "18:28", "endTime": "19:28"}]
    body = {"keyId": task_id, "taskName": "kept", "scriptId": script_id, "allowSendTime": None}
    assert post(api, account, clock, UPDATE, body)["status"] == "0"
    d = get(api, account, clock, f"/v3/voice/group/call/detail/{task_id}")["data"]
    assert d["allowSendTime"] == []


def test_update_refusals(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task_id = submit(api, account, clock, script_id)
    submit(api, account, clock, script_id, taskName="taken")
    reminder = import_example(store, clock, account, "appointment-reminder.yaml")
    base = {"keyId": task_id, "taskName": "fine", "scriptId": script_id}
    assert post(api, account, clock, UPDATE, {**base, "taskName": "taken"})["status"] == "-41"
    assert post(api, account, clock, UPDATE, {**base, "scriptId": 424242})["status"] == "-60"
    missing = post(api, account, clock, UPDATE, {**base, "scriptId": reminder})
    assert missing["status"] == "-21" and "text2" in missing["reason"]
    assert post(api, account, clock, UPDATE, {**base, "maxCalls": 0})["status"] == "-21"
    assert post(api, account, clock, UPDATE, {**base, "keyId": "x"})["status"] == "-22"
    assert post(api, account, clock, UPDATE, {**base, "keyId": 999999})["status"] == "-24"
    other = make_account(store, clock, name="other")
    assert post(api, other, clock, UPDATE, base)["status"] == "-24"
    set_status(store, task_id, TaskStatus.CALLING)
    started = post(api, account, clock, UPDATE, base)
    assert started["status"] == "-54" and "status 1" in started["reason"]


def test_cancel_is_all_or_nothing_and_tenant_safe(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    a = submit(api, account, clock, script_id, taskName="a task")
    b = submit(api, account, clock, script_id, taskName="b task")
    other = make_account(store, clock, name="other")
    oscript = import_example(store, clock, other, "simple-notice.yaml")
    foreign = submit(api, other, clock, oscript)
    resp = post(api, account, clock, CANCEL, {"taskIdList": [a, foreign]})
    assert resp["code"] == -54 and str(foreign) in resp["msg"]
    assert get(api, account, clock, f"/v3/voice/group/call/detail/{a}")["data"]["status"] == 0
    assert post(api, account, clock, CANCEL, {"taskIdList": [a, b]}) == {
        "code": 0,
        "msg": "success",
        "data": None,
    }
    for t in (a, b):
        assert get(api, account, clock, f"/v3/voice/group/call/detail/{t}")["data"]["status"] == 4
    assert post(api, account, clock, CANCEL, {"taskIdList": [a]})["code"] == -54
    assert post(api, account, clock, CANCEL, {"taskIdList": []})["code"] == -21
    assert post(api, account, clock, CANCEL, {"taskIds": [a]})["code"] == -22
    assert (
        post(api, account, clock, "/v3/voice/group/call/cancel", {"taskIdList": [a]})["code"] == -54
    )
    cancelled_then_finished = submit(api, account, clock, script_id, taskName="done task")
    set_status(store, cancelled_then_finished, TaskStatus.FINISHED)
    assert (
        post(api, account, clock, CANCEL, {"taskIdList": [cancelled_then_finished]})["code"] == -54
    )


def test_pause_and_resume_return_to_the_previous_status(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    waiting = submit(api, account, clock, script_id, taskName="waiting")
    calling = submit(api, account, clock, script_id, taskName="calling")
    set_status(store, calling, TaskStatus.CALLING)
    assert post(api, account, clock, PAUSE, {"taskIdList": [waiting, calling]})["code"] == 0

    def status(t: int) -> int:
        return int(get(api, account, clock, f"/v3/voice/group/call/detail/{t}")["data"]["status"])

    assert status(waiting) == status(calling) == 5
    assert post(api, account, clock, PAUSE, {"taskIdList": [waiting]})["code"] == -54
    assert post(api, account, clock, RESUME, {"taskIdList": [waiting, calling]})["code"] == 0
    assert (status(waiting), status(calling)) == (0, 1)
    assert post(api, account, clock, RESUME, {"taskIdList": [waiting]})["code"] == -54


def test_suspended_tasks_still_count_as_unfinished(
    api: TestClient, store: Store, clock: FakeClock
) -> None:
    acc = make_account(store, clock, max_tasks=1)
    sid = import_example(store, clock, acc, "simple-notice.yaml")
    first = submit(api, acc, clock, sid)
    post(api, acc, clock, PAUSE, {"taskIdList": [first]})
    assert post(api, acc, clock, SEND, send_body(acc, sid, taskName="next"))["status"] == "-37"
    post(api, acc, clock, CANCEL, {"taskIdList": [first]})
    assert post(api, acc, clock, SEND, send_body(acc, sid, taskName="next"))["status"] == "0"


def test_get_balance_puts_amounts_at_top_level(
    api: TestClient, store: Store, clock: FakeClock
) -> None:
    acc = make_account(store, clock, balance="12.5", credit="3")
    for path in ("/v3/getBalance", "/getBalance"):
        resp = get(api, acc, clock, path)
        assert resp == {
            "status": "0",
            "reason": "success",
            "balance": "12.5000",
            "gift": "0.0000",
            "credit": "3.0000",
        }


def test_query_never_shows_another_accounts_tasks(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    submit(api, account, clock, script_id)
    other = make_account(store, clock, name="other")
    assert post(api, other, clock, QUERY, {})["data"]["total"] == 0
    assert post(api, other, clock, PAUSE, {"taskIdList": [1]})["code"] == -54


def test_unauthenticated_requests_answer_their_envelope(api: TestClient) -> None:
    b = api.post(QUERY, json={}).json()
    assert b["code"] == -1 and b["data"] is None
    a = api.get("/v3/getBalance").json()
    assert a["status"] == "-1"


def test_resume_refuses_while_funds_are_below_the_minimum(
    make_client: Any, store: Store, clock: FakeClock
) -> None:
    api = make_client(min_balance="0.5")
    acc = make_account(store, clock, balance="1")
    sid = import_example(store, clock, acc, "simple-notice.yaml")
    waiting = submit(api, acc, clock, sid, taskName="waiting")
    calling = submit(api, acc, clock, sid, taskName="calling")
    paused = submit(api, acc, clock, sid, taskName="paused by request")
    set_status(store, calling, TaskStatus.CALLING)
    assert post(api, acc, clock, PAUSE, {"taskIdList": [paused]})["code"] == 0
    # What the dialer does when a charge takes the funds below the minimum (written directly:
    # the dialer's store methods are not this test's subject).
    with store.write() as tx:
        tx.update_account(acc.account_id, balance=0)
        for task_id, before in ((waiting, TaskStatus.WAITING), (calling, TaskStatus.CALLING)):
            tx.update_task(
                task_id,
                status=int(TaskStatus.SUSPENDED),
                paused_from=int(before),
                status_reason="balance exhausted: top up and resume",
            )

    def detail(t: int) -> dict[str, Any]:
        data: dict[str, Any] = get(api, acc, clock, f"/v3/voice/group/call/detail/{t}")["data"]
        return data

    for ids in ([waiting], [waiting, calling], [paused], [paused, waiting]):
        resp = post(api, acc, clock, RESUME, {"taskIdList": ids})
        assert resp["code"] == -10, resp
        assert resp["msg"] == "balance exhausted: top up before resuming"
    assert [detail(t)["status"] for t in (waiting, calling, paused)] == [5, 5, 5]
    assert detail(waiting)["statusReason"] == "balance exhausted: top up and resume"
    assert detail(paused)["statusReason"] == "paused by request"
    # The ids are checked first: an unknown or running one is named, whatever the funds.
    assert post(api, acc, clock, RESUME, {"taskIdList": [waiting, 999999]})["code"] == -54

    # Funds at the minimum (a negative balance covered by credit counts) resume every task.
    with store.write() as tx:
        tx.update_account(acc.account_id, balance=-1000, credit=6000)
    resp = post(api, acc, clock, RESUME, {"taskIdList": [waiting, calling, paused]})
    assert resp["code"] == 0, resp
    assert [detail(t)["status"] for t in (waiting, calling, paused)] == [0, 1, 0]
    assert detail(waiting)["statusReason"] is None

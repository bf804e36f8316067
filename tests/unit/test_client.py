"""outdial.client.LaafficClient against httpx.MockTransport: signing, bodies and status codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from outdial.client import (
    LAAFFIC_BASE_URL,
    Balance,
    LaafficClient,
    LaafficError,
    Page,
    Task,
    sign,
)

KEY = "bDqJFiq9"
SECRET = "7bz1lzh9"
TS = 1630468800
EXAMPLE_SIGN = "05d7a50893e22a5c4bb3216ae3396c7c"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler answering queued JSON bodies and keeping the requests."""

    def __init__(self, *bodies: Any, status_code: int = 200) -> None:
        self.bodies = list(bodies)
        self.status_code = status_code
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = self.bodies.pop(0) if self.bodies else {"status": "0", "reason": "success"}
        return httpx.Response(self.status_code, json=body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def make(recorder: Handler, base_url: str | None = None) -> LaafficClient:
    kwargs: dict[str, Any] = {
        "api_key": KEY,
        "api_secret": SECRET,
        "clock": lambda: float(TS),
        "transport": httpx.MockTransport(recorder),
    }
    if base_url is not None:
        kwargs["base_url"] = base_url
    return LaafficClient(**kwargs)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(recorder: Recorder) -> Iterator[LaafficClient]:
    with make(recorder) as c:
        yield c


# --- signing and transport ---------------------------------------------------------------------


def test_headers_are_signed_with_the_injected_clock(api: LaafficClient) -> None:
    h = api.headers()
    assert h["Api-Key"] == KEY
    assert h["Timestamp"] == str(TS)
    assert h["Sign"] == EXAMPLE_SIGN == sign(KEY, SECRET, TS)
    assert h["Content-Type"] == "application/json;charset=UTF-8"


def test_fractional_clock_is_truncated_to_seconds(recorder: Recorder) -> None:
    with LaafficClient(
        api_key=KEY,
        api_secret=SECRET,
        clock=lambda: TS + 0.999,
        transport=httpx.MockTransport(recorder),
    ) as c:
        assert c.headers()["Timestamp"] == str(TS)
        assert c.headers()["Sign"] == EXAMPLE_SIGN


def test_request_carries_signature_headers(api: LaafficClient, recorder: Recorder) -> None:
    api.request("GET", "/v3/getBalance")
    sent = recorder.last.headers
    assert sent["Api-Key"] == KEY
    assert sent["Timestamp"] == "1630468800"
    assert sent["Sign"] == EXAMPLE_SIGN
    assert sent["Content-Type"] == "application/json;charset=UTF-8"


def test_each_request_is_signed_at_its_own_time(recorder: Recorder) -> None:
    times = iter([float(TS), float(TS + 5)])
    with LaafficClient(
        api_key=KEY,
        api_secret=SECRET,
        clock=lambda: next(times),
        transport=httpx.MockTransport(recorder),
    ) as c:
        c.request("GET", "/a")
        c.request("GET", "/b")
    first, second = recorder.requests
    assert first.headers["Timestamp"] == str(TS)
    assert second.headers["Timestamp"] == str(TS + 5)
    assert second.headers["Sign"] == sign(KEY, SECRET, TS + 5)


def test_default_base_url_is_laaffic(api: LaafficClient, recorder: Recorder) -> None:
    assert LAAFFIC_BASE_URL == "https://api.laaffic.com"
    api.request("GET", "/v3/getBalance")
    assert str(recorder.last.url) == "https://api.laaffic.com/v3/getBalance"


@pytest.mark.parametrize("base", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"])
def test_custom_base_url(recorder: Recorder, base: str) -> None:
    with make(recorder, base) as c:
        c.request("GET", "/v3/getBalance")
    assert str(recorder.last.url) == "http://127.0.0.1:8080/v3/getBalance"


def test_extra_headers_are_added(api: LaafficClient, recorder: Recorder) -> None:
    api.request("POST", "/x", {"a": 1}, headers={"X-Trace": "t1"})
    assert recorder.last.headers["X-Trace"] == "t1"
    assert recorder.last.headers["Sign"] == EXAMPLE_SIGN
    assert recorder.last_json() == {"a": 1}


def test_request_returns_whole_body(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"status": "0", "reason": "success", "data": 5, "other": "x"})
    assert api.request("GET", "/x") == {"status": "0", "reason": "success", "data": 5, "other": "x"}


def test_http_error_status_raises(recorder: Recorder) -> None:
    recorder.status_code = 500
    with make(recorder) as c, pytest.raises(httpx.HTTPStatusError):
        c.request("GET", "/x")


# --- status codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"status": "0", "reason": "success"},
        {"status": 0},
        {"code": 0, "msg": "success"},
        {"code": "0", "msg": "success"},
    ],
    ids=["A-string", "A-int", "B-int", "B-string"],
)
def test_zero_status_is_success(api: LaafficClient, recorder: Recorder, body: Any) -> None:
    recorder.bodies.append(body)
    assert api.request("GET", "/x") == body


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (
            {"status": "-21", "reason": "data validation exception"},
            -21,
            "data validation exception",
        ),
        ({"status": -1, "reason": "authentication error"}, -1, "authentication error"),
        ({"code": -54, "msg": "task does not exist"}, -54, "task does not exist"),
        ({"code": "-24", "msg": "data unexisting"}, -24, "data unexisting"),
        ({}, -18, ""),
        ({"data": 1}, -18, ""),
    ],
    ids=["A-string", "A-int", "B-int", "B-string", "empty", "no-code"],
)
def test_non_zero_status_raises(
    api: LaafficClient, recorder: Recorder, body: Any, status: int, reason: str
) -> None:
    recorder.bodies.append(body)
    with pytest.raises(LaafficError) as info:
        api.request("POST", "/v3/voice/group/call/send/ai", {})
    err = info.value
    assert err.status == status
    assert type(err.status) is int
    assert err.reason == reason
    assert err.endpoint == "/v3/voice/group/call/send/ai"
    assert str(err) == f"/v3/voice/group/call/send/ai: {status} {reason}"


# --- send_ai -----------------------------------------------------------------------------------


def test_send_ai_returns_int_task_id(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"status": "0", "reason": "success", "data": "1234"})
    task_id = api.send_ai(
        app_id="app1",
        task_name="June reminders",
        script_id=7,
        max_calls=60,
        numbers=["8613242926514", {"calleeNumber": "8613242926515", "text1": "Li"}],
    )
    assert task_id == 1234
    assert type(task_id) is int
    assert recorder.last.method == "POST"
    assert recorder.last.url.path == "/v3/voice/group/call/send/ai"
    assert recorder.last_json() == {
        "appId": "app1",
        "taskName": "June reminders",
        "scriptId": 7,
        "maxCalls": 60,
        "numberList": ["8613242926514", {"calleeNumber": "8613242926515", "text1": "Li"}],
        "allowSendTime": [],
    }
    assert "Idempotency-Key" not in recorder.last.headers


def test_send_ai_optional_fields_and_idempotency(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"status": "0", "data": 9})
    task_id = api.send_ai(
        app_id="app1",
        task_name="t",
        script_id=1,
        max_calls=40,
        numbers=("8613242926514",),
        display_num="1008122211",
        send_time="2024-06-21 00:00:00",
        allow_send_time=[("18:28", "19:28"), ("22:00", "06:00")],
        max_ringing_time=60,
        enable_recording=0,
        callout_rate=2,
        idempotency_key="abc-1",
        timezone="Asia/Shanghai",
    )
    assert task_id == 9
    sent = recorder.last_json()
    assert sent["displayNum"] == "1008122211"
    assert sent["sendTime"] == "2024-06-21 00:00:00"
    assert sent["allowSendTime"] == [
        {"strTime": "18:28", "endTime": "19:28"},
        {"strTime": "22:00", "endTime": "06:00"},
    ]
    assert sent["maxRingingTime"] == 60
    assert sent["enableRecording"] == 0  # zero is sent, only None is left out
    assert sent["calloutRate"] == 2
    assert sent["timezone"] == "Asia/Shanghai"
    assert sent["numberList"] == ["8613242926514"]
    assert recorder.last.headers["Idempotency-Key"] == "abc-1"
    assert recorder.last.headers["Sign"] == EXAMPLE_SIGN


def test_send_ai_style_a_failure(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"status": "-21", "reason": "data validation exception"})
    with pytest.raises(LaafficError) as info:
        api.send_ai(app_id="a", task_name="tt", script_id=1, max_calls=1, numbers=[])
    assert info.value.status == -21


# --- other endpoints ---------------------------------------------------------------------------

RECORD = {
    "taskId": 101,
    "taskName": "June",
    "status": 1,
    "rate": "45.5",
    "numCnt": 200,
    "callNum": 91,
    "success": 80,
    "fail": 11,
    "createdTime": "2024-06-03 10:42:05",
    "scriptId": 7,
    "taskType": 2,
}


def test_query_tasks_parses_page(api: LaafficClient, recorder: Recorder) -> None:
    job_record = {"jobId": "102", "taskName": "July", "status": "0", "numCnt": None}
    recorder.bodies.append(
        {
            "code": 0,
            "msg": "success",
            "data": {
                "total": "2",
                "size": 10,
                "current": 1,
                "pages": 1,
                "records": [RECORD, job_record],
            },
        }
    )
    page = api.query_tasks(current=1, size=10, taskName="Ju", status=1)
    assert recorder.last.url.path == "/v3/voice/group/call/query"
    assert recorder.last_json() == {
        "current": 1,
        "size": 10,
        "params": {"taskName": "Ju", "status": 1},
    }
    assert isinstance(page, Page)
    assert (page.total, page.size, page.current, page.pages) == (2, 10, 1, 1)
    first, second = page.records
    assert first == Task(
        task_id=101,
        task_name="June",
        status=1,
        rate="45.5",
        num_cnt=200,
        call_num=91,
        success=80,
        fail=11,
        created_time="2024-06-03 10:42:05",
        script_id=7,
        task_type=2,
        raw=RECORD,
    )
    assert second.task_id == 102
    assert second.task_name == "July"
    assert second.status == 0
    assert second.rate == "0"
    assert (second.num_cnt, second.call_num, second.success, second.fail) == (0, 0, 0, 0)
    assert second.created_time is None
    assert second.script_id is None
    assert second.raw == job_record


def test_query_tasks_empty_page(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append(
        {"code": 0, "data": {"total": 0, "size": 10, "current": 3, "pages": 0, "records": []}}
    )
    page = api.query_tasks(current=3)
    assert page.records == []
    assert recorder.last_json() == {"current": 3, "size": 10, "params": {}}


def test_query_tasks_failure(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"code": -22, "msg": "parameter exception"})
    with pytest.raises(LaafficError) as info:
        api.query_tasks()
    assert info.value.status == -22


def test_task_prefers_task_id_over_job_id() -> None:
    assert Task.from_json({"taskId": 1, "jobId": 2}).task_id == 1
    assert Task.from_json({}).task_id == 0


def test_task_detail(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"code": 0, "data": RECORD})
    task = api.task_detail(101)
    assert recorder.last.method == "GET"
    assert recorder.last.url.path == "/v3/voice/group/call/detail/101"
    assert task.task_id == 101
    assert task.success == 80


def test_task_detail_style_b_failure(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"code": -54, "msg": "task does not exist or cannot be operated"})
    with pytest.raises(LaafficError) as info:
        api.task_detail(5)
    assert info.value.status == -54
    assert info.value.endpoint == "/v3/voice/group/call/detail/5"


def test_get_balance_parses_top_level_strings(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append(
        {"status": "0", "reason": "success", "balance": "100.5000", "gift": "0", "credit": 20}
    )
    balance = api.get_balance()
    assert balance == Balance(balance="100.5000", gift="0", credit="20")
    assert recorder.last.method == "GET"
    assert recorder.last.url.path == "/v3/getBalance"


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.cancel([1, 2]), "/voice/group/call/cancel"),
        (lambda c: c.pause([1, 2]), "/v3/voice/group/call/pause"),
        (lambda c: c.resume([1, 2]), "/v3/voice/group/call/resume"),
    ],
    ids=["cancel", "pause", "resume"],
)
def test_task_id_list_endpoints(
    api: LaafficClient, recorder: Recorder, call: Callable[[LaafficClient], None], path: str
) -> None:
    recorder.bodies.append({"code": 0, "msg": "success", "data": None})
    call(api)
    assert recorder.last.method == "POST"
    assert recorder.last.url.path == path
    assert recorder.last_json() == {"taskIdList": [1, 2]}


def test_update_ai(api: LaafficClient, recorder: Recorder) -> None:
    recorder.bodies.append({"status": "0", "data": None})
    api.update_ai(101, taskName="New name", maxCalls=30)
    assert recorder.last.url.path == "/v3/voice/group/call/update/ai"
    assert recorder.last_json() == {"keyId": 101, "taskName": "New name", "maxCalls": 30}


def test_context_manager_closes_client(recorder: Recorder) -> None:
    c = make(recorder)
    with c:
        pass
    with pytest.raises(RuntimeError):
        c.request("GET", "/x")

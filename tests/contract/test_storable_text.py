"""Text that PostgreSQL cannot store (NUL) or no driver can encode (UTF-16 surrogates) answers
-21 naming the field, on SQLite and PostgreSQL alike, in every route and command that stores or
searches text, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from outdial.domain.codes import TaskStatus
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount
from tests.helpers import EXAMPLES, SEND, counts, get, import_example, post, send_body

NUL = "\x00"
UPDATE = "/v3/voice/group/call/update/ai"
RESEND = "/v3/voice/group/call/resend/ai"
TASKS = "/v3/voice/group/call/query"
RECORDS = "/v3/voice/recordGroupQuery"
RECALLS = "/v3/voice/recallFlow/queryPage"
DNC_ADD = "/v3/voice/dnc/add"
DNC_REMOVE = "/v3/voice/dnc/remove"
DNC_QUERY = "/v3/voice/dnc/query"
RANGE = {"strTime": "2026-06-01T00:00:00+00:00", "endTime": "2026-06-02T00:00:00+00:00"}


@pytest.fixture
def script_id(store: Store, clock: FakeClock, account: TestAccount) -> int:
    return import_example(store, clock, account, "simple-notice.yaml")


def code_of(resp: dict[str, Any]) -> int:
    return int(resp["status"] if "status" in resp else resp["code"])


def reason_of(resp: dict[str, Any]) -> str:
    return str(resp.get("reason", resp.get("msg")))


def expect_21(resp: dict[str, Any], field: str, why: str = "contains a NUL character") -> None:
    assert code_of(resp) == -21, resp
    assert reason_of(resp) == f"{field} {why}", resp
    assert resp["data"] is None


def callee(number: str, **texts: str) -> dict[str, str]:
    return {"calleeNumber": number, **texts}


SEND_CASES: list[tuple[str, dict[str, Any]]] = [
    ("taskName", {"taskName": f"June{NUL}reminders"}),
    ("appId", {"appId": NUL}),
    ("displayNum", {"displayNum": f"100{NUL}"}),
    ("sendTime", {"sendTime": f"2026-06-21 00:00:00{NUL}"}),
    ("timezone", {"timezone": f"UTC{NUL}"}),
    ("windowZone", {"windowZone": f"task{NUL}"}),
    ("allowSendTime[0].endTime", {"allowSendTime": [{"strTime": "09:00", "endTime": f"1{NUL}"}]}),
    (
        "numberList[1].text1",
        {
            "numberInfoList": [
                callee("8613242926514", text1="Li"),
                callee("8613242926515", text1=f"Li{NUL}Wei"),
            ]
        },
    ),
    (
        # Past the 30 characters a text keeps: a NUL anywhere in the given value is refused.
        "numberList[0].text2",
        {"numberInfoList": [callee("8613242926514", text1="Li", text2="x" * 40 + NUL)]},
    ),
]


@pytest.mark.parametrize(("field", "change"), SEND_CASES, ids=[c[0] for c in SEND_CASES])
def test_send_ai(
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    script_id: int,
    field: str,
    change: dict[str, Any],
) -> None:
    resp = post(api, account, clock, SEND, send_body(account, script_id, **change))
    expect_21(resp, field)
    assert counts(store, account.account_id) == (0, 0)


def test_send_ai_a_nul_in_a_callee_number_is_a_bad_number(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    body = send_body(account, script_id, numberInfoList=[callee(f"8613242926514{NUL}", text1="a")])
    resp = post(api, account, clock, SEND, body)
    assert code_of(resp) == -21 and reason_of(resp).startswith("numberList[0]: "), resp
    assert counts(store, account.account_id) == (0, 0)


def test_a_nul_in_an_ignored_field_is_ignored_like_the_field(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    body = send_body(
        account,
        script_id,
        newerField=NUL,
        numberInfoList=[callee("8613242926514", text1="a", note=NUL, **{NUL: "x"})],
    )
    assert code_of(post(api, account, clock, SEND, body)) == 0


def test_surrogates_in_json_are_malformed_json(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    # JSON cannot carry a lone surrogate as UTF-8 text; escaped, orjson refuses it as well.
    raw = orjson.dumps(send_body(account, script_id, taskName="SURROGATE")).replace(
        b"SURROGATE", b"ab\\ud800"
    )
    resp = post(api, account, clock, SEND, raw=raw)
    assert code_of(resp) == -22 and "malformed JSON" in reason_of(resp), resp
    assert counts(store, account.account_id) == (0, 0)


def _submit(api: TestClient, account: TestAccount, clock: FakeClock, script_id: int) -> int:
    resp = post(api, account, clock, SEND, send_body(account, script_id))
    assert code_of(resp) == 0, resp
    return int(resp["data"])


def _detail(api: TestClient, account: TestAccount, clock: FakeClock, task: int) -> Any:
    return get(api, account, clock, f"/v3/voice/group/call/detail/{task}")["data"]


@pytest.mark.parametrize(
    ("field", "change"),
    [("taskName", {"taskName": f"new{NUL}"}), ("displayNum", {"displayNum": NUL})],
)
def test_update_ai(
    api: TestClient,
    store: Store,
    clock: FakeClock,
    account: TestAccount,
    script_id: int,
    field: str,
    change: dict[str, Any],
) -> None:
    task = _submit(api, account, clock, script_id)
    before = _detail(api, account, clock, task)
    body = {"keyId": task, "taskName": "renamed", "scriptId": script_id, **change}
    expect_21(post(api, account, clock, UPDATE, body), field)
    assert _detail(api, account, clock, task) == before


def test_resend_ai(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, script_id: int
) -> None:
    task = _submit(api, account, clock, script_id)
    with store.write() as tx:
        tx.update_task(task, status=int(TaskStatus.FINISHED))
    body = {"keyId": task, "resendType": 0, "taskName": f"again{NUL}", "scriptId": script_id}
    expect_21(post(api, account, clock, RESEND, body), "taskName")
    assert counts(store, account.account_id) == (1, 2)


QUERY_CASES: list[tuple[str, str, dict[str, Any]]] = [
    (TASKS, "params.searchCondition", {"params": {"searchCondition": f"June{NUL}"}}),
    (TASKS, "params.idxAppId", {"params": {"idxAppId": NUL}}),
    (TASKS, "params.strTime", {"params": {"strTime": f"2026-06-01 00:00:00{NUL}"}}),
    (RECORDS, "params.callee", {"params": {**RANGE, "callee": f"86132{NUL}"}}),
    (RECORDS, "params.strTime", {"params": {**RANGE, "strTime": f"{NUL}2026-06-01"}}),
    (RECALLS, "params.taskName", {"params": {"taskName": NUL}}),
    (DNC_QUERY, "number", {"number": f"8613242926514{NUL}"}),
    (DNC_REMOVE, "numbers[1]", {"numbers": ["8613242926514", f"86132{NUL}"]}),
]


@pytest.mark.parametrize(
    ("path", "field", "body"), QUERY_CASES, ids=[f"{c[0]}:{c[1]}" for c in QUERY_CASES]
)
def test_queries(
    api: TestClient,
    clock: FakeClock,
    account: TestAccount,
    path: str,
    field: str,
    body: dict[str, Any],
) -> None:
    expect_21(post(api, account, clock, path, body), field)


def _dnc_total(api: TestClient, account: TestAccount, clock: FakeClock) -> int:
    return int(post(api, account, clock, DNC_QUERY, {})["data"]["total"])


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("reason", {"numbers": ["8613242926514"], "reason": f"asked{NUL}"}),
        ("numbers[0]", {"numbers": [f"{NUL}8613242926514"]}),
    ],
)
def test_dnc_add(
    api: TestClient, clock: FakeClock, account: TestAccount, field: str, body: dict[str, Any]
) -> None:
    expect_21(post(api, account, clock, DNC_ADD, body), field)
    assert _dnc_total(api, account, clock) == 0


def test_recording_id(api: TestClient, clock: FakeClock, account: TestAccount) -> None:
    resp = api.get("/v3/voice/recording/ab%00cd", headers=account.headers(clock))
    assert resp.status_code == 200
    expect_21(resp.json(), "recordingFileId")


# --- the operator CLI ------------------------------------------------------------------------


def _accounts(store: Store) -> int:
    with store.read() as tx:
        return int(tx.conn.execute(select(func.count()).select_from(schema.accounts)).scalar_one())


SURROGATE = "\udcff"  # what a non-UTF-8 byte in a command-line argument decodes to


@pytest.mark.parametrize(
    ("args", "field", "why"),
    [
        (["--name", f"Cl{NUL}inic"], "name", "contains a NUL character"),
        (
            ["--name", f"Cl{SURROGATE}inic"],
            "name",
            "contains a UTF-16 surrogate, which is not Unicode text",
        ),
        (["--name", "c", "--currency", f"US{NUL}"], "currency", "contains a NUL character"),
        (["--name", "c", "--timezone", f"UTC{NUL}"], "timezone", "contains a NUL character"),
        (["--name", "c", "--push-url", f"http://x/{NUL}"], "push URL", "contains a NUL character"),
        (
            ["--name", "c", "--ip-allow", f"10.0.0.0/8{NUL}"],
            "ip-allow[0]",
            "contains a NUL character",
        ),
    ],
)
def test_cli_account_create(cli: Any, store: Store, args: list[str], field: str, why: str) -> None:
    before = _accounts(store)
    err = cli("account", "create", *args, ok=False)
    assert err == {"error": f"{field} {why}", "code": -21}
    assert _accounts(store) == before


def test_cli_account_create_refuses_a_currency_that_is_not_an_iso_code(
    cli: Any, store: Store
) -> None:
    before = _accounts(store)
    err = cli("account", "create", "--name", "c", "--currency", "USDX", ok=False)
    assert err["code"] == -21 and "three-letter" in err["error"]
    assert _accounts(store) == before


def _app_count(store: Store, account_id: int) -> int:
    with store.read() as tx:
        return len(tx.apps_of(account_id))


def test_cli_app_create_and_dnc_add(cli: Any, store: Store) -> None:
    acc = cli("account", "create", "--name", "nul")["accountId"]
    err = cli("app", "create", "--account", str(acc), "--push-url", f"https://a/{NUL}", ok=False)
    assert err == {"error": "push URL contains a NUL character", "code": -21}
    assert _app_count(store, acc) == 1
    for reason, why in ((f"asked{NUL}", "a NUL character"), (SURROGATE, "a UTF-16 surrogate")):
        err = cli(
            "dnc", "add", "8613242926514", "--account", str(acc), "--reason", reason, ok=False
        )
        assert err["code"] == -21 and err["error"].startswith(f"reason contains {why}")
    with store.read() as tx:
        assert tx.dnc_page(acc, None, 0, 10)[0] == 0


@pytest.mark.parametrize(
    ("edit", "path", "why"),
    [
        (lambda t: t.replace("name: Simple notice", 'name: "Simple\\0notice"'), "name", "NUL"),
        (lambda t: t.replace("name: Simple notice", 'name: "Simple\\ud800"'), "name", "surrogate"),
    ],
    ids=["nul", "surrogate"],
)
def test_cli_script_import(
    cli: Any, store: Store, tmp_path: Path, edit: Callable[[str], str], path: str, why: str
) -> None:
    acc = cli("account", "create", "--name", "tpl")["accountId"]
    source = tmp_path / "t.yaml"
    source.write_text(edit((EXAMPLES / "templates" / "simple-notice.yaml").read_text()))
    err = cli("script", "import", str(source), "--account", str(acc), ok=False)
    assert err["code"] == -21 and err["error"] == "the template has problems"
    assert [p["path"] for p in err["problems"]] == [path]
    assert why in err["problems"][0]["message"]
    with store.read() as tx:
        assert (
            tx.conn.execute(
                select(func.count()).where(schema.scripts.c.account_id == acc)
            ).scalar_one()
            == 0
        )


def test_cli_script_import_of_a_file_that_is_not_utf8(cli: Any, tmp_path: Path) -> None:
    acc = cli("account", "create", "--name", "bytes")["accountId"]
    source = tmp_path / "t.yaml"
    source.write_bytes(b"name: caf\xe9\n")
    err = cli("script", "import", str(source), "--account", str(acc), ok=False)
    assert err["code"] == -21 and "not UTF-8" in err["error"]


def test_cli_trunk_add(cli: Any, store: Store) -> None:
    err = cli("trunk", "add", "nul-trunk", "--host", f"sip.example{NUL}", ok=False)
    assert err == {"error": "--host contains a NUL character", "code": -21}
    with store.read() as tx:
        assert tx.trunk("nul-trunk") is None

"""resend/ai, recall flows and the call-record API, over real dialing on virtual time."""

from __future__ import annotations

import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.domain.outcome import Outcome
from outdial.service.recall import RecallService
from outdial.service.submit import SubmitPolicy
from outdial.store.repo import Store
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sim import SimCarrier, SimProfile
from outdial.testing import (
    Scripted,
    ScriptedCarrier,
    TalkingConversation,
    TestAccount,
    make_account,
)
from tests.helpers import get, import_example, post, send_body

ANSWERS, BUSY, SILENT = "14155550101", "14155550102", "14155550103"
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@dataclass
class Rig:
    store: Store
    loop: VirtualTimeLoop
    clock: LoopClock
    api: TestClient
    account: TestAccount
    script_id: int
    settings: Settings

    def send(self, **fields: Any) -> int:
        numbers = [{"calleeNumber": n, "text1": "x"} for n in (ANSWERS, BUSY, SILENT)]
        body = send_body(
            self.account,
            self.script_id,
            numberInfoList=numbers,
            allowSendTime=[],
            maxCalls=300,
            **fields,
        )
        resp = post(self.api, self.account, self.clock, "/v3/voice/group/call/send/ai", body)
        assert resp["status"] == "0", resp
        return int(resp["data"])

    def dial(self, carrier: Any = None) -> None:
        carrier = carrier or ScriptedCarrier(
            self.clock,
            {
                ANSWERS: Scripted(Outcome.CONNECTED, ring=4, talk=65),
                BUSY: Scripted(Outcome.BUSY, ring=2),
                SILENT: Scripted(Outcome.NO_ANSWER),
            },
        )
        dialer = Dialer(
            self.store,
            carrier,
            self.clock,
            DialerConfig(worker_id="test"),
            conversation=TalkingConversation(),
            recalls=RecallService(self.store, self.clock, SubmitPolicy()),
        )
        self.loop.run_until_complete(dialer.drain())


@pytest.fixture
def rig(fresh_db_url: str, tmp_path: Any) -> Iterator[Rig]:
    store = Store.open(fresh_db_url)
    loop = VirtualTimeLoop()
    clock = LoopClock(loop, START)
    settings = Settings(_env_file=None, recordings_dir=str(tmp_path / "rec"))  # type: ignore[call-arg]
    account = make_account(store, clock, timezone="Asia/Shanghai")
    script_id = import_example(store, clock, account, "simple-notice.yaml")
    with TestClient(create_app(settings, store, clock)) as api:
        yield Rig(store, loop, clock, api, account, script_id, settings)
    loop.close()
    store.close()


def _records(rig: Rig, **params: Any) -> dict[str, Any]:
    body = {
        "current": 1,
        "size": 100,
        "params": {
            "strTime": "2026-06-01T00:00:00+08:00",
            "endTime": "2026-06-30T00:00:00+08:00",
            **params,
        },
    }
    return post(rig.api, rig.account, rig.clock, "/v3/voice/recordGroupQuery", body)


def test_record_queries_report_each_attempt_in_laaffic_fields(rig: Rig) -> None:
    task_id = rig.send()
    rig.dial()
    resp = _records(rig)
    assert resp["status"] == "0"
    page = resp["data"]
    assert page["total"] == 3 and page["searchCount"] is True
    by_callee = {r["callee"]: r for r in page["records"]}
    answered = by_callee[ANSWERS]
    assert answered["terminationCode"] == "200" and answered["callDuration"] == 65
    assert answered["chargedDuration"] == 120 and answered["billPeriod"] == "60+60"
    assert answered["cost"] == "0.0260" and answered["rate"] == "0.0130"
    assert answered["callTime"].endswith("+08:00") and answered["ringDuration"] == 4
    assert answered["code"] and answered["code"].startswith("United States")
    assert answered["transcript"] and answered["transcript"][0]["speaker"] == "bot"
    assert by_callee[BUSY]["terminationCode"] == "486"
    assert by_callee[SILENT]["outcome"] == "no_answer"
    one = get(rig.api, rig.account, rig.clock, f"/v3/voice/recordGroup/{answered['voiceId']}")
    assert one == {"status": "0", "reason": "success", "data": answered}
    only_task = _records(rig, taskId=task_id, callee=BUSY)["data"]
    assert [r["callee"] for r in only_task["records"]] == [BUSY]


def test_record_queries_check_their_range_and_tenancy(rig: Rig) -> None:
    rig.send()
    rig.dial()
    voice_id = _records(rig)["data"]["records"][0]["voiceId"]
    other = make_account(rig.store, rig.clock, name="other")
    assert get(rig.api, other, rig.clock, f"/v3/voice/recordGroup/{voice_id}")["status"] == "-24"
    assert get(rig.api, rig.account, rig.clock, "/v3/voice/recordGroup/nope")["status"] == "-24"
    too_long = _records(rig, endTime="2026-07-15T00:00:00+08:00")
    assert too_long["status"] == "-21" and "31 days" in too_long["reason"]
    assert _records(rig, strTime="yesterday")["status"] == "-21"
    assert _records(rig, strTime="2026-06-01T00:00:00")["status"] == "-21"  # no offset
    missing = post(rig.api, rig.account, rig.clock, "/v3/voice/recordGroupQuery", {"current": 1})
    assert missing["status"] == "-22"
    body = {
        "params": {"strTime": "2026-06-01T00:00:00+08:00", "endTime": "2026-06-02T00:00:00+08:00"}
    }
    assert post(rig.api, other, rig.clock, "/v3/voice/recordGroupQuery", body)["data"]["total"] == 0


def test_recordings_are_written_and_downloadable_by_their_owner_only(
    rig: Rig, tmp_path: Path
) -> None:
    rig.send(enableRecording=1)
    profile = SimProfile(
        answer=1,
        busy=0,
        no_answer=0,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        ring_seconds=(1, 1),
        talk_seconds=(3, 3),
        post_dial_seconds=(0, 0),
        personas=(),
    )
    rig.dial(SimCarrier(rig.clock, profile, RecordingStore(rig.settings.recordings_dir)))
    records = _records(rig)["data"]["records"]
    assert all(r["recordingFileId"] for r in records)
    url = records[0]["recordingUrl"]
    resp = rig.api.get(url, headers=rig.account.headers(rig.clock))
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
    with wave.open(BytesIO(resp.content)) as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1
        assert wav.getnframes() == records[0]["callDuration"] * 8000
    other = make_account(rig.store, rig.clock, name="other")
    assert rig.api.get(url, headers=other.headers(rig.clock)).json()["status"] == "-24"
    _recording_from_the_cli(rig, records[0]["voiceId"], resp.content, tmp_path)


def _recording_from_the_cli(rig: Rig, voice_id: str, wav: bytes, tmp_path: Path) -> None:
    """``outdial recording get VOICE_ID -o FILE`` copies the same bytes the API serves."""
    from typer.testing import CliRunner

    from outdial.cli.main import app

    env = {
        "OUTDIAL_DATABASE_URL": str(rig.store.engine.url.render_as_string(hide_password=False)),
        "OUTDIAL_RECORDINGS_DIR": rig.settings.recordings_dir,
    }
    out = tmp_path / "call.wav"
    result = CliRunner().invoke(app, ["recording", "get", voice_id, "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == wav and json.loads(result.stdout)["bytes"] == len(wav)
    missing = CliRunner().invoke(app, ["recording", "get", "987654", "-o", str(out)], env=env)
    assert missing.exit_code == 1 and json.loads(missing.stderr)["code"] == -24


def test_resend_all_or_only_the_callees_not_connected(rig: Rig) -> None:
    task_id = rig.send()
    resend = "/v3/voice/group/call/resend/ai"
    base = {"keyId": task_id, "taskName": "again", "scriptId": rig.script_id, "resendType": 1}
    running = post(rig.api, rig.account, rig.clock, resend, base)
    assert running["status"] == "-54"
    rig.dial()
    failed_only = post(rig.api, rig.account, rig.clock, resend, base)
    assert failed_only["status"] == "0", failed_only
    detail = get(
        rig.api, rig.account, rig.clock, f"/v3/voice/group/call/detail/{failed_only['data']}"
    )
    assert detail["data"]["numCnt"] == 2 and detail["data"]["status"] == 0
    everyone = post(
        rig.api, rig.account, rig.clock, resend, {**base, "taskName": "all", "resendType": 0}
    )
    all_detail = get(
        rig.api, rig.account, rig.clock, f"/v3/voice/group/call/detail/{everyone['data']}"
    )
    assert all_detail["data"]["numCnt"] == 3
    assert (
        post(rig.api, rig.account, rig.clock, resend, {**base, "keyId": 999999})["status"] == "-24"
    )
    assert (
        post(rig.api, rig.account, rig.clock, resend, {**base, "taskName": "x2", "resendType": 7})[
            "status"
        ]
        == "-21"
    )
    assert (
        post(rig.api, rig.account, rig.clock, resend, {**base, "taskName": "again"})["status"]
        == "-41"
    )


def test_resend_failed_of_a_task_where_everyone_answered_is_minus_34(rig: Rig) -> None:
    task_id = rig.send()
    rig.dial(ScriptedCarrier(rig.clock, default=Scripted(Outcome.CONNECTED, ring=1, talk=5)))
    body = {"keyId": task_id, "taskName": "nobody", "scriptId": rig.script_id, "resendType": 1}
    resp = post(rig.api, rig.account, rig.clock, "/v3/voice/group/call/resend/ai", body)
    assert resp["status"] == "-34"


def test_recall_flow_runs_its_rounds_after_the_interval(rig: Rig) -> None:
    task_id = rig.send(recallFlow={"recallType": 1, "recallInterval": 10, "recallNum": 2})
    rig.dial()
    page = post(
        rig.api,
        rig.account,
        rig.clock,
        "/v3/voice/recallFlow/queryPage",
        {"current": 1, "size": 10},
    )
    assert page["status"] == "0" and page["data"]["total"] == 1
    flow = page["data"]["records"][0]
    assert flow["taskId"] == task_id and flow["finishNum"] == 2 and flow["status"] == 2
    detail = post(
        rig.api,
        rig.account,
        rig.clock,
        "/v3/voice/recallFlow/queryDetail",
        {"keyId": flow["keyId"]},
    )
    rounds = detail["data"]["nodeList"]
    assert [n["round"] for n in rounds] == [1, 2] and all(n["nodeStatus"] == 2 for n in rounds)
    records = _records(rig)["data"]["records"]
    calls_to = {n: [r for r in records if r["callee"] == n] for n in (ANSWERS, BUSY, SILENT)}
    assert len(calls_to[ANSWERS]) == 1  # connected in the first task: never recalled
    assert len(calls_to[BUSY]) == len(calls_to[SILENT]) == 3
    first_end = max(r["hangupTime"] for r in records if r["taskId"] == task_id)
    first_recall = min(r["callTime"] for r in records if r["taskId"] == rounds[0]["taskId"])
    gap = datetime.fromisoformat(first_recall) - datetime.fromisoformat(first_end)
    assert gap.total_seconds() >= 600


def test_recall_flow_update_cancel_and_rules(rig: Rig) -> None:
    bad = send_body(
        rig.account,
        rig.script_id,
        taskName="bad recall",
        recallFlow={"recallType": 1, "recallInterval": 0, "recallNum": 2},
    )
    assert (
        post(rig.api, rig.account, rig.clock, "/v3/voice/group/call/send/ai", bad)["status"]
        == "-21"
    )
    task_id = rig.send(recallFlow={"recallType": 0, "recallInterval": 5, "recallNum": 3})
    page = post(
        rig.api,
        rig.account,
        rig.clock,
        "/v3/voice/recallFlow/queryPage",
        {"params": {"taskName": str(task_id)}},
    )
    key = page["data"]["records"][0]["keyId"]
    upd = {"keyId": key, "recallType": 1, "recallInterval": 30, "recallNum": 1}
    assert (
        post(rig.api, rig.account, rig.clock, "/v3/voice/recallFlow/update", upd)["status"] == "0"
    )
    detail = post(
        rig.api, rig.account, rig.clock, "/v3/voice/recallFlow/queryDetail", {"keyId": key}
    )["data"]
    assert (detail["recallType"], detail["recallInterval"], detail["recallNum"]) == (1, 30, 1)
    assert (
        post(
            rig.api, rig.account, rig.clock, "/v3/voice/recallFlow/update", {**upd, "recallNum": 11}
        )["status"]
        == "-21"
    )
    other = make_account(rig.store, rig.clock, name="other")
    assert (
        post(rig.api, other, rig.clock, "/v3/voice/recallFlow/queryDetail", {"keyId": key})[
            "status"
        ]
        == "-24"
    )
    cancel = {"type": 2, "id": task_id}
    assert (
        post(rig.api, rig.account, rig.clock, "/v3/voice/recallFlow/cancel", cancel)["status"]
        == "0"
    )
    assert (
        post(
            rig.api, rig.account, rig.clock, "/v3/voice/recallFlow/cancel", {"type": 1, "id": key}
        )["status"]
        == "-54"
    )
    rig.dial()
    assert len(_records(rig)["data"]["records"]) == 3  # no round after the cancel


def test_push_reports_are_queued_with_each_record(rig: Rig) -> None:
    from sqlalchemy import select

    from outdial.notify.ssrf import PushTargets
    from outdial.service.accounts import AccountService
    from outdial.store import schema

    local = PushTargets(allow_private=True)
    app = AccountService(rig.store, rig.clock, push_targets=local).create_app(
        rig.account.account_id, "http://127.0.0.1:9/push"
    )
    body = send_body(
        rig.account,
        rig.script_id,
        appId=app["appId"],
        allowSendTime=[],
        numberInfoList=[{"calleeNumber": ANSWERS, "text1": "x"}],
        maxCalls=300,
    )
    assert (
        post(rig.api, rig.account, rig.clock, "/v3/voice/group/call/send/ai", body)["status"] == "0"
    )
    rig.dial()
    with rig.store.read() as tx:
        rows = tx.conn.execute(select(schema.push_outbox.c.payload)).scalars().all()
    assert len(rows) == 1
    payload = orjson.loads(rows[0])
    assert payload["callee"] == ANSWERS and payload["terminationCode"] == "200"
    assert isinstance(payload["callTime"], int) and payload["callDuration"] == 65


def test_do_not_call_api_and_numbers_listed_after_submission_are_not_dialed(rig: Rig) -> None:
    add = "/v3/voice/dnc/add"
    task_id = rig.send()
    resp = post(rig.api, rig.account, rig.clock, add, {"numbers": [f"+{BUSY}"], "reason": "asked"})
    assert resp == {"status": "0", "reason": "success", "data": {"added": 1}}
    assert post(rig.api, rig.account, rig.clock, add, {"numbers": ["12ab"]})["status"] == "-21"
    assert post(rig.api, rig.account, rig.clock, add, {"numbers": "x"})["status"] == "-22"
    page = post(rig.api, rig.account, rig.clock, "/v3/voice/dnc/query", {})["data"]
    assert page["total"] == 1 and page["records"][0]["number"] == BUSY
    assert page["records"][0]["reason"] == "asked"
    other = make_account(rig.store, rig.clock, name="other")
    assert post(rig.api, other, rig.clock, "/v3/voice/dnc/query", {})["data"]["total"] == 0
    rig.dial()
    records = {r["callee"]: r for r in _records(rig, taskId=task_id)["data"]["records"]}
    assert records[BUSY]["outcome"] == "blocked" and records[BUSY]["callTime"] is None
    detail = get(rig.api, rig.account, rig.clock, f"/v3/voice/group/call/detail/{task_id}")
    assert detail["data"]["blockedCnt"] == 1 and detail["data"]["callNum"] == 2
    assert detail["data"]["rate"] == "100" and detail["data"]["status"] == 2
    removed = post(rig.api, rig.account, rig.clock, "/v3/voice/dnc/remove", {"numbers": [BUSY]})
    assert removed["data"] == {"removed": 1}


def test_a_number_whose_zones_never_share_a_window_is_recorded_not_dialed(rig: Rig) -> None:
    toll_free = "18005550100"  # phonenumbers places it in every North American zone
    body = send_body(
        rig.account,
        rig.script_id,
        numberInfoList=[{"calleeNumber": toll_free, "text1": "x"}],
        windowZone="callee",
        allowSendTime=[{"strTime": "09:00", "endTime": "10:00"}],
    )
    task_id = post(rig.api, rig.account, rig.clock, "/v3/voice/group/call/send/ai", body)["data"]
    rig.dial()
    records = _records(rig, taskId=task_id)["data"]["records"]
    assert [(r["outcome"], r["terminationCode"], r["callTime"]) for r in records] == [
        ("no_window", "0", None)
    ]
    detail = get(rig.api, rig.account, rig.clock, f"/v3/voice/group/call/detail/{task_id}")
    assert detail["data"]["status"] == 2 and detail["data"]["blockedCnt"] == 1


class _OptOut:
    """A conversation whose callee asks never to be called again."""

    async def run(self, call: Any, request: Any) -> Any:
        from outdial.domain.conversation import ConversationOutcome

        await call.say("Hello")
        return ConversationOutcome(intent="opt_out")


def test_an_opt_out_adds_the_callee_to_the_do_not_call_list(rig: Rig) -> None:
    rig.send()
    carrier = ScriptedCarrier(rig.clock, default=Scripted(Outcome.CONNECTED, ring=1, talk=30))
    dialer = Dialer(
        rig.store, carrier, rig.clock, DialerConfig(worker_id="t"), conversation=_OptOut()
    )
    rig.loop.run_until_complete(dialer.drain())
    page = post(rig.api, rig.account, rig.clock, "/v3/voice/dnc/query", {"size": 10})["data"]
    assert sorted(r["number"] for r in page["records"]) == sorted([ANSWERS, BUSY, SILENT])
    assert {r["reason"] for r in page["records"]} == {"opt-out"}
    records = _records(rig)["data"]["records"]
    assert {r["intent"] for r in records} == {"opt_out"}


def test_task_watch_and_calls_commands(rig: Rig, fresh_db_url: str, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from outdial.cli.main import app

    task_id = rig.send()
    rig.dial()
    monkeypatch.setenv("OUTDIAL_DATABASE_URL", fresh_db_url)
    runner = CliRunner()
    watched = runner.invoke(app, ["task", "watch", str(task_id), "--interval", "0.01"])
    assert watched.exit_code == 0, watched.stderr
    summary = orjson.loads(watched.stdout.strip().splitlines()[-1])
    assert summary == {
        "taskId": task_id,
        "status": 2,
        "numCnt": 3,
        "callNum": 3,
        "success": 1,
        "fail": 2,
    }
    as_csv = runner.invoke(app, ["task", "calls", str(task_id), "--csv"])
    lines = as_csv.stdout.strip().splitlines()
    assert lines[0].startswith("voiceId,taskId,attempt,callee")
    assert len(lines) == 4 and any(",connected,200," in line for line in lines)
    as_json = runner.invoke(app, ["task", "calls", str(task_id)])
    rows = [orjson.loads(line) for line in as_json.stdout.strip().splitlines()]
    assert {r["callee"] for r in rows} == {ANSWERS, BUSY, SILENT}
    missing = runner.invoke(app, ["task", "watch", "999999"])
    assert missing.exit_code == 1


def test_simulator_profile_file(tmp_path: Any) -> None:
    from outdial.dialer.runner import load_sim_profile
    from outdial.errors import OutdialError
    from outdial.telephony.sim import SimProfile
    from tests.helpers import EXAMPLES

    profile = SimProfile(**load_sim_profile(str(EXAMPLES / "sim-profile.yaml")))
    assert profile.answer == 0.8 and profile.ring_seconds == (2.0, 12.0)
    assert profile.personas[2] == ("who is this",)
    bad = tmp_path / "bad.yaml"
    bad.write_text("answr: 1\n")
    with pytest.raises(OutdialError, match="answr"):
        load_sim_profile(str(bad))


def test_template_conversations_fill_intent_grade_transcript_and_sms(rig: Rig) -> None:
    reminder = import_example(rig.store, rig.clock, rig.account, "appointment-reminder.yaml")
    numbers = [
        {"calleeNumber": f"1415555{i:04d}", "text1": "Sam", "text2": "Friday"} for i in range(40)
    ]
    body = send_body(
        rig.account,
        reminder,
        numberInfoList=numbers,
        allowSendTime=[],
        maxCalls=300,
        taskName="with the engine",
    )
    task_id = post(rig.api, rig.account, rig.clock, "/v3/voice/group/call/send/ai", body)["data"]
    profile = SimProfile(
        answer=1,
        busy=0,
        no_answer=0,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        talk_seconds=(200, 200),
    )
    dialer = Dialer(
        rig.store, SimCarrier(rig.clock, profile), rig.clock, DialerConfig(worker_id="t")
    )
    rig.loop.run_until_complete(dialer.drain())
    records = _records(rig, taskId=task_id)["data"]["records"]
    assert len(records) == 40
    by_intent: dict[str | None, list[dict[str, Any]]] = {}
    for r in records:
        by_intent.setdefault(r["intent"], []).append(r)
    confirmed = by_intent["confirm"]
    assert all(r["grade"] == "A" and r["smsText"].startswith("Hi Sam") for r in confirmed)
    assert all(r["path"] == ["remind", "confirmed"] for r in confirmed)
    declined = by_intent["decline"]  # the simulator's "no" persona
    assert all(r["grade"] == "C" and r["smsText"] is None for r in declined)
    assert all(r["path"] == ["remind", "reschedule"] for r in declined)
    asked = by_intent["who_is_this"]
    assert all(r["path"][:2] == ["remind", "identify"] for r in asked)
    assert all(r["transcript"][0]["text"].startswith("Hello Sam") for r in records)
    with rig.store.read() as tx:
        from sqlalchemy import select

        from outdial.store import schema

        payloads = tx.conn.execute(select(schema.push_outbox.c.payload)).scalars().all()
    assert payloads == []  # this app has no push URL: nothing is queued

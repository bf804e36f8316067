"""Console test data: two accounts, a calling campaign with finished calls (transcripts and a
recording) submitted through the API, and console users."""

from __future__ import annotations

import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from outdial.clock import Clock, epoch_ms
from outdial.service.operators import ACCOUNT_USER, ADMIN, OperatorService
from outdial.store import schema
from outdial.store.repo import Store
from outdial.testing import TestAccount, make_account
from tests.helpers import SEND, import_example, post, send_body

PASSWORD = "correct horse battery"


@dataclass
class Seeded:
    acme: TestAccount
    other: TestAccount
    task_id: int
    other_task_id: int
    call_ids: list[int]
    recorded_call: int
    other_call: int
    admin: str
    user: str


def _wav(path: Path, seconds: float = 1.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        frames = int(8000 * seconds)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                for i in range(frames)
            )
        )


# The walks of answered calls through appointment-reminder.yaml, taken in turn, with who
# hung up: the template funnel's tests count on them.
WALKS = [
    (["remind", "confirmed"], "bot"),
    (["remind", "identify", "confirmed"], "bot"),
    (["remind"], "callee"),
    (["remind", "reschedule"], "callee"),
    (["remind", "goodbye"], "limit"),
]


def _task(
    api: TestClient,
    store: Store,
    clock: Clock,
    acc: TestAccount,
    name: str,
    n: int,
    template: str = "simple-notice.yaml",
) -> int:
    script = import_example(store, clock, acc, template)
    numbers = [
        {"calleeNumber": f"4479009{i:05d}", "text1": "Alex", "text2": "Monday"} for i in range(n)
    ]
    body = send_body(
        acc, script, taskName=name, numberInfoList=numbers, sendTime=..., allowSendTime=...
    )
    out = post(api, acc, clock, SEND, body)
    assert out["status"] == "0", out
    return int(out["data"]["taskId"] if isinstance(out["data"], dict) else out["data"])


def add_calls(
    store: Store, clock: Clock, acc: TestAccount, task_id: int, n: int, recordings: Path | None
) -> list[int]:
    """Finished call records for the first ``n`` callees (every third fails; the answered
    ones walk WALKS in turn)."""
    now = epoch_ms(clock.now())
    ids = []
    with store.write() as tx:
        callees = tx.conn.execute(
            schema.callees.select().where(schema.callees.c.task_id == task_id).limit(n)
        ).mappings()
        answered = 0
        for i, callee in enumerate(list(callees)):
            ok = i % 3 != 2
            walk, side = WALKS[answered % len(WALKS)] if ok else (None, "system")
            answered += ok
            transcript = [
                {"speaker": "bot", "text": "Hello Alex, this is a reminder.", "at": 0.2},
                {"speaker": "callee", "text": "yes thanks", "at": 0.9},
                {"speaker": "bot", "text": "Goodbye.", "at": 1.2},
            ]
            rec = f"rec{task_id}x{i}" if (ok and recordings is not None and i == 0) else None
            if rec and recordings is not None:
                _wav(recordings / f"{rec}.wav")
            row = tx.conn.execute(
                insert(schema.calls).values(
                    account_id=acc.account_id,
                    task_id=task_id,
                    callee_id=callee["id"],
                    attempt=1,
                    callee=callee["number"],
                    display_num="100",
                    script_id=0,
                    outcome="connected" if ok else "busy",
                    submit_time=now - 60000,
                    call_time=now - 50000,
                    answer_time=now - 45000 if ok else None,
                    hangup_time=now - 40000,
                    call_duration=5 if ok else 0,
                    ring_duration=5,
                    charged_duration=60 if ok else 0,
                    cost=200 if ok else 0,
                    currency="USD",
                    termination_code=0 if ok else 1,
                    termination_reason="ok" if ok else "busy",
                    sip_code=200 if ok else 486,
                    intent="yes" if ok else None,
                    grade="A" if ok else None,
                    transcript=orjson.dumps(transcript).decode() if ok else None,
                    hangup_side=side,
                    path=orjson.dumps(walk).decode() if walk else None,
                    recording_file_id=rec,
                    created_at=now - 40000 + i,
                )
            )
            ids.append(int(row.inserted_primary_key[0]))
            tx.conn.execute(
                update(schema.callees)
                .where(schema.callees.c.id == callee["id"])
                .values(state=schema.CALLEE_CONNECTED if ok else schema.CALLEE_FAILED, attempts=1)
            )
        ok_n = sum(1 for i in range(len(ids)) if i % 3 != 2)
        tx.conn.execute(
            update(schema.tasks)
            .where(schema.tasks.c.id == task_id)
            .values(
                status=1,
                call_num=schema.tasks.c.call_num + len(ids),
                success=schema.tasks.c.success + ok_n,
                fail=schema.tasks.c.fail + len(ids) - ok_n,
            )
        )
    return ids


def seed(api: TestClient, store: Store, clock: Clock, recordings: Path, tag: str) -> Seeded:
    acme = make_account(store, clock, name=f"Acme {tag}")
    other = make_account(store, clock, name=f"Other {tag}")
    task_id = _task(api, store, clock, acme, f"spring-{tag}", 12, "appointment-reminder.yaml")
    other_task = _task(api, store, clock, other, f"secret-{tag}", 3)
    call_ids = add_calls(store, clock, acme, task_id, 9, recordings)
    other_calls = add_calls(store, clock, other, other_task, 1, None)
    ops = OperatorService(store, clock)
    ops.add(f"admin-{tag}", PASSWORD, ADMIN, None)
    ops.add(f"acme-{tag}", PASSWORD, ACCOUNT_USER, acme.account_id)
    return Seeded(
        acme, other, task_id, other_task, call_ids, call_ids[0], other_calls[0],
        f"admin-{tag}", f"acme-{tag}",
    )  # fmt: skip

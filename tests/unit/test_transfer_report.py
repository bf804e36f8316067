"""A transfer's target and result reach the push report (domain/report.py)."""

from __future__ import annotations

from outdial.domain.report import push_payload

RECORD = {
    "task_id": "t1", "callee": "15551230000", "display_num": "1555", "submit_time": "x",
    "call_duration": 12, "ring_duration": 3, "charged_duration": 60, "termination_code": 200,
    "termination_reason": "connected", "sip_code": 200, "script_id": 1, "attempt": 1,
    "outcome": "connected",
}  # fmt: skip


def test_push_report_carries_the_transfer() -> None:
    got = push_payload(7, {**RECORD, "transfer_to": "15550001111", "transfer_result": "failed 486"})
    assert got["transferTo"] == "15550001111" and got["transferResult"] == "failed 486"


def test_push_report_without_a_transfer_has_nulls() -> None:
    got = push_payload(7, RECORD)
    assert got["transferTo"] is None and got["transferResult"] is None

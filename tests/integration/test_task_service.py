"""The task actions as the console and the CLI call them: typed values, the API's codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from outdial.config import Settings
from outdial.domain.codes import TaskStatus
from outdial.domain.task import TaskFields
from outdial.errors import (
    Conflict,
    DataCaps,
    NotFound,
    ParameterError,
    TaskNotOperable,
    ValidationError,
)
from outdial.service.container import Services
from outdial.service.paging import Page
from outdial.service.recall import RecallQuery, Resend
from outdial.service.records import RecordQuery
from outdial.service.submit import Idempotency, RecallPlan, TaskSubmission
from outdial.service.tasks import TaskChanges, TaskQuery
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount
from tests.helpers import SEND, import_example, post, send_body


@pytest.fixture
def services(store: Store, clock: FakeClock, settings: Settings) -> Services:
    return Services.build(settings, store, clock)


def _task(api: TestClient, store: Store, clock: FakeClock, account: TestAccount) -> int:
    script_id = import_example(store, clock, account, "simple-notice.yaml")
    resp = post(api, account, clock, SEND, send_body(account, script_id))
    assert resp["status"] == "0", resp
    return int(resp["data"])


def _status(store: Store, account: TestAccount, task_id: int) -> int:
    with store.read() as tx:
        task = tx.task(account.account_id, task_id)
    assert task is not None
    return task.status


def test_update_replaces_only_the_given_fields(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, services: Services
) -> None:
    task_id = _task(api, store, clock, account)
    services.tasks.update(
        account.account_id, task_id, TaskChanges(task_name="typed", send_time=None)
    )
    with store.read() as tx:
        task = tx.task(account.account_id, task_id)
    assert task is not None and task.task_name == "typed" and task.send_at is None
    assert task.max_calls == 40  # kept
    with pytest.raises(NotFound):
        services.tasks.update(account.account_id, 999999, TaskChanges(task_name="x"))
    with pytest.raises(ValidationError):
        services.tasks.update(account.account_id, task_id, TaskChanges(max_calls=0))


def test_pause_resume_cancel_take_task_ids(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, services: Services
) -> None:
    task_id = _task(api, store, clock, account)
    services.tasks.pause(account.account_id, [task_id])
    assert _status(store, account, task_id) == TaskStatus.SUSPENDED
    services.tasks.resume(account.account_id, [task_id, task_id])
    assert _status(store, account, task_id) == TaskStatus.WAITING
    with pytest.raises(TaskNotOperable):
        services.tasks.resume(account.account_id, [task_id])
    with pytest.raises(ValidationError):
        services.tasks.cancel(account.account_id, [])
    with pytest.raises(DataCaps):
        services.tasks.cancel(account.account_id, list(range(1, 102)))
    services.tasks.cancel(account.account_id, [task_id])
    assert _status(store, account, task_id) == TaskStatus.CANCELLED


def test_query_takes_a_typed_query_with_wall_clock_times(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, services: Services
) -> None:
    task_id = _task(api, store, clock, account)
    created = datetime(2026, 6, 1, 12, 0, 0)  # the fake clock's start, in the account's UTC
    every = services.tasks.query(account.account_id, TaskQuery())
    assert (every.total, every.page) == (1, Page(1, 10))
    assert [v.task.id for v in every.items] == [task_id]
    # created_to takes in its whole second; created_from starts on it.
    same = TaskQuery(created_from=created, created_to=created)
    assert services.tasks.query(account.account_id, same).total == 1
    later = TaskQuery(created_from=created + timedelta(seconds=1))
    assert services.tasks.query(account.account_id, later).total == 0
    assert services.tasks.query(account.account_id, TaskQuery(statuses=(2,))).total == 0


def test_record_query_checks_the_range(account: TestAccount, services: Services) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="before"):
        services.records.query(account.account_id, RecordQuery(start, start - timedelta(1)))
    with pytest.raises(ValidationError, match="31 days"):
        services.records.query(account.account_id, RecordQuery(start, start + timedelta(32)))
    with pytest.raises(ValidationError, match="offset"):
        services.records.query(account.account_id, RecordQuery(start.replace(tzinfo=None), start))
    assert services.records.query(account.account_id, RecordQuery(start, start)).total == 0


def test_resend_and_recall_flows_take_typed_values(
    api: TestClient, store: Store, clock: FakeClock, account: TestAccount, services: Services
) -> None:
    task_id = _task(api, store, clock, account)
    with store.read() as tx:
        parent = tx.task(account.account_id, task_id)
    assert parent is not None
    with store.write() as tx:
        tx.update_task(task_id, status=int(TaskStatus.FINISHED))
    fields = TaskFields(task_name="typed resend", max_calls=0, script_id=parent.script_id)
    again = Resend(task_id, failed_only=False, fields=fields, original_max_calls=True)
    child_id = services.recalls.resend(account.account_id, again)
    with store.read() as tx:
        child = tx.task(account.account_id, child_id)
    assert child is not None and child.max_calls == parent.max_calls == 40
    flows = services.recalls.query_page(account.account_id, RecallQuery())
    assert (flows.total, flows.items) == (0, [])
    with pytest.raises(NotFound):
        services.recalls.detail(account.account_id, 999999)
    with pytest.raises(ValidationError, match="recallNum"):
        services.recalls.update(account.account_id, 999999, RecallPlan(0, 60, 11))
    with pytest.raises(TaskNotOperable):
        services.recalls.cancel(account.account_id, task_id, by_task=True)


def test_submit_takes_a_typed_submission_and_replays_by_key(
    store: Store, clock: FakeClock, account: TestAccount, services: Services
) -> None:
    script_id = import_example(store, clock, account, "simple-notice.yaml")
    req = TaskSubmission(
        app_id=account.app_id,
        fields=TaskFields(task_name="typed submit", max_calls=40, script_id=script_id),
        callees=[
            {"calleeNumber": n, "text1": "Li"}
            for n in ("8613800000001", "8613800000002", "8613800000001")
        ],
        recall=RecallPlan(1, 30, 2),
    )
    key = Idempotency.of(" order-1 ", b"the request")
    task_id = services.submit.submit(account.account_id, req, key)
    with store.read() as tx:
        task = tx.task(account.account_id, task_id)
    assert task is not None and (task.num_cnt, task.submitted_cnt) == (2, 3)
    assert services.submit.replayed(account.account_id, key) == task_id
    assert services.submit.submit(account.account_id, req, key) == task_id
    with pytest.raises(Conflict):
        services.submit.replayed(account.account_id, Idempotency.of("order-1", b"another"))
    with pytest.raises(ParameterError):
        Idempotency.of("  ", b"")
    with pytest.raises(ValidationError, match="recallNum"):
        services.submit.submit(account.account_id, replace(req, recall=RecallPlan(0, 30, 0)))

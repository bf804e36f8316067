"""Operator commands: account list/credit, task list/show/cancel/pause/resume, the audit log,
how the CLI finds its database, and ``task watch`` without a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from outdial.api.bodies import task_submission
from outdial.cli.main import app
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount, make_account
from tests.helpers import import_example, send_body


@pytest.fixture
def shop(store: Store) -> Iterator[tuple[TestAccount, int]]:
    clock = FakeClock()
    account = make_account(store, clock, name="shop", balance="5")
    yield account, import_example(store, clock, account, "simple-notice.yaml")


def _submit(store: Store, account: TestAccount, script_id: int, name: str, **fields: Any) -> int:
    fields.setdefault("allowSendTime", [])
    fields.setdefault("sendTime", ...)
    body = send_body(
        account,
        script_id,
        taskName=name,
        numberInfoList=[{"calleeNumber": "14155550101", "text1": "Li"}],
        **fields,
    )
    # Submitted at the real time: the CLI reads the system clock when it explains a wait.
    return SubmitService(store, FakeClock(datetime.now(UTC)), SubmitPolicy()).submit(
        account.account_id, task_submission(orjson.dumps(body))
    )


def test_account_list_and_credit_with_reason(cli: Any, shop: tuple[TestAccount, int]) -> None:
    account, _script = shop
    acc = str(account.account_id)
    # The shared test database holds other tests' accounts too: page until this one shows.
    mine: list[dict[str, Any]] = []
    for page in range(1, 1000):
        listed = cli("account", "list", "--size", "100", "--page", str(page))
        mine = [a for a in listed["records"] if a["accountId"] == account.account_id]
        if mine or not listed["records"]:
            break
    assert mine and mine[0]["balance"] == "5.0000" and mine[0]["name"] == "shop"
    out = cli("account", "credit", acc, "12.5", "--reason", "invoice 2026-117")
    assert out["credited"] == "12.5000" and out["balance"] == "17.5000"
    assert cli("account", "show", acc)["balance"] == "17.5000"
    entry = cli("audit", "--account", acc)["records"][0]
    assert entry["action"] == "account.credit" and entry["actor"].startswith("cli:")
    assert entry["detail"] == {
        "amount": "12.5000",
        "balance": "17.5000",
        "currency": "USD",
        "reason": "invoice 2026-117",
    }
    assert cli("account", "credit", acc, "0", "--reason", "x", ok=False)["code"] == -21
    assert cli("account", "credit", acc, "abc", "--reason", "x", ok=False)["code"] == -21
    assert cli("account", "credit", acc, "1", "--reason", " ", ok=False)["code"] == -21
    assert cli("account", "credit", "987654", "1", "--reason", "x", ok=False)["code"] == -24
    # --reason is required: a top-up without one is refused before anything changes.
    result = CliRunner().invoke(app, ["account", "credit", acc, "1"])
    assert result.exit_code == 2 and "--reason" in result.stderr
    assert cli("account", "show", acc)["balance"] == "17.5000"


def test_task_list_show_pause_resume_cancel(
    cli: Any, store: Store, shop: tuple[TestAccount, int]
) -> None:
    account, script = shop
    first = _submit(store, account, script, "first")
    start = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d 09:00:00")
    later = _submit(store, account, script, "later", sendTime=start)
    listed = cli("task", "list", "--account", str(account.account_id))
    assert [t["taskId"] for t in listed["records"]] == [later, first]
    assert cli("task", "list", "--account", str(account.account_id), "--status", "4")["total"] == 0

    shown = cli("task", "show", str(later))
    assert shown["accountId"] == account.account_id and shown["taskName"] == "later"
    assert [r["code"] for r in shown["waiting"]] == ["not_started"]
    assert start[:10] in shown["waiting"][0]["message"]
    now = cli("task", "show", str(first))
    assert [r["code"] for r in now["waiting"]] == ["not_claimed"]
    assert now["pending"] == 1 and now["lines"] == 10 and now["linesInUse"] == 0

    assert cli("task", "pause", str(first), str(later))["tasks"] == {
        str(first): 5,
        str(later): 5,
    }
    assert [r["code"] for r in cli("task", "show", str(first))["waiting"]] == ["paused"]
    assert cli("task", "resume", str(first))["tasks"] == {str(first): 0}
    assert cli("task", "cancel", str(first), str(later))["tasks"] == {
        str(first): 4,
        str(later): 4,
    }
    assert cli("task", "show", str(first))["waiting"] == []
    # All or none: a cancelled task cannot be paused, and nothing changes.
    err = cli("task", "pause", str(first), ok=False)
    assert err["code"] == -54 and "status 4" in err["error"]
    assert cli("task", "show", "987654321", ok=False)["code"] == -24
    assert cli("task", "cancel", "987654321", ok=False)["code"] == -54
    actions = [e["action"] for e in cli("audit", "--account", str(account.account_id))["records"]]
    assert actions[:3] == ["task.cancel", "task.resume", "task.pause"]


def test_watch_without_a_terminal_prints_plain_lines(
    cli: Any, store: Store, shop: tuple[TestAccount, int]
) -> None:
    account, script = shop
    task = _submit(store, account, script, "watched")
    cli("task", "cancel", str(task))
    result = CliRunner().invoke(app, ["task", "watch", str(task), "--interval", "0.01"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"task {task} status 4 done 0/1 calls 0 connected 0 failed 0"
    ]
    assert json.loads(result.stdout)["status"] == 4


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def test_missing_database_is_an_error_not_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run("task", "show", "2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    err = json.loads(result.stderr)
    assert err["error"].startswith(f"no database at {tmp_path / 'outdial.db'}")
    assert not (tmp_path / "outdial.db").exists()
    # An existing file without outdial's schema (say, a wrong path) is refused too.
    (tmp_path / "empty.db").write_bytes(b"")
    result = _run("--database", f"sqlite:///{tmp_path / 'empty.db'}", "account", "list")
    assert result.exit_code == 1 and "holds no outdial schema" in json.loads(result.stderr)["error"]
    # The flag wins over the environment; creating commands may create the database.
    monkeypatch.setenv("OUTDIAL_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    flag = f"sqlite:///{tmp_path / 'flag.db'}"
    made = _run("--database", flag, "account", "create", "--name", "a")
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "flag.db").is_file() and not (tmp_path / "env.db").exists()
    listed = _run("--database", flag, "account", "list")
    assert json.loads(listed.stdout)["total"] == 1
    # A PostgreSQL server that cannot be reached: one line, no traceback.
    down = _run("--database", "postgresql+psycopg://postgres@127.0.0.1:1/x", "account", "list")
    assert down.exit_code == 1 and "cannot open the database" in json.loads(down.stderr)["error"]


def test_the_serve_dialer_child_uses_the_parents_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from outdial.cli.supervisor import DialerChild

    monkeypatch.setenv("OUTDIAL_DATABASE_URL", "sqlite:///./elsewhere.db")
    env = DialerChild("w", 1.0, "sqlite:////srv/flag.db").child_environment()
    assert (
        env["OUTDIAL_DATABASE_URL"] == "sqlite:////srv/flag.db" and env["OUTDIAL_WORKER_ID"] == "w"
    )

"""``outdial task watch ID`` and ``outdial task calls ID``: following a task from the console."""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from outdial.config import Settings
from outdial.domain.codes import TaskStatus
from outdial.service.records import record_json
from outdial.store.calls import CallFilter
from outdial.store.repo import Store

task_app = typer.Typer(no_args_is_help=True, help="Follow tasks and their calls.")

_FINAL = {TaskStatus.FINISHED, TaskStatus.CANCELLED, TaskStatus.SUBMIT_FAILED}
_CSV_FIELDS = [
    "voiceId",
    "taskId",
    "attempt",
    "callee",
    "displayNum",
    "outcome",
    "terminationCode",
    "terminationReason",
    "callTime",
    "answerTime",
    "hangupTime",
    "ringDuration",
    "callDuration",
    "chargedDuration",
    "billPeriod",
    "rate",
    "cost",
    "currency",
    "hangupSide",
    "intent",
    "grade",
    "feedbackValue",
    "recordingFileId",
]


def _store() -> Store:
    settings = Settings()
    return Store.open(settings.database_url, migrate=settings.auto_migrate)


def _task_row(store: Store, task_id: int) -> Any:
    with store.read() as tx:
        row = tx.task_any(task_id)
    if row is None:
        typer.echo(json.dumps({"error": f"task {task_id} does not exist", "code": -24}), err=True)
        raise typer.Exit(1)
    return row


@task_app.command("watch")
def watch(
    task_id: Annotated[int, typer.Argument(help="task id")],
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 0.5,
) -> None:
    """Show a live progress bar until the task is finished or cancelled."""
    store = _store()
    console = Console(stderr=True)
    try:
        task = _task_row(store, task_id)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            handle = bar.add_task(task.task_name, total=max(task.num_cnt, 1), detail="")
            while True:
                task = _task_row(store, task_id)
                done = task.success + task.fail + task.blocked_cnt
                detail = (
                    f"status {task.status}  calls {task.call_num}  "
                    f"connected {task.success}  failed {task.fail}"
                )
                bar.update(handle, completed=done, detail=detail)
                if task.status in _FINAL:
                    break
                time.sleep(interval)
    finally:
        store.close()
    typer.echo(
        json.dumps(
            {
                "taskId": task.id,
                "status": task.status,
                "numCnt": task.num_cnt,
                "callNum": task.call_num,
                "success": task.success,
                "fail": task.fail,
            }
        )
    )


@task_app.command("calls")
def calls(
    task_id: Annotated[int, typer.Argument(help="task id")],
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON lines")] = False,
) -> None:
    """Print every call record of a task (JSON lines, or CSV with --csv)."""
    store = _store()
    try:
        task = _task_row(store, task_id)
        with store.read() as tx:
            tz = tx.account(task.account_id).timezone  # type: ignore[union-attr]
        writer = None
        if as_csv:
            writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
        offset = 0
        while True:
            with store.read() as tx:
                _total, rows = tx.calls(
                    CallFilter(account_id=task.account_id, task_id=task_id), offset, 1000
                )
            if not rows:
                break
            for row in rows:
                rec = record_json(row, tz)
                if writer is not None:
                    writer.writerow(rec)
                else:
                    typer.echo(json.dumps(rec, ensure_ascii=False))
            offset += len(rows)
    finally:
        store.close()

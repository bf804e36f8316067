"""``outdial task list|show|cancel|pause|resume|watch|calls``: tasks from the console."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from outdial.api import laaffic
from outdial.cli.context import services
from outdial.domain.codes import TaskStatus
from outdial.service.operator import Changed, OperatorService, TaskShow
from outdial.service.paging import Paged
from outdial.service.tasks import TaskView
from outdial.store.repo import Store

task_app = typer.Typer(no_args_is_help=True, help="List, show, change and follow tasks.")

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
    from outdial.cli.main import _settings
    from outdial.cli.main import _store as open_existing

    return open_existing(_settings())


def _operator_service(store: Store) -> OperatorService:
    from outdial.cli.main import _settings

    return services(store, _settings()).operator


def _run(action: Callable[[OperatorService], dict[str, Any]]) -> None:
    from outdial.cli.main import _run as run

    run(lambda store, _s: action(_operator_service(store)))


def _task_row(svc: OperatorService, task_id: int) -> Any:
    row = svc.task(task_id)
    if row is None:
        typer.echo(json.dumps({"error": f"task {task_id} does not exist", "code": -24}), err=True)
        raise typer.Exit(1)
    return row


@task_app.command("list")
def task_list(
    account: Annotated[int | None, typer.Option(help="only this account's tasks")] = None,
    status: Annotated[
        list[int] | None, typer.Option("--status", help="only tasks with this status (repeatable)")
    ] = None,
    page: Annotated[int, typer.Option(help="page number, from 1")] = 1,
    size: Annotated[int, typer.Option(help="tasks per page (at most 100)")] = 100,
) -> None:
    """List tasks, newest first, across accounts (or one account's)."""
    _run(lambda svc: _task_page(svc.tasks(account, tuple(status or ()), page, size)))


@task_app.command("show")
def task_show(task_id: Annotated[int, typer.Argument(help="task id")]) -> None:
    """Show a task's detail and, under ``waiting``, why it is not dialing now."""
    _run(lambda svc: _shown(svc.show(task_id)))


def _task_page(paged: Paged[TaskView]) -> dict[str, Any]:
    # The API's task fields, each with the account it belongs to (this lists every account).
    return laaffic.page_json(
        paged, lambda v: {"accountId": v.task.account_id, **laaffic.task_summary_of(v)}
    )


def _shown(s: TaskShow) -> dict[str, Any]:
    return {
        "accountId": s.view.task.account_id,
        **laaffic.task_detail_of(s.view),
        "pending": s.pending,
        "linesInUse": s.lines_in_use,
        "lines": s.lines,
        "waiting": [r.as_json() for r in s.waiting],
    }


def _changed_json(c: Changed) -> dict[str, Any]:
    return {"action": c.action, "tasks": {str(k): v for k, v in c.statuses.items()}}


def _change(verb: str) -> Callable[[list[int]], None]:
    def command(
        task_ids: Annotated[list[int], typer.Argument(help="task ids")],
    ) -> None:
        _run(lambda svc: _changed_json(svc.change(verb, task_ids)))

    command.__doc__ = {
        "cancel": "Cancel tasks: their pending callees are never called.",
        "pause": "Pause waiting or calling tasks (calls in progress finish).",
        "resume": "Resume paused tasks (refused with -10 while funds are below the minimum).",
    }[verb]
    return command


for _verb in ("cancel", "pause", "resume"):
    task_app.command(_verb)(_change(_verb))


def _reasons(svc: OperatorService, task_id: int) -> str:
    return "; ".join(r.message for r in svc.show(task_id).waiting)


@task_app.command("watch")
def watch(
    task_id: Annotated[int, typer.Argument(help="task id")],
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 0.5,
) -> None:
    """Follow a task until it is finished or cancelled: a progress bar on a terminal, else one
    plain line on standard error whenever the progress changes; then its summary as JSON."""
    store = _store()
    console = Console(stderr=True)
    svc = _operator_service(store)
    try:
        task = _task_row(svc, task_id)
        if console.is_terminal:
            task = _watch_bar(svc, task, console, interval)
        else:
            task = _watch_lines(svc, task, interval)
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


def _line(task: Any, why: str) -> str:
    done = task.success + task.fail + task.blocked_cnt
    text = (
        f"task {task.id} status {task.status} done {done}/{task.num_cnt} calls {task.call_num} "
        f"connected {task.success} failed {task.fail}"
    )
    return f"{text} waiting: {why}" if why else text


def _watch_lines(svc: OperatorService, task: Any, interval: float) -> Any:
    last = None
    while True:
        task = _task_row(svc, task.id)
        line = _line(task, "" if task.status in _FINAL else _reasons(svc, task.id))
        if line != last:
            typer.echo(line, err=True)
            last = line
        if task.status in _FINAL:
            return task
        time.sleep(interval)


def _watch_bar(svc: OperatorService, task: Any, console: Console, interval: float) -> Any:
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
            task = _task_row(svc, task.id)
            done = task.success + task.fail + task.blocked_cnt
            why = "" if task.status in _FINAL else _reasons(svc, task.id)
            detail = (
                f"status {task.status}  calls {task.call_num}  "
                f"connected {task.success}  failed {task.fail}"
            )
            bar.update(handle, completed=done, detail=f"{detail}  {why}" if why else detail)
            if task.status in _FINAL:
                return task
            time.sleep(interval)


@task_app.command("calls")
def calls(
    task_id: Annotated[int, typer.Argument(help="task id")],
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON lines")] = False,
) -> None:
    """Print every call record of a task (JSON lines, or CSV with --csv)."""
    store = _store()
    svc = _operator_service(store)
    try:
        _task_row(svc, task_id)
        writer = None
        if as_csv:
            writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
        for call in svc.task_calls(task_id):
            rec = laaffic.record_json_of(call)
            if writer is not None:
                writer.writerow(rec)
            else:
                typer.echo(json.dumps(rec, ensure_ascii=False))
    finally:
        store.close()

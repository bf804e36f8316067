"""``outdial push``: the push report delivery log, and replaying reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from outdial.config import Settings
from outdial.notify.push import STATUS_CODES, PushLog
from outdial.store.repo import Store

push_app = typer.Typer(no_args_is_help=True, help="Push report delivery.")


def _run(action: Callable[[Store, Settings], dict[str, Any]]) -> None:
    # outdial.cli.main registers this sub-app, so its helpers are imported when a command runs.
    from outdial.cli.main import _run as run

    run(action)


def _log(store: Store) -> PushLog:
    from outdial.cli.main import _clock

    return PushLog(store, _clock(store))


@push_app.command("log")
def push_log(
    account: Annotated[int | None, typer.Option(help="only this account's reports")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"only reports in this state: {'|'.join(STATUS_CODES)}")
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="reports after this id (default: the latest ones)")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many reports (1-1000)")] = 50,
) -> None:
    """List push reports with every delivery try (times in epoch ms; try 0 = a replay)."""
    _run(
        lambda store, _s: _log(store).deliveries(
            account_id=account, status=status, since_id=since, limit=limit
        )
    )


@push_app.command("replay")
def push_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="push report ids to deliver again")
    ] = None,
    account: Annotated[int | None, typer.Option(help="only this account's reports")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="replay every report that was given up")
    ] = False,
) -> None:
    """Deliver reports again now, with a fresh day of retries."""
    _run(lambda store, _s: _log(store).replay(ids or (), account_id=account, failed=failed))

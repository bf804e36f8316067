"""``outdial account list|credit``, ``outdial audit``, ``outdial recording get``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from outdial.api import laaffic
from outdial.cli.context import services
from outdial.config import Settings
from outdial.domain.money import format_units
from outdial.service.operator import AccountRow, AuditEntry, Credited, OperatorService
from outdial.store.repo import Store

recording_app = typer.Typer(no_args_is_help=True, help="Call recordings.")


def _service(store: Store, settings: Settings) -> OperatorService:
    return services(store, settings).operator


def _run(action: Any) -> None:
    from outdial.cli.main import _run as run

    run(lambda store, settings: action(_service(store, settings), settings))


def _account_json(a: AccountRow) -> dict[str, Any]:
    return {
        "accountId": a.account_id,
        "name": a.name,
        "timezone": a.timezone,
        "lines": a.lines,
        "balance": format_units(a.balance),
        "gift": format_units(a.gift),
        "credit": format_units(a.credit),
        "currency": a.currency,
        "unfinishedTasks": a.unfinished_tasks,
    }


def _credited_json(c: Credited) -> dict[str, Any]:
    return {
        "accountId": c.account_id,
        "credited": format_units(c.credited),
        "balance": format_units(c.balance),
        "currency": c.currency,
    }


def _audit_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "accountId": e.account_id,
        "subject": e.subject,
        "detail": e.detail,
    }


def account_list(
    page: Annotated[int, typer.Option(help="page number, from 1")] = 1,
    size: Annotated[int, typer.Option(help="accounts per page (at most 100)")] = 100,
) -> None:
    """List accounts with their balance and unfinished tasks."""
    _run(lambda svc, _s: laaffic.page_json(svc.accounts(page, size), _account_json))


def account_credit(
    account_id: Annotated[int, typer.Argument(help="account id")],
    amount: Annotated[str, typer.Argument(help="amount to add (negative: a correction)")],
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")],
) -> None:
    """Top up an account's balance; the amount and reason go to the audit log."""
    _run(lambda svc, _s: _credited_json(svc.credit(account_id, amount, reason)))


def audit_list(
    account: Annotated[int | None, typer.Option(help="only this account's entries")] = None,
    page: Annotated[int, typer.Option(help="page number, from 1")] = 1,
    size: Annotated[int, typer.Option(help="entries per page (at most 100)")] = 100,
) -> None:
    """Show the operator audit log, newest first."""
    _run(lambda svc, _s: laaffic.page_json(svc.audit_log(account, page, size), _audit_json))


@recording_app.command("get")
def recording_get(
    voice_id: Annotated[int, typer.Argument(help="the call's voiceId")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write the WAV to")],
) -> None:
    """Copy a call's recording (WAV) to a file."""

    def action(svc: OperatorService, settings: Settings) -> dict[str, Any]:
        source = svc.recording_path(voice_id, Path(settings.recordings_dir))
        try:
            shutil.copyfile(source, output)
        except OSError as exc:
            from outdial.cli.main import _fail

            _fail(f"cannot write {output}: {exc.strerror}")
        return {"voiceId": voice_id, "file": str(output), "bytes": output.stat().st_size}

    _run(action)


secrets_app = typer.Typer(no_args_is_help=True, help="Secrets at rest (OUTDIAL_SECRET_KEYS).")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new server key for OUTDIAL_SECRET_KEYS (keep it out of the database's backups)."""
    from outdial.store.secrets import new_key

    typer.echo(json.dumps({"key": new_key()}))


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every API secret and push secret with the first key of OUTDIAL_SECRET_KEYS
    (plain ones too); afterwards the other keys may be removed."""
    _run(lambda svc, _s: svc.rotate_secrets())

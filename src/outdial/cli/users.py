"""``outdial user add | passwd``: operators of the web console."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from outdial.clock import SystemClock
from outdial.config import Settings
from outdial.service.container import Services
from outdial.service.operators import ACCOUNT_USER, ADMIN, OperatorService
from outdial.store.repo import Store

user_app = typer.Typer(no_args_is_help=True, help="Operators of the web console (/console).")


def _users(store: Store, settings: Settings) -> OperatorService:
    # The system clock, not a simulated timeline: sign-in users and their passwords are set
    # in real time.
    return Services.build(settings, store, SystemClock()).console_users


def _password(given: str | None) -> str:
    if given is not None:
        return given
    # Asked for (hidden, twice) so that it stays out of the shell history.
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def add_command(run: Any) -> Any:
    """The ``user add`` command, run through the main CLI's ``_run`` (errors as JSON)."""

    def user_add(
        username: Annotated[str, typer.Argument(help="sign-in name")],
        admin: Annotated[bool, typer.Option("--admin", help="sees every account")] = False,
        account: Annotated[
            int | None, typer.Option(help="the one account this user sees (not with --admin)")
        ] = None,
        password: Annotated[
            str | None, typer.Option(help="password (asked for when not given)")
        ] = None,
    ) -> None:
        """Create a console user: an admin (--admin) or an account user (--account ID)."""
        secret = _password(password)

        def action(store: Store, settings: Settings) -> dict[str, Any]:
            op = _users(store, settings).add(
                username, secret, ADMIN if admin else ACCOUNT_USER, account
            )
            return {"userId": op.id, "username": op.username, "role": op.role,
                    "accountId": op.account_id}  # fmt: skip

        run(action)

    def user_passwd(
        username: Annotated[str, typer.Argument(help="sign-in name")],
        password: Annotated[
            str | None, typer.Option(help="new password (asked for when not given)")
        ] = None,
    ) -> None:
        """Set a console user's password; their open sessions end."""
        secret = _password(password)

        def action(store: Store, settings: Settings) -> dict[str, Any]:
            _users(store, settings).set_password(username, secret)
            return {"username": username, "password": "changed"}

        run(action)

    user_app.command("add")(user_add)
    user_app.command("passwd")(user_passwd)
    return user_app

"""``outdial user add | passwd``: operators of the web console."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from outdial.clock import SystemClock
from outdial.service.operators import ACCOUNT_USER, ADMIN, OperatorService

user_app = typer.Typer(no_args_is_help=True, help="Operators of the web console (/console).")


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

        def action(store: Any, _settings: Any) -> dict[str, Any]:
            op = OperatorService(store, SystemClock()).add(
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

        def action(store: Any, _settings: Any) -> dict[str, Any]:
            OperatorService(store, SystemClock()).set_password(username, secret)
            return {"username": username, "password": "changed"}

        run(action)

    user_app.command("add")(user_add)
    user_app.command("passwd")(user_passwd)
    return user_app

"""``outdial trunk`` (SIP trunks) and ``outdial call test`` (one live call on a trunk)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer

from outdial.clock import SystemClock
from outdial.config import Settings
from outdial.errors import NotFound, ValidationError
from outdial.service.container import Services
from outdial.service.trunks import TrunkSettings
from outdial.store.records import TrunkRecord
from outdial.store.repo import Store

trunk_app = typer.Typer(no_args_is_help=True, help="SIP trunks the dialer calls out on.")
call_app = typer.Typer(no_args_is_help=True, help="Single calls, for checking a trunk.")


def _run(action: Callable[[Services], dict[str, Any]]) -> None:
    from outdial.cli.context import services
    from outdial.cli.main import _run as run

    run(lambda store, settings: action(services(store, settings)))


def shown(trunk: TrunkRecord) -> dict[str, Any]:
    """A trunk as printed: the password is never shown."""
    out = asdict(trunk)
    out["password"] = "***" if trunk.password else None
    out["register"] = bool(trunk.register)
    return out


@trunk_app.command("add")
def trunk_add(
    name: Annotated[str, typer.Argument(help="trunk name (OUTDIAL_SIP_TRUNK picks the default)")],
    host: Annotated[str, typer.Option(help="the provider's SIP host or IP")],
    port: Annotated[int, typer.Option(help="SIP port")] = 5060,
    transport: Annotated[str, typer.Option(help="udp or tcp")] = "udp",
    username: Annotated[str | None, typer.Option(help="digest username")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="OUTDIAL_TRUNK_PASSWORD", help="digest password (or the env var)"),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="host in Request-URI/To (default: host)")
    ] = None,
    caller_id: Annotated[
        str | None, typer.Option(help="fixed caller ID; default: each task's displayNum")
    ] = None,
    dial_prefix: Annotated[str, typer.Option(help="put before every number, e.g. +")] = "",
    cps: Annotated[float | None, typer.Option(help="calls per second cap")] = None,
    max_calls: Annotated[int | None, typer.Option(help="concurrent calls cap")] = None,
    register: Annotated[
        bool, typer.Option(help="workers REGISTER with the trunk (username or caller ID as user)")
    ] = False,
    register_expires: Annotated[int, typer.Option(help="binding lifetime asked, seconds")] = 300,
    transfer: Annotated[
        str, typer.Option(help="template transfers: refer (blind) or bridge (second leg)")
    ] = "refer",
) -> None:
    """Add a SIP trunk, or replace the settings of the trunk with this name."""

    def action(svc: Services) -> dict[str, Any]:
        trunk = svc.trunks.add(
            TrunkSettings(
                name=name, host=host, port=port, transport=transport, username=username,
                password=password, domain=domain, caller_id=caller_id, dial_prefix=dial_prefix,
                cps=cps, max_calls=max_calls, register=register,
                register_expires=register_expires, transfer=transfer,
            )
        )  # fmt: skip
        return {"trunk": shown(trunk)}

    _run(action)


@trunk_app.command("list")
def trunk_list() -> None:
    """List the SIP trunks (passwords hidden)."""

    _run(lambda svc: {"trunks": [shown(t) for t in svc.trunks.list()]})


@trunk_app.command("remove")
def trunk_remove(name: Annotated[str, typer.Argument(help="trunk name")]) -> None:
    """Remove a trunk no account uses."""

    def action(svc: Services) -> dict[str, Any]:
        svc.trunks.remove(name)
        return {"removed": name}

    _run(action)


def set_account_trunk(
    account_id: Annotated[int, typer.Argument(help="account id")],
    trunk: Annotated[
        str | None, typer.Argument(help="trunk name; omit to use the default trunk again")
    ] = None,
) -> None:
    """Send an account's calls out on a trunk (registered as ``account set-trunk``)."""

    def action(svc: Services) -> dict[str, Any]:
        svc.trunks.set_account_trunk(account_id, trunk)
        return {"accountId": account_id, "sipTrunk": trunk}

    _run(action)


@call_app.command("test")
def call_test(
    number: Annotated[str, typer.Argument(help="the number to call (digits, E.164)")],
    script: Annotated[int, typer.Option("--script", help="scriptId of the template to run")],
    account: Annotated[int, typer.Option(help="the account the template belongs to")],
    trunk: Annotated[
        str | None, typer.Option(help="trunk name (default OUTDIAL_SIP_TRUNK)")
    ] = None,
    caller_id: Annotated[str, typer.Option(help="caller ID when the trunk has none")] = "",
    var: Annotated[list[str] | None, typer.Option("--var", help="textN=value (repeatable)")] = None,
    max_ringing: Annotated[float, typer.Option(help="seconds to ring")] = 60,
    max_talk: Annotated[float, typer.Option(help="seconds of talk at most")] = 120,
    record: Annotated[bool, typer.Option(help="record the call")] = False,
) -> None:
    """Place one call now and print the transcript live (a JSON line per turn), then the
    result. For checking a trunk and a template before a campaign."""
    from outdial.cli.main import _fail, _settings, _store
    from outdial.domain.conversation import CallRequest

    settings = _settings()
    store = _store(settings)
    try:
        if not number.lstrip("+").isdigit():
            raise ValidationError(f"{number!r} is not a phone number")
        request = CallRequest(
            callee=number.lstrip("+"), caller_id=caller_id, max_ringing=max_ringing,
            max_talk=max_talk, record=record, variables=_variables(var or []),
        )  # fmt: skip
        template = _template(store, account, script)
        result = asyncio.run(_place(settings, store, trunk, template, request))
    except (NotFound, ValidationError) as exc:
        _fail(exc.message, int(exc.code))
    finally:
        store.close()
    typer.echo(json.dumps({"result": result}, ensure_ascii=False))


def _variables(items: list[str]) -> tuple[str | None, ...]:
    """text1..text10 from ``--var textN=value`` options."""
    values: list[str | None] = [None] * 10
    for item in items:
        key, _, value = item.partition("=")
        if not (key.startswith("text") and key[4:].isdigit() and 1 <= int(key[4:]) <= 10):
            raise ValidationError(f"--var {item!r}: use text1..text10=value")
        values[int(key[4:]) - 1] = value
    return tuple(values)


def _template(store: Store, account: int, script_id: int) -> Any:
    from outdial.script.template import from_json, load

    with store.read() as tx:
        record = tx.script(account, script_id)
    if record is None:
        raise NotFound(f"account {account} has no template {script_id}")
    return load(from_json(record.definition))


async def _place(
    settings: Settings, store: Store, trunk: str | None, template: Any, request: Any
) -> dict[str, Any]:
    from outdial.dialer.sip import sip_carrier
    from outdial.script.engine import TemplateConversation

    def show(turn: Any) -> None:
        line = {"at": turn.at, "speaker": turn.speaker, "text": turn.text}
        typer.echo(json.dumps(line, ensure_ascii=False))

    if trunk:
        settings = settings.model_copy(update={"sip_trunk": trunk})
    carrier = sip_carrier(settings, store, SystemClock(), on_turn=show)
    try:
        result = await carrier.place(request, TemplateConversation(template), asyncio.Event())
    finally:
        carrier.close()
    return {
        "outcome": str(result.outcome),
        "sipCode": result.sip_code,
        "ringSeconds": result.ring_seconds,
        "talkSeconds": result.talk_seconds,
        "hangupSide": result.hangup_side,
        "intent": result.conversation.intent,
        "grade": result.conversation.grade,
        "path": list(result.conversation.path),
        "recording": result.recording,
    }

"""``outdial``: operator commands. Each prints one JSON object on success; on failure it prints
``{"error": ..., "code": ...}`` to standard error and exits 1."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError as PydanticValidationError

from outdial.cli.context import services
from outdial.cli.database import DatabaseUnavailable, open_store, set_database
from outdial.cli.database import settings as database_settings
from outdial.cli.operator import (
    account_credit,
    account_list,
    audit_list,
    recording_app,
    secrets_app,
)
from outdial.cli.push import push_app
from outdial.cli.sim import sim_app
from outdial.cli.sip import call_app, set_account_trunk, trunk_app
from outdial.cli.tasks import task_app
from outdial.cli.users import add_command as user_commands
from outdial.clock import Clock, SystemClock
from outdial.config import Settings
from outdial.errors import OutdialError, ValidationError
from outdial.logs import configure as configure_logging
from outdial.script.template import TemplateProblem
from outdial.service.accounts import AccountService, NewAccount
from outdial.service.container import Services
from outdial.service.rates_csv import RatesFileError
from outdial.store.repo import Store
from outdial.store.secrets import SecretKeyError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
account_app = typer.Typer(no_args_is_help=True, help="Accounts (tenants).")
app_app = typer.Typer(no_args_is_help=True, help="Voice applications (appId).")
key_app = typer.Typer(no_args_is_help=True, help="API keys.")
rates_app = typer.Typer(no_args_is_help=True, help="Rate tables.")
script_app = typer.Typer(no_args_is_help=True, help="AI speech templates.")
dnc_app = typer.Typer(no_args_is_help=True, help="Do-not-call lists.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(task_app, name="task")
app.add_typer(push_app, name="push")
app.add_typer(trunk_app, name="trunk")
account_app.command("set-trunk")(set_account_trunk)
account_app.command("list")(account_list)
account_app.command("credit")(account_credit)
app.command("audit")(audit_list)
app.add_typer(recording_app, name="recording")
app.add_typer(secrets_app, name="secrets")
app.add_typer(call_app, name="call")
app.add_typer(sim_app, name="sim")
for sub, name in (
    (account_app, "account"),
    (app_app, "app"),
    (key_app, "key"),
    (rates_app, "rates"),
    (script_app, "script"),
    (dnc_app, "dnc"),
    (db_app, "db"),
):
    app.add_typer(sub, name=name)


@app.callback()
def _main(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="database URL (else OUTDIAL_DATABASE_URL, ./.env, sqlite:///./outdial.db)",
        ),
    ] = None,
) -> None:
    """Configure logging once, for every command (OUTDIAL_LOG_LEVEL, OUTDIAL_LOG_FORMAT)."""
    set_database(database)
    try:
        settings = _settings()
    except PydanticValidationError as exc:
        _fail(f"invalid configuration: {_config_problems(exc)}")
    configure_logging(settings.log_level, settings.log_format)


def _config_problems(exc: PydanticValidationError) -> str:
    return "; ".join(
        f"OUTDIAL_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
    )


def _emit(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False))


def _fail(message: str, code: int | None = None, **extra: Any) -> NoReturn:
    out: dict[str, Any] = {"error": message}
    if code is not None:
        out["code"] = code
    out.update(extra)
    typer.echo(json.dumps(out, ensure_ascii=False), err=True)
    raise typer.Exit(1)


def _template_problems(exc: TemplateProblem) -> NoReturn:
    _fail(
        "the template has problems",
        int(exc.code),
        problems=[{"path": p, "message": m} for p, m in exc.problems],
    )


def _settings() -> Settings:
    return database_settings()


def _store(settings: Settings, *, create: bool = False) -> Store:
    try:
        return open_store(settings, create=create)
    except DatabaseUnavailable as exc:
        _fail(str(exc))


def _run(action: Callable[[Store, Settings], dict[str, Any]], *, create: bool = False) -> None:
    settings = _settings()
    store = _store(settings, create=create)
    try:
        _emit(action(store, settings))
    except TemplateProblem as exc:
        _template_problems(exc)
    except RatesFileError as exc:
        _fail(exc.message, int(exc.code), line=exc.line)
    except OutdialError as exc:
        _fail(exc.message, int(exc.code))
    except SecretKeyError as exc:
        _fail(str(exc))
    finally:
        store.close()


def _clock(store: Store) -> Clock:
    """The clock commands stamp times with: the database's simulated timeline, if it has one."""
    from outdial.dialer.timeline import shared_clock

    return shared_clock(_settings(), store)


def _accounts(store: Store) -> AccountService:
    return services(store, _settings()).accounts


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="account name")],
    timezone: Annotated[str | None, typer.Option(help="IANA zone for zone-less times")] = None,
    ip_allow: Annotated[
        list[str] | None, typer.Option("--ip-allow", help="allowed caller CIDR (repeatable)")
    ] = None,
    lines: Annotated[int | None, typer.Option(help="concurrent calls the account may hold")] = None,
    max_tasks: Annotated[int | None, typer.Option(help="limit of unfinished tasks")] = None,
    balance: Annotated[str, typer.Option(help="opening balance")] = "0",
    credit: Annotated[str, typer.Option(help="credit allowed below zero")] = "0",
    currency: Annotated[str, typer.Option(help="ISO currency of the balance")] = "USD",
    push_url: Annotated[str | None, typer.Option(help="push URL of the first app")] = None,
    default_rates: Annotated[
        bool, typer.Option(help="start with the bundled default rate card")
    ] = True,
) -> None:
    """Create an account with its first voice app and API key."""

    def action(store: Store, settings: Settings) -> dict[str, Any]:
        return _accounts(store).create_account(
            NewAccount(
                name=name,
                timezone=timezone or settings.default_timezone,
                lines=lines or settings.default_lines,
                max_tasks=max_tasks or settings.default_max_tasks,
                balance=balance,
                credit=credit,
                currency=currency.upper(),
                ip_allow=tuple(ip_allow or ()),
                push_url=push_url,
                with_default_rates=default_rates,
            )
        )

    _run(action, create=True)


@account_app.command("show")
def account_show(account_id: Annotated[int, typer.Argument(help="account id")]) -> None:
    """Show an account (secrets are never shown again)."""
    _run(lambda store, _s: _accounts(store).show(account_id))


@app_app.command("create")
def app_create(
    account: Annotated[int, typer.Option(help="account id")],
    push_url: Annotated[str | None, typer.Option(help="push URL for call reports")] = None,
) -> None:
    """Create another voice app (appId) for an account."""
    _run(lambda store, _s: _accounts(store).create_app(account, push_url))


@key_app.command("create")
def key_create(
    account: Annotated[int, typer.Option(help="account id")],
    ip_allow: Annotated[
        list[str] | None, typer.Option("--ip-allow", help="allowed caller CIDR (repeatable)")
    ] = None,
) -> None:
    """Create another API key and secret for an account."""
    _run(lambda store, _s: _accounts(store).create_key(account, tuple(ip_allow or ())))


@rates_app.command("import")
def rates_import(
    file: Annotated[Path, typer.Argument(help="CSV: prefix,price_per_minute,bill_period,currency")],
    account: Annotated[int, typer.Option(help="account id")],
    replace: Annotated[
        bool, typer.Option(help="replace the whole table instead of adding to it")
    ] = False,
) -> None:
    """Import destination rates; the longest matching prefix prices a call."""
    text = _read(file)
    _run(lambda store, _s: _accounts(store).import_rates(account, text, replace=replace))


@script_app.command("import")
def script_import(
    file: Annotated[Path, typer.Argument(help="template YAML file")],
    account: Annotated[int, typer.Option(help="account id")],
) -> None:
    """Validate and import an AI speech template; prints its scriptId."""
    text = _read(file)

    def action(store: Store, settings: Settings) -> dict[str, Any]:
        return services(store, settings).scripts.import_script(account, text)

    _run(action)


@script_app.command("test")
def script_test(
    file: Annotated[Path, typer.Argument(help="template YAML file")],
    persona: Annotated[
        list[Path], typer.Option("--persona", help="persona YAML file (repeatable)")
    ],
    audio: Annotated[
        bool, typer.Option("--audio", help="talk through TTS -> 8 kHz line -> ASR, not text")
    ] = False,
    callee_voice: Annotated[
        str | None,
        typer.Option(help="TTS voice the personas speak with in --audio mode (flite: kal)"),
    ] = None,
) -> None:
    """Run a template against scripted callers; exit 1 when an expectation fails."""
    import asyncio

    from outdial.script.persona import PersonaProblem, load_persona, run_persona
    from outdial.script.template import load, parse

    try:
        template = load(parse(_read(file)))
        personas = [load_persona(_read(p)) for p in persona]
    except TemplateProblem as exc:
        _template_problems(exc)
    except PersonaProblem as exc:
        _fail(f"a persona file has problems: {exc}", int(exc.code))
    hearing = _hearing(callee_voice) if audio else None
    results = [asyncio.run(run_persona(template, p, hearing)) for p in personas]
    passed = all(r["passed"] for r in results)
    _emit({"template": template.name, "passed": passed, "results": results})
    if not passed:
        raise typer.Exit(1)


def _hearing(callee_voice: str | None) -> Any:
    from outdial.script.audio import Hearing
    from outdial.speech import asr
    from outdial.speech.errors import SpeechUnavailable

    settings = _settings()
    try:
        hearing = Hearing(
            settings.tts_engine,
            asr.asr_from_settings(settings),  # as the SIP carrier builds it
            callee_voice=callee_voice,
            bot_voice=settings.tts_voice,
        )
        hearing.callee()
    except SpeechUnavailable as exc:
        _fail(f"--audio cannot run here: {exc}")
    return hearing


@script_app.command("schema")
def script_schema() -> None:
    """Print the JSON Schema of the template format (as in docs/template.schema.json)."""
    from outdial.script.model import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@dnc_app.command("add")
def dnc_add(
    numbers: Annotated[list[str], typer.Argument(help="numbers to block")],
    account: Annotated[int, typer.Option(help="account id")],
    reason: Annotated[str | None, typer.Option(help="why (kept with the entry)")] = None,
) -> None:
    """Add numbers to an account's do-not-call list."""
    _run(
        lambda store, _s: {
            "accountId": account,
            "added": _accounts(store).add_dnc(account, numbers, reason),
        }
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (serve and every command do this by default)."""
    settings = _settings()
    store = Store.open(settings.database_url, migrate=True)
    store.close()
    _emit({"database": _safe_url(settings.database_url), "schema": "head"})


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[
        int | None, typer.Option(help="listen port; 0 picks a free one, shown in the first line")
    ] = None,
    worker: Annotated[bool, typer.Option(help="also run a dialer worker in this process")] = True,
) -> None:
    """Run the API server (OpenAPI docs at /docs) and, unless --no-worker, a dialer."""
    import uvicorn

    from outdial.api.app import create_app
    from outdial.cli.priority import lower_thread_priority
    from outdial.cli.supervisor import DialerChild
    from outdial.console.app import install as install_console
    from outdial.dialer.timeline import shared_clock
    from outdial.service.console import TallyKeeper

    settings = _settings()
    store = _store(settings, create=True)
    try:
        clock = shared_clock(settings, store, dialing=worker)
    except OutdialError as exc:
        store.close()
        _fail(exc.message)
    shared = Services.build(settings, store, clock)
    api = create_app(settings, store, clock, wall_clock=SystemClock(), services=shared)
    install_console(api, settings, store, clock, services=shared)
    keeper = TallyKeeper(shared.console, settings.console_tally_seconds)
    bind_host = host or settings.host
    # Bound here, before the first line is printed, so that ``--port 0`` can report the port
    # the system chose and a caller never races another process for a port it picked.
    sock = _listen(bind_host, settings.port if port is None else port)
    base = _http_base(bind_host, int(sock.getsockname()[1]))
    typer.echo(
        json.dumps(
            {
                "serving": base,
                "port": int(sock.getsockname()[1]),
                "docs": f"{base}/docs",
                "database": _safe_url(settings.database_url),
            }
        )
    )
    # The dialer runs in a child process of its own (see cli/supervisor.py).
    dialer = (
        DialerChild(settings.worker_id, settings.drain_seconds, settings.database_url)
        if worker
        else None
    )
    if dialer is not None:
        dialer.start()
    keeper.start()
    # uvicorn stops serving on SIGTERM/SIGINT and then raises the signal again under the
    # handlers it found: with Python's defaults SIGTERM would kill the process before the
    # dialer drains. These handlers make the second delivery harmless.
    _quiet_stop_signals()

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # On the thread that serves requests and starts their worker threads, after the
            # dialer child started at the normal priority (see cli/priority.py).
            lower_thread_priority(settings.api_nice)
            await super().startup(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # The dialer stops claiming the moment the signal arrives, not once the HTTP
            # side has finished shutting down (which can take seconds).
            if dialer is not None:
                dialer.request_stop()
            super().handle_exit(sig, frame)

    try:
        config = uvicorn.Config(api, log_level=settings.log_level.lower(), log_config=None)
        _Server(config).run(sockets=[sock])
    finally:
        keeper.stop()
        if dialer is not None:
            dialer.stop()
        store.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror}")


def _http_base(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _quiet_stop_signals() -> threading.Event:
    import signal

    stopping = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stopping


@app.command("worker")
def worker_command() -> None:
    """Run a dialer worker (many may share one PostgreSQL database)."""
    from outdial.dialer.runner import WorkerThread

    settings = _settings()
    store = _store(settings, create=True)
    try:
        dialer = WorkerThread(settings, store)
    except OutdialError as exc:
        store.close()
        _fail(exc.message)
    metrics_url = _worker_metrics(settings, store, dialer)
    stopping = _quiet_stop_signals()
    dialer.start()
    _emit(
        {
            "worker": dialer.dialer.config.worker_id,
            "database": _safe_url(settings.database_url),
            "metrics": metrics_url,
        }
    )
    try:
        stopping.wait()
    finally:
        dialer.stop()
        store.close()


def _worker_metrics(settings: Settings, store: Store, dialer: Any) -> str | None:
    """Serve the worker's metrics on OUTDIAL_METRICS_PORT (unset: none; 0: a free port)."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import CollectorRegistry

    from outdial.dialer.metrics import serve_metrics
    from outdial.service.metrics import OutboxCollector

    registry = CollectorRegistry()
    registry.register(dialer.metrics)
    registry.register(OutboxCollector(store, dialer.clock))
    try:
        server, _thread = serve_metrics(settings.metrics_host, settings.metrics_port, registry)
    except OSError as exc:
        store.close()
        _fail(f"cannot serve metrics on port {settings.metrics_port}: {exc.strerror}")
    return f"{_http_base(settings.metrics_host, int(server.server_port))}/metrics"


@app.command()
def demo(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="run once on a throwaway database, print what it saw, exit (tests, CI)"
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="database to use (default: ./outdial-demo/demo.db; --once: a new temp file)"
        ),
    ] = None,
    folder: Annotated[
        Path, typer.Option("--dir", help="where the kept demo database and recordings live")
    ] = Path("outdial-demo"),
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="listen port (default 8080; 0 picks a free one)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="the console user's password (default: a new one at each start)"),
    ] = None,
) -> None:
    """Run the system end to end and keep it running with the console (Ctrl-C stops it);
    --once runs it once and exits."""
    from outdial.cli.demo import DemoUnavailable, run_demo, serve_demo

    settings = _settings()
    if once:
        _emit(run_demo(settings, database_url))
        return
    if password is not None and len(password) < 10:
        _fail("--password: at least 10 characters", int(ValidationError.code))
    try:
        serve_demo(
            settings,
            lambda s: _store(s, create=True),
            database_url=database_url,
            folder=folder,
            host=host,
            port=settings.port if port is None else port,
            password=password,
        )
    except DemoUnavailable as exc:
        _fail(str(exc))
    except OutdialError as exc:
        _fail(exc.message, int(exc.code))


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    except UnicodeDecodeError as exc:
        _fail(f"{file} is not UTF-8 text (byte {exc.start})", int(ValidationError.code))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


app.add_typer(user_commands(_run), name="user")


def run() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

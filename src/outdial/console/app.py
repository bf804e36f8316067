"""The console's routes: sign-in, overview, campaigns, calls. Server-rendered (Jinja2) with
htmx for the live overview; every asset is served from the package (no CDN).

Every POST carries a CSRF token derived from the session (the sign-in form: from a nonce
cookie); every page checks the session cookie and limits what it reads to the operator's
account (an admin: every account).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from outdial.clock import Clock
from outdial.config import Settings
from outdial.errors import AuthError, NotFound, OutdialError, ValidationError
from outdial.service.console import ACTIONS, RESENDS
from outdial.service.container import Services
from outdial.service.operators import LoginThrottled, Session
from outdial.store.console import CallsQuery
from outdial.store.repo import Store

HERE = Path(__file__).parent
PREFIX = "/console"
SESSION_COOKIE = "od_session"
LOGIN_COOKIE = "od_login"
MAX_FORM_BYTES = 16 * 1024
DONE_MESSAGES = {a: f"Campaign {p}." for a, p in
                 (("pause", "paused"), ("resume", "resumed"), ("cancel", "cancelled"))}  # fmt: skip
DONE_MESSAGES |= {a: "Campaign sent again as a new campaign:" for a in RESENDS}

CALL_FILTERS = ("task", "outcome", "intent", "grade", "number", "min_duration", "from", "to")

templates = Jinja2Templates(directory=str(HERE / "templates"))


class Console:
    """What the console's pages use, taken from the composition root."""

    def __init__(self, services: Services) -> None:
        self.settings = services.settings
        self.operators = services.console_users
        self.service = services.console


def install(
    app: FastAPI,
    settings: Settings,
    store: Store,
    clock: Clock,
    services: Services | None = None,
) -> Console:
    """Mount the console on ``app`` at /console; ``services`` (default: built from the three)
    lets it share the API's."""
    console = Console(services or Services.build(settings, store, clock))
    app.state.console = console
    app.mount(
        f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static"
    )
    app.include_router(router, prefix=PREFIX, include_in_schema=False)
    return console


router = APIRouter()


def _console(request: Request) -> Console:
    c: Console = request.app.state.console
    return c


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _render(
    request: Request, name: str, code: int = 200, session: Session | None = None, **ctx: Any
) -> HTMLResponse:
    c = _console(request)
    csrf = c.operators.csrf_token(session.nonce) if session else ""
    return templates.TemplateResponse(
        request,
        name,
        {"session": session, "csrf": csrf, "prefix": PREFIX, "status_code": code, **ctx},
        status_code=code,
    )


def _problem(request: Request, status: int, message: str, session: Session | None) -> HTMLResponse:
    return _render(request, "error.html", status, session, message=message)


async def _session(request: Request) -> Session:
    c = _console(request)
    s = await run_in_threadpool(c.operators.session, request.cookies.get(SESSION_COOKIE))
    if s is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise _Redirect(f"{PREFIX}/login?next={quote(target)}")
    return s


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationError("the form is too large")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


Page = Callable[[Request, Session], Awaitable[Response]]


async def _guarded(request: Request, page: Page, post: bool = False) -> Response:
    """Sign-in check, CSRF check on POST, and bad input or a foreign id as a clear page."""
    session: Session | None = None
    try:
        session = await _session(request)
        if post:
            form = await _form(request)
            request.state.form = form
            if not _console(request).operators.csrf_ok(session.nonce, form.get("csrf")):
                return _problem(request, 403, "This form has expired: reload the page.", session)
        return await page(request, session)
    except _Redirect as r:
        return RedirectResponse(r.url, status_code=303)
    except NotFound as exc:
        return _problem(request, 404, exc.message, session)
    except (ValidationError, AuthError) as exc:
        return _problem(request, 400, exc.message, session)
    except OutdialError as exc:
        return _problem(request, 409, exc.message, session)


def _int(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    v = value.strip()
    if not v.isascii() or not v.isdigit() or len(v) > 18:
        raise ValidationError(f"{name}: {value!r} is not a whole number")
    return int(v)


def _text(value: str | None, limit: int = 64) -> str | None:
    v = (value or "").strip()
    return v[:limit] or None


def _day(value: str | None, name: str, *, end: bool = False) -> int | None:
    """A YYYY-MM-DD day (UTC) as epoch ms: its start, or with ``end`` the next day's start."""
    v = (value or "").strip()
    if not v:
        return None
    try:
        day = datetime.strptime(v, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc
    return int(((day + timedelta(days=1)) if end else day).timestamp() * 1000)


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return f"{PREFIX}/"


# --- sign-in --------------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, next, None, 200)


def _login_form(request: Request, next: str | None, error: str | None, status: int) -> Response:
    nonce = secrets.token_urlsafe(16)
    resp = _render(
        request,
        "login.html",
        status,
        login_csrf=_console(request).operators.csrf_token(nonce),
        next=_safe_next(next),
        error=error,
    )
    resp.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path=PREFIX,
                    secure=request.url.scheme == "https")  # fmt: skip
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    c = _console(request)
    try:
        form = await _form(request)
    except ValidationError as exc:
        return _login_form(request, None, exc.message, 400)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not c.operators.csrf_ok(nonce, form.get("csrf")):
        return _login_form(request, form.get("next"), "The form expired: sign in again.", 400)
    try:
        op = await run_in_threadpool(
            c.operators.authenticate, form.get("username", "").strip(), form.get("password", "")
        )
    except LoginThrottled as exc:
        return _login_form(request, form.get("next"), exc.message, 429)
    except AuthError as exc:
        return _login_form(request, form.get("next"), exc.message, 401)
    cookie = await run_in_threadpool(c.operators.issue, op)
    resp = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    resp.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="strict", path=PREFIX,
                    secure=request.url.scheme == "https")  # fmt: skip
    resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    async def page(request: Request, session: Session) -> Response:
        await run_in_threadpool(_console(request).operators.end_sessions, session.operator.id)
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return resp

    return await _guarded(request, page, post=True)


# --- overview -------------------------------------------------------------------------------
def _overview_context(request: Request, session: Session) -> dict[str, Any]:
    snap = _console(request).service.overview.get(session.operator.scope)
    return {
        "counts": snap.counts,
        "per_minute": [[m // 1000, n] for m, n in snap.per_minute],
        "lines": snap.lines,
        "zones": snap.zones,
        "at": snap.at,
    }


@router.get("/")
async def overview(request: Request) -> Response:
    async def page(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(_overview_context, request, session)
        return _render(request, "overview.html", 200, session, **ctx)

    return await _guarded(request, page)


@router.get("/overview/live")
async def overview_live(request: Request) -> Response:
    async def page(request: Request, session: Session) -> Response:
        ctx = await run_in_threadpool(_overview_context, request, session)
        return _render(request, "_overview_live.html", 200, session, **ctx)

    return await _guarded(request, page)


# --- campaigns ------------------------------------------------------------------------------
@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    async def page(request: Request, session: Session) -> Response:
        p = request.query_params
        status = _int(p.get("status"), "status")
        search = _text(p.get("q"))
        number = _int(p.get("page"), "page") or 1
        data = await run_in_threadpool(
            _console(request).service.campaigns, session.operator.scope, status, search, number
        )
        return _render(request, "campaigns.html", 200, session, data=data, status=status,
                       q=search or "")  # fmt: skip

    return await _guarded(request, page)


def _task_id(request: Request) -> int:
    value = _int(request.path_params["task_id"], "campaign id")
    if value is None:
        raise NotFound("no campaign id")
    return value


@router.get("/campaigns/{task_id}")
async def campaign(request: Request, task_id: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        data = await run_in_threadpool(
            _console(request).service.campaign, session.operator.scope, _task_id(request)
        )
        done = DONE_MESSAGES.get(request.query_params.get("done", ""))
        # The new campaign of a resend, linked from the message when it is one of the children.
        child = _int(request.query_params.get("child"), "child")
        made = next((c for c in data["children"] if c["id"] == child), None)
        return _render(request, "campaign.html", 200, session, done=done, made=made, **data)

    return await _guarded(request, page)


@router.get("/campaigns/{task_id}/live")
async def campaign_live(request: Request, task_id: str) -> Response:
    """The progress, funnel and breakdowns alone, polled by the campaign page."""

    async def page(request: Request, session: Session) -> Response:
        data = await run_in_threadpool(
            _console(request).service.campaign, session.operator.scope, _task_id(request)
        )
        return _render(request, "_campaign_live.html", 200, session, **data)

    return await _guarded(request, page)


@router.post("/campaigns/{task_id}/{action}")
async def campaign_action(request: Request, task_id: str, action: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        if action not in ACTIONS and action not in RESENDS:
            raise NotFound(f"no action {action!r}")
        tid = _task_id(request)
        svc = _console(request).service
        if request.state.form.get("confirm") != "yes":
            data = await run_in_threadpool(svc.campaign, session.operator.scope, tid)
            return _render(request, "confirm.html", 200, session, action=action, **data)
        if action in RESENDS:
            child = await run_in_threadpool(svc.resend, session.operator.scope, tid, action)
            return RedirectResponse(
                f"{PREFIX}/campaigns/{tid}?done={action}&child={child}", status_code=303
            )
        await run_in_threadpool(svc.act, session.operator.scope, tid, action)
        return RedirectResponse(f"{PREFIX}/campaigns/{tid}?done={action}", status_code=303)

    return await _guarded(request, page, post=True)


@router.get("/campaigns/{task_id}/calls.csv")
async def campaign_csv(request: Request, task_id: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        tid = _task_id(request)
        rows = await run_in_threadpool(
            _console(request).service.export_csv, session.operator.scope, tid
        )
        return StreamingResponse(
            rows,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="campaign-{tid}-calls.csv"'},
        )

    return await _guarded(request, page)


# --- calls ----------------------------------------------------------------------------------
@router.get("/calls")
async def calls(request: Request) -> Response:
    async def page(request: Request, session: Session) -> Response:
        p = request.query_params
        query = CallsQuery(
            account_id=session.operator.scope,
            task_id=_int(p.get("task"), "campaign"),
            outcome=_text(p.get("outcome"), 16),
            intent=_text(p.get("intent")),
            grade=_text(p.get("grade"), 8),
            callee=_text(p.get("number"), 18),
            min_duration=_int(p.get("min_duration"), "minimum duration"),
            ended_from=_day(p.get("from"), "from"),
            ended_before=_day(p.get("to"), "to", end=True),
            before_id=_int(p.get("before"), "page"),
        )
        data = await run_in_threadpool(_console(request).service.calls, query)
        filters = {k: p.get(k, "") for k in CALL_FILTERS}
        next_qs = "&".join(f"{k}={quote(v)}" for k, v in filters.items() if v)
        return _render(request, "calls.html", 200, session, data=data, filters=filters,
                       next_qs=next_qs)  # fmt: skip

    return await _guarded(request, page)


def _call_id(request: Request) -> int:
    value = _int(request.path_params["call_id"], "call id")
    if value is None:
        raise NotFound("no call id")
    return value


@router.get("/calls/{call_id}")
async def call(request: Request, call_id: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        data = await run_in_threadpool(
            _console(request).service.call, session.operator.scope, _call_id(request)
        )
        return _render(request, "call.html", 200, session, **data)

    return await _guarded(request, page)


@router.get("/calls/{call_id}/recording")
async def call_recording(request: Request, call_id: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        c = _console(request)
        name = await run_in_threadpool(
            c.service.recording_name, session.operator.scope, _call_id(request)
        )
        path = Path(c.settings.recordings_dir) / f"{name}.wav"
        if not path.is_file():
            raise NotFound("the recording is not stored")
        # FileResponse answers Range requests (206), so the player can seek.
        return FileResponse(path, media_type="audio/wav")

    return await _guarded(request, page)


# Last: any other console address is a page saying so, not the API's JSON 404.
@router.get("/{rest:path}")
async def unknown_page(request: Request, rest: str) -> Response:
    async def page(request: Request, session: Session) -> Response:
        raise NotFound(f"there is no console page {request.url.path!r}")

    return await _guarded(request, page)

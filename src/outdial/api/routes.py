"""The LAAFFIC AI group-call routes. Handlers only translate HTTP to service calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from outdial.api import docs, laaffic
from outdial.api.auth import Caller
from outdial.api.bodies import (
    KeyIdBody,
    RecallCancelBody,
    RecallFlowUpdateBody,
    RecallQueryBody,
    RecordQueryBody,
    ResendAiBody,
    TaskIdsBody,
    TaskQueryBody,
    UpdateAiBody,
    key_id,
    recall_changes,
    recall_page_query,
    recall_target,
    record_query,
    resend,
    task_changes,
    task_ids,
    task_query,
    task_submission,
)
from outdial.api.deps import caller, services, submit_threads
from outdial.api.envelope import StyleARoute, StyleBRoute, style_a, style_b
from outdial.api.requests import (
    DncBody,
    DncQueryBody,
    SendAiBody,
    load_object,
    validate,
)
from outdial.errors import NotFound, ParameterError
from outdial.service.container import Services
from outdial.service.paging import page
from outdial.service.submit import Idempotency

Authed = Annotated[Caller, Depends(caller)]
Svc = Annotated[Services, Depends(services)]

style_a_router = APIRouter(route_class=StyleARoute)
style_b_router = APIRouter(route_class=StyleBRoute)
A: dict[int | str, dict[str, Any]] = {200: {"model": docs.EnvelopeA}}
B: dict[int | str, dict[str, Any]] = {200: {"model": docs.EnvelopeB}}


@style_a_router.post(
    "/voice/group/call/send/ai",
    summary="Create an AI group-call task",
    openapi_extra=docs.body(SendAiBody),
    responses=A,
    response_model=None,
)
async def send_ai(request: Request, who: Authed, svc: Svc) -> Response:
    """Accept a task and its callees atomically; `data` is the new task id (keyId).

    Extension: an `Idempotency-Key` header makes retries safe: the same key and body answer the
    first task's id again; the same key with another body answers -20.
    """
    body = await request.body()
    key = request.headers.get("idempotency-key")
    idempotency = Idempotency.of(key, body) if key is not None else None
    if idempotency is not None:
        # A retry is answered before its body is read, so it gets the first answer again.
        replay = await run_in_threadpool(svc.submit.replayed, who.account_id, idempotency)
        if replay is not None:
            return style_a(0, data=replay)

    def parse_and_submit() -> int:
        return svc.submit.submit(who.account_id, task_submission(body), idempotency)

    # Off the event loop (a send/ai body may hold 200,000 callees), in one hop: each hop
    # waits for a free worker thread behind the other requests.
    task_id = await anyio.to_thread.run_sync(parse_and_submit, limiter=submit_threads(request))
    return style_a(0, data=task_id)


@style_a_router.post(
    "/voice/group/call/update/ai",
    summary="Change a task that has not started",
    openapi_extra=docs.body(UpdateAiBody),
    responses=A,
    response_model=None,
)
async def update_ai(request: Request, who: Authed, svc: Svc) -> Response:
    task_id, changes = task_changes(await request.body())
    await run_in_threadpool(svc.tasks.update, who.account_id, task_id, changes)
    return style_a(0, data=None)


@style_a_router.post(
    "/voice/group/call/resend/ai",
    summary="A new task from a finished one: every callee (0) or those not connected (1)",
    openapi_extra=docs.body(ResendAiBody),
    responses=A,
    response_model=None,
)
async def resend_ai(request: Request, who: Authed, svc: Svc) -> Response:
    req = resend(await request.body())
    task_id = await run_in_threadpool(svc.recalls.resend, who.account_id, req)
    return style_a(0, data=task_id)


@style_a_router.post(
    "/voice/recallFlow/queryPage",
    summary="Recall flows, paged",
    openapi_extra=docs.body(RecallQueryBody),
    responses=A,
    response_model=None,
)
async def recall_query(request: Request, who: Authed, svc: Svc) -> Response:
    q = recall_page_query(await request.body())
    found = await run_in_threadpool(svc.recalls.query_page, who.account_id, q)
    return style_a(0, data=laaffic.page_json(found, laaffic.flow_json))


@style_a_router.post(
    "/voice/recallFlow/queryDetail",
    summary="One recall flow with its rounds",
    openapi_extra=docs.body(KeyIdBody),
    responses=A,
    response_model=None,
)
async def recall_detail(request: Request, who: Authed, svc: Svc) -> Response:
    flow_id = key_id(await request.body())
    detail = await run_in_threadpool(svc.recalls.detail, who.account_id, flow_id)
    return style_a(0, data=laaffic.flow_detail(detail))


@style_a_router.post(
    "/voice/recallFlow/update",
    summary="Change a recall flow's type, interval or rounds",
    openapi_extra=docs.body(RecallFlowUpdateBody),
    responses=A,
    response_model=None,
)
async def recall_update(request: Request, who: Authed, svc: Svc) -> Response:
    flow_id, plan = recall_changes(await request.body())
    await run_in_threadpool(svc.recalls.update, who.account_id, flow_id, plan)
    return style_a(0, data=None)


@style_a_router.post(
    "/voice/recallFlow/cancel",
    summary="Cancel a recall flow (type 1: by flow id; 2: by original task id)",
    openapi_extra=docs.body(RecallCancelBody),
    responses=A,
    response_model=None,
)
async def recall_cancel(request: Request, who: Authed, svc: Svc) -> Response:
    key, by_task = recall_target(await request.body())
    await run_in_threadpool(svc.recalls.cancel, who.account_id, key, by_task=by_task)
    return style_a(0, data=None)


@style_a_router.post(
    "/voice/dnc/add",
    summary="Extension: add numbers to the account's do-not-call list",
    openapi_extra=docs.body(DncBody),
    responses=A,
    response_model=None,
)
async def dnc_add(request: Request, who: Authed, svc: Svc) -> Response:
    req = validate(DncBody, load_object(await request.body()))
    added = await run_in_threadpool(svc.accounts.add_dnc, who.account_id, req.numbers, req.reason)
    return style_a(0, data={"added": added})


@style_a_router.post(
    "/voice/dnc/remove",
    summary="Extension: remove numbers from the account's do-not-call list",
    openapi_extra=docs.body(DncBody),
    responses=A,
    response_model=None,
)
async def dnc_remove(request: Request, who: Authed, svc: Svc) -> Response:
    req = validate(DncBody, load_object(await request.body()))
    removed = await run_in_threadpool(svc.accounts.remove_dnc, who.account_id, req.numbers)
    return style_a(0, data={"removed": removed})


@style_a_router.post(
    "/voice/dnc/query",
    summary="Extension: the account's do-not-call list, paged",
    openapi_extra=docs.body(DncQueryBody),
    responses=A,
    response_model=None,
)
async def dnc_query(request: Request, who: Authed, svc: Svc) -> Response:
    body = await request.body()
    req = validate(DncQueryBody, load_object(body) if body.strip() else {})
    number = req.number.strip().lstrip("+") if req.number else None
    wanted = page(req.current, req.size)
    entries = await run_in_threadpool(svc.accounts.dnc_page, who.account_id, number, wanted)
    return style_a(0, data=laaffic.page_json(entries, laaffic.dnc_json))


@style_a_router.get(
    "/getBalance",
    summary="Account balance, gift and credit",
    responses={200: {"model": docs.BalanceEnvelope}},
    response_model=None,
)
async def get_balance(request: Request, who: Authed, svc: Svc) -> Response:
    funds = await run_in_threadpool(svc.tasks.balance, who.account_id)
    return style_a(0, None, **laaffic.balance_json(funds))


@style_a_router.post(
    "/voice/recordGroupQuery",
    summary="Call records, paged (ISO-8601 range of at most 31 days)",
    openapi_extra=docs.body(RecordQueryBody),
    responses=A,
    response_model=None,
)
async def record_group_query(request: Request, who: Authed, svc: Svc) -> Response:
    q = record_query(await request.body())
    found = await run_in_threadpool(svc.records.query, who.account_id, q)
    return style_a(0, data=laaffic.page_json(found, laaffic.record_json_of, searchCount=True))


@style_a_router.get(
    "/voice/recordGroup/{voice_id}", summary="One call record", responses=A, response_model=None
)
async def record_group(request: Request, voice_id: str, who: Authed, svc: Svc) -> Response:
    call = await run_in_threadpool(svc.records.one, who.account_id, voice_id)
    return style_a(0, data=laaffic.record_json_of(call))


@style_a_router.get(
    "/voice/recording/{recording_id}",
    summary="Extension: download a call recording (WAV)",
    responses={200: {"content": {"audio/wav": {}}}},
    response_model=None,
)
async def recording(request: Request, recording_id: str, who: Authed, svc: Svc) -> Response:
    name = await run_in_threadpool(svc.records.recording, who.account_id, recording_id)
    path = Path(svc.settings.recordings_dir) / f"{name}.wav"
    if not path.is_file():
        raise NotFound(f"recording {recording_id!r} is not stored")
    return FileResponse(path, media_type="audio/wav", filename=f"{name}.wav")


@style_b_router.post(
    "/voice/group/call/query",
    summary="List the account's tasks (paged)",
    openapi_extra=docs.body(TaskQueryBody),
    responses=B,
    response_model=None,
)
async def query(request: Request, who: Authed, svc: Svc) -> Response:
    q = task_query(await request.body())
    found = await run_in_threadpool(svc.tasks.query, who.account_id, q)
    return style_b(0, data=laaffic.page_json(found, laaffic.task_summary_of))


@style_b_router.get(
    "/voice/group/call/detail/{task_id}",
    summary="One task with counters",
    responses=B,
    response_model=None,
)
async def detail(request: Request, task_id: str, who: Authed, svc: Svc) -> Response:
    if not task_id.isascii() or not task_id.isdigit() or len(task_id) > 18:
        raise ParameterError(f"task id {task_id!r} is not a number")
    view = await run_in_threadpool(svc.tasks.detail, who.account_id, int(task_id))
    return style_b(0, data=laaffic.task_detail_of(view))


@style_b_router.post(
    "/voice/group/call/cancel",
    summary="Cancel tasks (all or none)",
    openapi_extra=docs.body(TaskIdsBody),
    responses=B,
    response_model=None,
)
async def cancel(request: Request, who: Authed, svc: Svc) -> Response:
    ids = task_ids(await request.body())
    await run_in_threadpool(svc.tasks.cancel, who.account_id, ids)
    return style_b(0, data=None)


@style_b_router.post(
    "/voice/group/call/pause",
    summary="Extension: suspend tasks (status 5)",
    openapi_extra=docs.body(TaskIdsBody),
    responses=B,
    response_model=None,
)
async def pause(request: Request, who: Authed, svc: Svc) -> Response:
    ids = task_ids(await request.body())
    await run_in_threadpool(svc.tasks.pause, who.account_id, ids)
    return style_b(0, data=None)


@style_b_router.post(
    "/voice/group/call/resume",
    summary="Extension: resume suspended tasks",
    openapi_extra=docs.body(TaskIdsBody),
    responses=B,
    response_model=None,
)
async def resume(request: Request, who: Authed, svc: Svc) -> Response:
    ids = task_ids(await request.body())
    await run_in_threadpool(svc.tasks.resume, who.account_id, ids)
    return style_b(0, data=None)

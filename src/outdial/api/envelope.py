"""The two LAAFFIC response envelopes and the route classes that always answer with them.

Style A: {"status": "0", "reason": "success", "data": ...} (status is a string).
Style B: {"code": 0, "msg": "success", "data": ...}.
Every error, including a server fault (-18, logged with a correlation id), answers HTTP 200 in
the route's own envelope, as LAAFFIC does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from outdial.domain.codes import REASONS, Code
from outdial.errors import DataCaps, OutdialError, ParameterError

log = logging.getLogger("outdial.api")
CONTENT_TYPE = "application/json;charset=UTF-8"


class LaafficResponse(Response):
    media_type = CONTENT_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def style_a(code: int, reason: str | None = None, data: Any = None, **top: Any) -> Response:
    body: dict[str, Any] = {"status": str(code), "reason": reason or REASONS[Code(code)]}
    if top:
        body.update(top)
    else:
        body["data"] = data
    return LaafficResponse(body)


def style_b(code: int, msg: str | None = None, data: Any = None) -> Response:
    return LaafficResponse({"code": code, "msg": msg or REASONS[Code(code)], "data": data})


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body once, refusing (-23) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DataCaps(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DataCaps(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's cache: later reads return these bytes.
    return body


class _EnvelopeRoute(APIRoute):
    render: Callable[[int, str | None], Response]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        render = type(self).render

        async def envelope_handler(request: Request) -> Response:
            try:
                await read_body(request, request.app.state.settings.max_body_bytes)
                return await handler(request)
            except OutdialError as exc:
                if exc.code == Code.SERVER_FAULT:
                    return _fault(render, exc)
                return render(int(exc.code), exc.message)
            except RequestValidationError as exc:
                err = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in err.get("loc", ()))
                return render(int(ParameterError.code), f"{where}: {err.get('msg', 'invalid')}")
            except Exception as exc:  # noqa: BLE001 - the contract: never a bare 500
                return _fault(render, exc)

        return envelope_handler


def _fault(render: Callable[[int, str | None], Response], exc: BaseException) -> Response:
    ref = uuid.uuid4().hex[:12]
    log.error(
        "server fault ref=%s: %s",
        ref,
        type(exc).__name__,
        exc_info=exc,
        extra={"ref": ref, "error": type(exc).__name__},
    )
    # LAAFFIC's words first (clients may match them), then what the caller can do with it.
    return render(
        int(Code.SERVER_FAULT),
        f"port program unusual: an unexpected server fault, not caused by the request; "
        f"the server log has its details under ref {ref}",
    )


class StyleARoute(_EnvelopeRoute):
    render = staticmethod(lambda code, reason: style_a(code, reason))


class StyleBRoute(_EnvelopeRoute):
    render = staticmethod(lambda code, msg: style_b(code, msg))

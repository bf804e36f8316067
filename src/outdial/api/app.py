"""The application factory: every dependency is wired here, once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from outdial import __version__
from outdial.api import docs
from outdial.api.deps import Edge
from outdial.api.key_cache import KeyCache
from outdial.api.routes import style_a_router, style_b_router
from outdial.api.throttle import FailureThrottle
from outdial.clock import Clock, SystemClock
from outdial.config import Settings
from outdial.service.container import Services
from outdial.service.metrics import OutboxCollector
from outdial.store.health import head_revision, readiness
from outdial.store.repo import Store


def _thread_limit(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Routes run their database work in worker threads. All threads of a process share one
    interpreter lock: past a few per core, more threads only make every request, and each
    write transaction holding a lock, wait longer for their turn. Requests beyond the limit
    queue on the event loop instead (``OUTDIAL_API_THREADS``)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    return lifespan


def create_app(
    settings: Settings,
    store: Store,
    clock: Clock | None = None,
    *,
    wall_clock: Clock | None = None,
    services: Services | None = None,
) -> FastAPI:
    """Build the API over ``store``; ``clock`` (default: the system clock) stamps and schedules
    everything. ``wall_clock`` (default: ``clock``) checks the callers' ``Timestamp``, which
    is their real time even when ``clock`` is a simulated timeline. ``services`` (default:
    built from the three) lets the console in the same process share them."""
    clock = clock or SystemClock()
    app = FastAPI(
        lifespan=_thread_limit(settings.api_threads),
        title="outdial",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        description="LAAFFIC-compatible AI voice group-call API. Every route is served with "
        "and without the /v3 prefix; errors answer HTTP 200 with a negative status code.",
    )
    app.state.settings = settings
    # Per app, not the library's global registry: two apps in one process (tests, the demo)
    # must not share or collide. ``outdial serve`` adds its dialer's collector here.
    metrics = CollectorRegistry()
    app.state.services = services or Services.build(settings, store, clock)
    app.state.edge = Edge(
        wall_clock=wall_clock or clock,
        trusted_proxies=settings.trusted_networks(),
        throttle=FailureThrottle(
            wall_clock or clock,
            key_limit=settings.auth_fail_key_limit,
            ip_limit=settings.auth_fail_ip_limit,
            window_seconds=settings.auth_fail_window_seconds,
            registry=metrics,
        ),
        keys=KeyCache(wall_clock or clock, settings.auth_cache_seconds),
    )
    for router in (style_a_router, style_b_router):
        app.include_router(router, prefix="/v3")
        app.include_router(router, include_in_schema=False)

    metrics.register(OutboxCollector(store, clock))
    app.state.metrics = metrics
    head = head_revision(store)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: the database answers and its schema is at this code's newest migration."""
        r = readiness(store, head)
        body = {"status": "ready" if r.ready else "not ready", "database": r.database,
                "schema": r.schema, "head": r.head}  # fmt: skip
        return JSONResponse(body, status_code=200 if r.ready else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics_page() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    docs.install(app)
    return app

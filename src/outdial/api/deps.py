"""What routes need from the application: the services, the HTTP edge's state, the caller."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from outdial.api.auth import Caller, Network, client_ip, verify
from outdial.api.key_cache import KeyCache
from outdial.api.throttle import FailureThrottle
from outdial.clock import Clock
from outdial.domain.text import unstorable
from outdial.errors import AuthError
from outdial.service.container import Services
from outdial.store.records import KeyRecord


@dataclass(frozen=True, slots=True)
class Edge:
    """What only the HTTP edge needs, beside the services."""

    # The callers' Timestamp is checked against real time, also on a simulated timeline.
    wall_clock: Clock
    # Parsed once: every request checks the peer against them.
    trusted_proxies: list[Network]
    throttle: FailureThrottle
    keys: KeyCache


# Worker threads kept for task submissions, apart from the ones every other request shares, so
# that a submission does not queue behind a crowd of reads (each holds the database's write
# lock, on SQLite, for as long as it runs).
SUBMIT_THREADS = 2


def submit_threads(request: Request) -> anyio.CapacityLimiter:
    """The submissions' own thread limiter (made on first use, on the event loop)."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "submit_threads", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(SUBMIT_THREADS)
        request.app.state.submit_threads = limiter
    return limiter


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def services(request: Request) -> Services:
    """The application's services (a dependency: async, so it runs on the event loop)."""
    return _services(request)


async def caller(request: Request) -> Caller:
    """Authenticate the request from its Api-Key, Timestamp and Sign headers."""
    svc = _services(request)
    edge: Edge = request.app.state.edge
    api_key = request.headers.get("api-key", "").strip()
    timestamp = request.headers.get("timestamp", "").strip()
    signature = request.headers.get("sign", "").strip()
    if not api_key or not timestamp or not signature:
        raise AuthError("authentication error: Api-Key, Timestamp and Sign headers are required")
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), edge.trusted_proxies)
    wait = edge.throttle.retry_after(api_key, ip)
    if wait is not None:
        raise AuthError(
            "authentication error: too many failed signatures from this Api-Key or address; "
            f"retry in {wait:.0f} s"
        )

    def check(key: KeyRecord | None) -> Caller:
        try:
            return verify(
                key,
                api_key,
                timestamp,
                signature,
                ip,
                edge.wall_clock.now(),
                svc.settings.timestamp_skew_seconds,
            )
        except AuthError:
            # -2 (address) and -16 (time) come after a good signature and are not counted.
            edge.throttle.failed(api_key, ip)
            raise

    kept = edge.keys.get(api_key)
    if kept is not None:
        # A known key is checked here, on the event loop: an HMAC, no database, no thread.
        return check(kept)

    def lookup() -> Caller:
        # A key that could not be stored is unknown (-1) without asking the database.
        with svc.store.read() as tx:
            key = tx.key(api_key) if unstorable(api_key) is None else None
        if key is not None:
            edge.keys.put(key)
        return check(key)

    return await run_in_threadpool(lookup)

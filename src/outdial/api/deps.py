"""What routes need from the application: the services, the HTTP edge's state, the caller."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from outdial.api.auth import Caller, Network, client_ip, verify
from outdial.api.throttle import FailureThrottle
from outdial.clock import Clock
from outdial.domain.text import unstorable
from outdial.errors import AuthError
from outdial.service.container import Services


@dataclass(frozen=True, slots=True)
class Edge:
    """What only the HTTP edge needs, beside the services."""

    # The callers' Timestamp is checked against real time, also on a simulated timeline.
    wall_clock: Clock
    # Parsed once: every request checks the peer against them.
    trusted_proxies: list[Network]
    throttle: FailureThrottle


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

    def lookup() -> Caller:
        # A key that could not be stored is unknown (-1) without asking the database.
        with svc.store.read() as tx:
            key = tx.key(api_key) if unstorable(api_key) is None else None
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

    return await run_in_threadpool(lookup)

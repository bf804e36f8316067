"""Push report delivery: each finished call's report, written to the outbox with its record,
is POSTed to its app's push URL until the receiver answers 2xx, at least once.

A report is signed with the app's push secret (``X-Outdial-Signature``, see
``outdial.client.push_signature``). A failed try (a non-2xx answer, a timeout, a connection
error) is retried with exponential backoff; a report still failing when its delivery cycle is
older than ``give_up_after`` is given up, and stays in the log until an operator replays it.

Leases. A pass claims a batch under a fenced lease (``outdial.store.push``): long enough for
its tries to run in waves of ``concurrency`` at ``timeout`` each. A deliverer that stalls (a
stopped process, a long pause, a partition) may outlive its lease, and another deliverer then
claims the same reports. Two rules keep that safe:

- before each POST the deliverer checks by its own clock that the try can end inside the lease
  (``now + timeout < lease_until``); a claim that cannot is not sent but released, so that it
  is due again at once (unless it was taken over meanwhile), and counted in ``stale_skipped``;
- a try's result is written only while its claim's epoch still holds; a result that comes
  after a takeover is discarded (the try is logged, marked) and counted in ``fenced``.

Delivery stays at least once: a receiver can still see a report twice (a deliverer that
stalled between its POST and its write), and should deduplicate by ``X-Outdial-Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult

from outdial.client import PUSH_SIGNATURE_HEADER, push_signature
from outdial.clock import Clock, epoch_ms
from outdial.errors import NotFound, ValidationError
from outdial.notify.ssrf import PushTargets, is_public
from outdial.store import schema as s
from outdial.store.push import DuePush, PushLogEntry, PushLogTry, PushTry
from outdial.store.repo import Store
from outdial.telephony.regions import region_name

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Outdial-Delivery"
ATTEMPT_HEADER = "X-Outdial-Attempt"
CONTENT_TYPE = "application/json;charset=UTF-8"
# How long past its HTTP timeout a claimed report stays leased to the deliverer that took it.
LEASE_MARGIN_SECONDS = 30.0
_MAX_ERROR_CHARS = 200
_MAX_ANSWER_BYTES = 64 * 1024

STATUS_NAMES = {
    s.PUSH_PENDING: "pending",
    s.PUSH_DELIVERED: "delivered",
    s.PUSH_GAVE_UP: "failed",
}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}


def with_region(payload: str) -> bytes:
    """The report as sent: its stored payload with LAAFFIC's ``code`` (the callee's region, as
    recordGroupQuery gives it), looked up at delivery so the dialer never loads the
    geocoder."""
    report = orjson.loads(payload)
    if "code" not in report:
        report["code"] = region_name(str(report.get("callee", "")))
    return orjson.dumps(report)


def backoff_seconds(attempt: int, first: float, maximum: float) -> float:
    """The wait after failed try number ``attempt`` (1-based): doubling from ``first``."""
    # Beyond 2**62 the cap has long been reached; the bound keeps the power finite.
    return min(maximum, first * float(2 ** min(attempt - 1, 62)))


class _PublicOnlyResolver(AbstractResolver):
    """Resolves as aiohttp does, then refuses a host with any non-public address: a name that
    was public when its URL was saved may point into the server's network by the time a report
    is sent (DNS rebinding)."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if any(not is_public(r["host"]) for r in found):
            # With an errno, aiohttp's ClientConnectorError shows the reason in the log.
            raise OSError(
                errno.EACCES, "resolves to a non-public address (OUTDIAL_PUSH_ALLOW_PRIVATE)"
            )
        return found

    async def close(self) -> None:
        await self._inner.close()


def _session(
    concurrency: int, timeout: float, targets: PushTargets | None = None
) -> aiohttp.ClientSession:
    """One HTTP client keeping up to ``concurrency`` connections alive. aiohttp, not httpx:
    on loopback httpx spent ~1.4 ms of CPU per POST (anyio and the pool's bookkeeping), aiohttp
    ~0.07 ms, and the deliverer was CPU-bound on it (``bench/push_delivery.py``)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=concurrency,
            resolver=_PublicOnlyResolver()
            if targets is not None and not targets.allow_private
            else None,
        ),
        timeout=aiohttp.ClientTimeout(total=timeout),
        # Answers are read raw and only to keep the connection. Nothing from the environment:
        # with it aiohttp reads ~/.netrc in a thread at every request and would send its
        # credentials to the receivers' hosts; no HTTP(S)_PROXY either.
        auto_decompress=False,
        trust_env=False,
    )


def _error_kind(exc: Exception) -> str:
    # The delivery log names a refused or unreachable receiver as it did with httpx.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "ConnectError"
    return type(exc).__name__


class PushDelivery:
    """Delivers due push reports; several deliverers may share one database."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        http: aiohttp.ClientSession | None = None,
        batch: int = 100,
        timeout: float = 10.0,
        give_up_after: timedelta = timedelta(days=1),
        first_backoff: float = 10.0,
        max_backoff: float = 3600.0,
        concurrency: int = 32,
        wall_clock: Clock | None = None,
        speed: float = 1.0,
        targets: PushTargets | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        self.store = store
        self.clock = clock
        # On a simulated timeline (``clock`` runs ``speed`` times faster than real time),
        # receivers still check signatures against their own clocks, and the real-time HTTP
        # tries of a claimed report last ``speed`` times longer in ``clock``'s seconds.
        self.wall_clock = wall_clock or clock
        self.speed = speed
        self.batch = batch
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.concurrency = concurrency
        self.fenced = 0
        """Tries whose result was discarded because their claim had been taken over."""
        self.stale_skipped = 0
        """Claims not sent because their lease would have ended before the try could."""
        self._own_http = http is None
        # Made at the first pass: an aiohttp session belongs to the loop it was made on.
        self._http = http
        self._regions_loaded = False
        # None: every URL is called (tests, benches). The worker passes the server's rule, so
        # a URL is checked again where it is called, not only where it was saved.
        self.targets = targets

    @property
    def lease_seconds(self) -> float:
        """How long a claimed report is reserved: the batch's tries run in waves of
        ``concurrency``, each at most ``timeout`` long."""
        waves = math.ceil(self.batch / self.concurrency)
        return self.timeout * waves + LEASE_MARGIN_SECONDS

    async def __aenter__(self) -> PushDelivery:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this deliverer made it."""
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def deliver_due(self) -> int:
        """One pass: claim the due reports and try each once; return how many were tried."""
        fenced, skipped = self.fenced, self.stale_skipped
        due = self.claim()
        if not due:
            return 0
        if not self._regions_loaded:
            # The geocoder's data (~100 MB) loads once, off the loop the dialer may share.
            await asyncio.to_thread(region_name, "8613800000000")
            self._regions_loaded = True
        tries = await self.send(due)
        self.record(tries)
        failed = sum(t.status != s.PUSH_DELIVERED for t in tries)
        log.info("push pass: %d tried, %d failed", len(tries), failed)
        if self.fenced > fenced or self.stale_skipped > skipped:
            log.warning(
                "push pass: %d results discarded (lease taken over), %d stale claims not sent",
                self.fenced - fenced,
                self.stale_skipped - skipped,
            )
        return len(tries)

    def claim(self) -> list[DuePush]:
        """Claim up to ``batch`` due reports under a lease of ``lease_seconds``."""
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.lease_seconds * self.speed)
        with self.store.write() as tx:
            return tx.claim_push(epoch_ms(now), self.batch, epoch_ms(lease_until))

    async def send(self, due: Sequence[DuePush]) -> list[PushTry]:
        """Try each claimed report once, ``concurrency`` at a time; a claim whose lease would
        end before its try could is released instead (see the module's docstring)."""
        http = self._session()
        gate = asyncio.Semaphore(self.concurrency)
        timeout_ms = round(self.timeout * 1000)
        stale: list[DuePush] = []

        async def bounded(report: DuePush) -> PushTry | None:
            async with gate:
                if epoch_ms(self.clock.now()) + timeout_ms >= report.lease_until:
                    stale.append(report)
                    return None
                return await self._try(http, report)

        tries = [t for t in await asyncio.gather(*(bounded(r) for r in due)) if t is not None]
        if stale:
            self.stale_skipped += len(stale)
            with self.store.write() as tx:
                tx.release_push(
                    [(r.outbox_id, r.lease_epoch) for r in stale], epoch_ms(self.clock.now())
                )
        return tries

    def record(self, tries: Sequence[PushTry]) -> None:
        """Write the tries' results in one transaction; count those fenced off."""
        if not tries:
            return
        with self.store.write() as tx:
            self.fenced += tx.record_push_tries(tries)
        gave_up = [t.outbox_id for t in tries if t.status == s.PUSH_GAVE_UP]
        if gave_up:
            log.warning("push reports given up after %s: %s", self.give_up_after, gave_up)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set, resting ``idle_seconds`` whenever the outbox has
        nothing more due."""
        while not stop.is_set():
            tried = await self.deliver_due()
            if tried < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = _session(self.concurrency, self.timeout, self.targets)
        return self._http

    async def _try(self, http: aiohttp.ClientSession, report: DuePush) -> PushTry:
        at = self.clock.now()
        body = with_region(report.payload)
        headers = {
            "Content-Type": CONTENT_TYPE,
            PUSH_SIGNATURE_HEADER: push_signature(
                report.secret, int(self.wall_clock.now().timestamp()), body
            ),
            DELIVERY_HEADER: str(report.outbox_id),
            ATTEMPT_HEADER: str(report.attempt),
        }
        status: int | None = None
        error: str | None = None
        # A duration, not an instant: measured on the monotonic counter, not the Clock.
        started = time.perf_counter()
        refused = self.targets.refused_literal(report.url) if self.targets else None
        if refused is not None:
            return self._failed(report, epoch_ms(at), None, refused, 0)
        try:
            # The whole try, connecting included, is bounded by the timeout, as the lease
            # check before it assumes; redirects are not followed (a 3xx is a failed try).
            async with http.post(
                report.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                status = resp.status
                # Reading a short answer to its end keeps the connection alive for the next
                # try; a long one is cut off, which closes its connection.
                read = 0
                async for chunk in resp.content.iter_any():
                    read += len(chunk)
                    if read > _MAX_ANSWER_BYTES:
                        resp.close()
                        break
        except TimeoutError:
            error = f"timeout after {self.timeout:g} s"
        except (aiohttp.ClientError, ValueError) as exc:
            # aiohttp's messages name the address or the socket error, never the request body;
            # ValueError: a URL aiohttp cannot use.
            error = f"{_error_kind(exc)}: {exc}"[:_MAX_ERROR_CHARS]
        duration_ms = round((time.perf_counter() - started) * 1000)
        if status is not None and 200 <= status < 300:
            return PushTry(
                report.outbox_id,
                report.lease_epoch,
                report.attempt,
                epoch_ms(at),
                status,
                None,
                duration_ms,
                s.PUSH_DELIVERED,
            )
        if status is not None:
            error = f"HTTP {status}"
        return self._failed(report, epoch_ms(at), status, error, duration_ms)

    def _failed(
        self, report: DuePush, at: int, status: int | None, error: str | None, duration_ms: int
    ) -> PushTry:
        now = self.clock.now()
        deadline = report.cycle_start + int(self.give_up_after.total_seconds() * 1000)
        if epoch_ms(now) >= deadline:
            return PushTry(
                report.outbox_id,
                report.lease_epoch,
                report.attempt,
                at,
                status,
                error,
                duration_ms,
                s.PUSH_GAVE_UP,
            )
        wait = backoff_seconds(report.attempt, self.first_backoff, self.max_backoff)
        next_at = epoch_ms(now + timedelta(seconds=wait))
        return PushTry(
            report.outbox_id,
            report.lease_epoch,
            report.attempt,
            at,
            status,
            error,
            duration_ms,
            s.PUSH_PENDING,
            next_at,
        )


def _try_json(t: PushLogTry) -> dict[str, Any]:
    return {
        "attempt": t.attempt,
        "at": t.at,
        "httpStatus": t.http_status,
        "error": t.error,
        "durationMs": t.duration_ms,
    }


def _entry_json(e: PushLogEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "accountId": e.account_id,
        "voiceId": str(e.call_id),
        "taskId": e.task_id,
        "url": e.url,
        "status": STATUS_NAMES.get(e.status, str(e.status)),
        "attempts": e.attempts,
        "createdAt": e.created_at,
        "nextAt": e.next_at if e.status == s.PUSH_PENDING else None,
        "deliveredAt": e.delivered_at,
        "lastError": e.last_error,
        "tries": [_try_json(t) for t in e.tries],
    }


class PushLog:
    """The delivery log as operators see it: listing reports and replaying them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def deliveries(
        self,
        *,
        account_id: int | None = None,
        status: str | None = None,
        since_id: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Reports with their tries (times in epoch ms; a try numbered 0 is a replay)."""
        if status is not None and status not in STATUS_CODES:
            raise ValidationError(f"status must be one of {', '.join(STATUS_CODES)}")
        if not 1 <= limit <= 1000:
            raise ValidationError("limit must be 1-1000")
        with self.store.read() as tx:
            entries = tx.push_log(
                account_id=account_id,
                status=STATUS_CODES[status] if status is not None else None,
                since_id=since_id,
                limit=limit,
            )
        return {"deliveries": [_entry_json(e) for e in entries]}

    def replay(
        self, ids: Sequence[int] = (), *, account_id: int | None = None, failed: bool = False
    ) -> dict[str, Any]:
        """Deliver reports again from now on, with a fresh retry cycle: the given ids (all of
        them or none, unknown and other accounts' ids answer NotFound), or with ``failed``
        every given-up report (of ``account_id`` when given)."""
        if bool(ids) == failed:
            raise ValidationError("name the reports to replay, or ask for the failed ones")
        with self.store.write() as tx:
            found = tx.replayable_push(ids=ids, account_id=account_id, gave_up_only=failed)
            missing = sorted(set(ids) - set(found))
            if missing:
                raise NotFound(f"push report {missing[0]} does not exist")
            replayed = tx.replay_push(found, epoch_ms(self.clock.now()))
        return {"replayed": replayed}


__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_HEADER",
    "PushDelivery",
    "PushLog",
    "backoff_seconds",
]

"""Hang-up SMS delivery: a sender interface, a file sender (the default) and an HTTP gateway
sender, and the deliverer that sends what the dialer queued with each call record.

The deliverer claims a batch under a fenced lease (``outdial.store.sms``) long enough for each
of its messages to be sent one after the other within ``timeout``. A deliverer that stalls past
its lease must not send a message another deliverer may have claimed since, nor overwrite that
deliverer's result:

- before each send it checks by its own clock that the send can end inside the lease
  (``now + timeout < lease_until``); a claim that cannot is released instead (due again at
  once, unless taken over meanwhile) and counted in ``stale_skipped``;
- a send that does not finish within ``timeout`` counts as failed (and is retried later);
- marking a message sent or failed is conditional on the claim's epoch; a result that comes
  after a takeover is discarded and counted in ``fenced``.

A message can still go out twice when a deliverer stalls between the send and its write: each
send carries the same ``reference`` (``call-<id>``) so that a gateway can drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import httpx

from outdial.clock import Clock, epoch_ms
from outdial.store.repo import Store
from outdial.store.sms import PendingSms

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
# How long past the worst case of its sends a claimed batch stays leased to its deliverer.
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    ok: bool
    provider_id: str | None = None
    error: str | None = None


class SmsSender(Protocol):
    """Sends one text message."""

    async def send(self, to: str, text: str, reference: str) -> SmsReceipt: ...


class FileSmsSender:
    """Appends each message as a JSON line to a file: the default, for a gateway to pick up or
    for an operator to inspect."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def send(self, to: str, text: str, reference: str) -> SmsReceipt:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"to": to, "text": text, "reference": reference}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        return SmsReceipt(ok=True, provider_id=reference)


class HttpSmsSender:
    """POSTs ``{"to", "text", "reference"}`` as JSON to a gateway; a 2xx is success and a JSON
    answer's ``id`` is kept as the provider's message id."""

    def __init__(
        self, url: str, token: str | None = None, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.AsyncClient(timeout=10.0)

    async def send(self, to: str, text: str, reference: str) -> SmsReceipt:
        try:
            resp = await self.http.post(
                self.url,
                json={"to": to, "text": text, "reference": reference},
                headers=self.headers,
            )
        except httpx.HTTPError as exc:
            return SmsReceipt(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
        if not 200 <= resp.status_code < 300:
            return SmsReceipt(ok=False, error=f"HTTP {resp.status_code}")
        try:
            provider_id = str(resp.json().get("id")) if resp.content else None
        except ValueError:
            provider_id = None
        return SmsReceipt(ok=True, provider_id=provider_id)


class SmsDelivery:
    """Sends queued hang-up SMS; retries a failure a few times, a minute apart and more.
    Several deliverers may share one database."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: SmsSender,
        batch: int = 50,
        *,
        timeout: float = 10.0,
    ) -> None:
        if batch < 1 or timeout <= 0:
            raise ValueError("batch must be at least 1 and timeout positive")
        self.store = store
        self.clock = clock
        self.sender = sender
        self.batch = batch
        self.timeout = timeout
        self.fenced = 0
        """Results discarded because their claim had been taken over."""
        self.stale_skipped = 0
        """Claims not sent because their lease would have ended before the send could."""

    @property
    def lease_seconds(self) -> float:
        """How long a claimed batch is reserved: its sends, one at a time, at most
        ``timeout`` each."""
        return self.timeout * self.batch + LEASE_MARGIN_SECONDS

    async def deliver_due(self) -> int:
        """One pass: claim the due messages and send each once; return how many were
        claimed."""
        fenced, skipped = self.fenced, self.stale_skipped
        due = self.claim()
        for sms in due:
            await self.send(sms)
        if self.fenced > fenced or self.stale_skipped > skipped:
            log.warning(
                "SMS pass: %d results discarded (lease taken over), %d stale claims not sent",
                self.fenced - fenced,
                self.stale_skipped - skipped,
            )
        return len(due)

    def claim(self) -> list[PendingSms]:
        """Claim up to ``batch`` due messages under a lease of ``lease_seconds``."""
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.lease_seconds)
        with self.store.write() as tx:
            return tx.claim_sms(epoch_ms(now), epoch_ms(lease_until), self.batch)

    async def send(self, sms: PendingSms) -> None:
        """Send one claimed message and record the result under its claim; a claim too close
        to its lease's end is released unsent."""
        now = epoch_ms(self.clock.now())
        if now + round(self.timeout * 1000) >= sms.lease_until:
            self.stale_skipped += 1
            with self.store.write() as tx:
                tx.release_sms([(sms.id, sms.lease_epoch)], now)
            return
        try:
            receipt = await asyncio.wait_for(
                self.sender.send(sms.to_number, sms.text, f"call-{sms.call_id}"), self.timeout
            )
        except TimeoutError:
            receipt = SmsReceipt(ok=False, error=f"timeout after {self.timeout:g} s")
        at = self.clock.now()
        attempt = sms.attempts + 1
        with self.store.write() as tx:
            if receipt.ok:
                held = tx.sms_sent(sms.id, sms.lease_epoch, receipt.provider_id, epoch_ms(at))
            else:
                retry = None
                if attempt < MAX_ATTEMPTS:
                    retry = epoch_ms(at + timedelta(minutes=2 ** (attempt - 1)))
                held = tx.sms_failed(sms.id, sms.lease_epoch, receipt.error or "failed", retry)
        if not held:
            self.fenced += 1
        elif not receipt.ok:
            log.warning("hang-up SMS not sent", extra={"sms_id": sms.id, "attempt": attempt})

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Deliver until ``stop`` is set, resting ``idle_seconds`` whenever nothing is due."""
        while not stop.is_set():
            if await self.deliver_due() == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_seconds)

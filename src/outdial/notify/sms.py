"""Hang-up SMS delivery: a sender interface, a file sender (the default) and an HTTP gateway
sender, and the deliverer that sends what the dialer queued with each call record."""

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
    """Sends queued hang-up SMS; retries a failure a few times, a minute apart and more."""

    def __init__(self, store: Store, clock: Clock, sender: SmsSender, batch: int = 50) -> None:
        self.store = store
        self.clock = clock
        self.sender = sender
        self.batch = batch

    async def deliver_due(self) -> int:
        now = self.clock.now()
        with self.store.write() as tx:
            due = tx.claim_sms(epoch_ms(now), epoch_ms(now + timedelta(minutes=5)), self.batch)
        for sms in due:
            await self._send(sms)
        return len(due)

    async def _send(self, sms: PendingSms) -> None:
        receipt = await self.sender.send(sms.to_number, sms.text, f"call-{sms.call_id}")
        now = self.clock.now()
        with self.store.write() as tx:
            if receipt.ok:
                tx.sms_sent(sms.id, receipt.provider_id, epoch_ms(now))
                return
            attempt = sms.attempts + 1
            retry = None
            if attempt < MAX_ATTEMPTS:
                retry = epoch_ms(now + timedelta(minutes=2 ** (attempt - 1)))
            tx.sms_failed(sms.id, receipt.error or "failed", retry)
        log.warning("hang-up SMS not sent", extra={"sms_id": sms.id, "attempt": attempt})

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            if await self.deliver_due() == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_seconds)

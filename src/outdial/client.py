"""A signed Python client for LAAFFIC's AI group-call API; works against LAAFFIC and outdial.

from outdial.client import LaafficClient
with LaafficClient("http://127.0.0.1:8080", api_key, api_secret) as c:
    task_id = c.send_ai(app_id="...", task_name="June reminders", script_id=1,
                        max_calls=60, numbers=[{"calleeNumber": "8613242926514",
                                                 "text1": "Li"}])
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

LAAFFIC_BASE_URL = "https://api.laaffic.com"


class LaafficError(Exception):
    """The API answered a non-zero status; ``status`` is LAAFFIC's code (e.g. -21)."""

    def __init__(self, status: int, reason: str, endpoint: str) -> None:
        self.status = status
        self.reason = reason
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: {status} {reason}")


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the task list and detail report it."""

    task_id: int
    task_name: str
    status: int
    rate: str
    num_cnt: int
    call_num: int
    success: int
    fail: int
    created_time: str | None
    script_id: int | None
    task_type: int | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Task:
        return cls(
            task_id=int(d.get("taskId", d.get("jobId", 0))),
            task_name=str(d.get("taskName", "")),
            status=int(d.get("status", 0)),
            rate=str(d.get("rate", "0")),
            num_cnt=int(d.get("numCnt") or 0),
            call_num=int(d.get("callNum") or 0),
            success=int(d.get("success") or 0),
            fail=int(d.get("fail") or 0),
            created_time=d.get("createdTime"),
            script_id=d.get("scriptId"),
            task_type=d.get("taskType"),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    size: int
    current: int
    pages: int
    records: list[Task]


@dataclass(frozen=True, slots=True)
class Balance:
    balance: str
    gift: str
    credit: str


def published_example(app_id: str, script_id: int) -> dict[str, Any]:
    """The send/ai request LAAFFIC publishes as its example, with your appId and scriptId."""
    return {
        "appId": app_id,
        "taskName": "2024-06-03 10:42:05",
        "maxCalls": 40,
        "numberInfoList": [
            {"calleeNumber": "8613242926514", "text1": "12"},
            {"calleeNumber": "8613242926515", "text1": "12"},
        ],
        "sendTime": "2024-06-21 00:00:00",
        "displayNum": "1008122211",
        "maxRingingTime": 60,
        "scriptId": script_id,
        "enableRecording": 0,
        "allowSendTime": [{"strTime": "18:28", "endTime": "19:28"}],
    }


def sign(api_key: str, api_secret: str, timestamp: int | str) -> str:
    """Sign = hex MD5 of apiKey + apiSecret + timestamp."""
    raw = f"{api_key}{api_secret}{timestamp}".encode()
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def _code(body: dict[str, Any]) -> tuple[int, str]:
    # Style A carries "status" (a string), style B "code"; LAAFFIC's own samples mix types.
    if "status" in body:
        return int(body["status"]), str(body.get("reason", ""))
    return int(body.get("code", -18)), str(body.get("msg", ""))


class LaafficClient:
    """Signs every request with the key and secret; raises LaafficError on a non-zero status."""

    def __init__(
        self,
        base_url: str = LAAFFIC_BASE_URL,
        api_key: str = "",
        api_secret: str = "",
        *,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self._clock = clock
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    def __enter__(self) -> LaafficClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def headers(self) -> dict[str, str]:
        ts = str(int(self._clock()))
        return {
            "Api-Key": self._key,
            "Timestamp": ts,
            "Sign": sign(self._key, self._secret, ts),
            "Content-Type": "application/json;charset=UTF-8",
        }

    def request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Send a signed request and return the whole response body, raising on non-zero."""
        h = self.headers()
        if headers:
            h.update(headers)
        resp = self._http.request(method, path, json=json, headers=h)
        resp.raise_for_status()
        body = resp.json()
        code, reason = _code(body)
        if code != 0:
            raise LaafficError(code, reason, path)
        return dict(body)

    def send_ai(
        self,
        *,
        app_id: str,
        task_name: str,
        script_id: int,
        max_calls: int,
        numbers: Sequence[str | dict[str, Any]],
        display_num: str | None = None,
        send_time: str | None = None,
        allow_send_time: Sequence[tuple[str, str]] = (),
        max_ringing_time: int | None = None,
        enable_recording: int | None = None,
        callout_rate: int | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> int:
        """Create an AI group-call task; returns its id (keyId)."""
        body: dict[str, Any] = {
            "appId": app_id,
            "taskName": task_name,
            "scriptId": script_id,
            "maxCalls": max_calls,
            "numberList": list(numbers),
            "allowSendTime": [{"strTime": s, "endTime": e} for s, e in allow_send_time],
        }
        optional = {
            "displayNum": display_num,
            "sendTime": send_time,
            "maxRingingTime": max_ringing_time,
            "enableRecording": enable_recording,
            "calloutRate": callout_rate,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        body.update(extra)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        out = self.request("POST", "/v3/voice/group/call/send/ai", body, headers)
        return int(out["data"])

    def update_ai(self, key_id: int, **fields: Any) -> None:
        """Change a waiting task; ``fields`` use LAAFFIC's names (taskName, scriptId, ...)."""
        self.request("POST", "/v3/voice/group/call/update/ai", {"keyId": key_id, **fields})

    def query_tasks(self, current: int = 1, size: int = 10, **params: Any) -> Page:
        out = self.request(
            "POST",
            "/v3/voice/group/call/query",
            {"current": current, "size": size, "params": params},
        )
        d = out["data"]
        return Page(
            total=int(d["total"]),
            size=int(d["size"]),
            current=int(d["current"]),
            pages=int(d["pages"]),
            records=[Task.from_json(r) for r in d["records"]],
        )

    def task_detail(self, task_id: int) -> Task:
        out = self.request("GET", f"/v3/voice/group/call/detail/{task_id}")
        return Task.from_json(out["data"])

    def cancel(self, task_ids: Sequence[int]) -> None:
        self.request("POST", "/voice/group/call/cancel", {"taskIdList": list(task_ids)})

    def pause(self, task_ids: Sequence[int]) -> None:
        """outdial extension."""
        self.request("POST", "/v3/voice/group/call/pause", {"taskIdList": list(task_ids)})

    def resume(self, task_ids: Sequence[int]) -> None:
        """outdial extension."""
        self.request("POST", "/v3/voice/group/call/resume", {"taskIdList": list(task_ids)})

    def get_balance(self) -> Balance:
        out = self.request("GET", "/v3/getBalance")
        return Balance(str(out["balance"]), str(out["gift"]), str(out["credit"]))


PUSH_SIGNATURE_HEADER = "X-Outdial-Signature"


def _push_mac(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def push_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Outdial-Signature`` value of a push report: ``t=<timestamp>,v1=<hex>``, where
    hex is HMAC-SHA256 keyed with the app's push secret over ``b"<timestamp>." + body``."""
    return f"t={timestamp},v1={_push_mac(secret, timestamp, body)}"


def verify_push_signature(
    secret: str, header: str, body: bytes, now: float, tolerance: int = 300
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds
    of ``now`` (Unix seconds). Malformed headers are rejected, never raised on."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                return False
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = _push_mac(secret, timestamp, body)
    # Every candidate is compared, so the time taken does not depend on which one matches;
    # compare_digest refuses non-ASCII text, and such a value cannot be a hex digest anyway.
    matches = [c.isascii() and hmac.compare_digest(expected, c) for c in candidates]
    return any(matches)

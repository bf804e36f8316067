"""Keeping a trunk registered (RFC 3261 section 10): REGISTER with digest credentials, refreshed
before the binding expires, retried after a failure, removed when the worker stops.

sippy ships a registration agent, but it refreshes only when the binding has already expired,
answers a 407 with the wrong header and never unregisters; this one runs on the same reactor
thread with sippy's message classes. Every REGISTER of one registration shares its Call-ID
and From tag with an increasing CSeq (RFC 3261 10.2.4), so a registrar sees refreshes of one
binding. A refresh goes out without credentials and answers the registrar's new challenge (a
nonce is not replayed). Over UDP, or over TCP for trunks whose calls go over TCP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from outdial.telephony.sip.stack import SipStack

log = logging.getLogger(__name__)

MAX_CHALLENGES = 2  # challenges answered in a row before credentials count as refused


def refresh_after(expires: float) -> float:
    """When to refresh a binding granted for ``expires`` seconds: well before it lapses, so
    one lost REGISTER and its retransmissions still land in time."""
    return expires / 2 if expires < 64 else expires - 32


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """What a registration looks like now (read from any thread)."""

    state: str  # registering | registered | failed | unregistered
    code: int | None = None  # the registrar's last final response
    reason: str = ""
    expires: float | None = None  # seconds granted by the last 2xx


class Registration:
    """One trunk's binding at its registrar; ``start`` and ``stop`` from any thread."""

    def __init__(
        self,
        stack: SipStack,
        registrar: tuple[str, int],
        user: str,
        *,
        domain: str | None = None,
        username: str | None = None,
        password: str | None = None,
        expires: int = 300,
        retry_after: float = 30.0,
        transport: str = "udp",
        on_change: Callable[[RegistrationState], None] | None = None,
    ) -> None:
        self.on_change = on_change  # called on the reactor thread: must not block
        self.stack, self.registrar, self.user = stack, registrar, user
        self.domain = domain or registrar[0]
        self.username, self.password = username or user, password
        self.expires, self.retry_after = expires, retry_after
        # "tcp": sent on the stack's TCP connection to the registrar (tcp.py), the one the
        # trunk's calls use; the Contact says so, for requests the registrar sends back.
        self.transport = transport.lower()
        self.registrations = 0  # successful REGISTERs (first and refreshes)
        self._state = RegistrationState("registering")
        self._changed = threading.Condition()
        self._timer: Any = None
        self._stopping = False
        self._challenges = 0
        self._cseq = 1
        self._call_id: Any = None
        self._from_tag: str | None = None

    @property
    def state(self) -> RegistrationState:
        return self._state

    def start(self) -> None:
        self.stack.call_soon(self._register, None)

    def stop(self, timeout: float = 5.0) -> RegistrationState:
        """Remove the binding (REGISTER with expires 0) and wait briefly for the answer."""
        self.stack.call_soon(self._unregister)
        self.wait_for("unregistered", "failed", timeout=timeout)
        return self._state

    def wait_for(self, *states: str, timeout: float) -> bool:
        """Wait until the state is one of ``states``; False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state.state in states, timeout)

    def _set(self, state: RegistrationState) -> None:
        with self._changed:
            self._state = state
            self._changed.notify_all()
        if self.on_change is not None:
            self.on_change(state)

    # --- on the reactor thread ---
    def _request(self, expires: int, auth: Any = None) -> Any:
        from sippy.SipAddress import SipAddress
        from sippy.SipCallId import SipCallId
        from sippy.SipContact import SipContact
        from sippy.SipExpires import SipExpires
        from sippy.SipFrom import SipFrom
        from sippy.SipHeader import SipHeader
        from sippy.SipRequest import SipRequest
        from sippy.SipTo import SipTo
        from sippy.SipURL import SipURL

        if self._call_id is None:
            self._call_id = SipCallId()
        aor = SipURL(username=self.user, host=self.domain)
        fr0m = SipFrom(address=SipAddress(url=aor.getCopy()))
        if self._from_tag is None:
            fr0m.genTag()
            self._from_tag = fr0m.getTag()
        else:
            fr0m.setTag(self._from_tag)
        host, port = self.stack.bound or ("127.0.0.1", 5060)
        url = SipURL(username=self.user, host=host, port=port)
        if self.transport != "udp":
            url.transport = self.transport
        contact = SipContact(address=SipAddress(url=url))
        request = SipRequest(
            method="REGISTER",
            ruri=SipURL(host=self.domain),
            fr0m=fr0m,
            to=SipTo(address=SipAddress(url=aor)),
            contact=contact,
            callid=self._call_id.getCopy(),
            cseq=self._cseq,
            target=(self.registrar, self.transport),
            expires=SipExpires(number=expires),
            user_agent=self.stack.user_agent,
        )
        self._cseq += 1
        if auth is not None:
            request.appendHeader(SipHeader(body=auth))
        return request

    def _send(self, request: Any) -> None:
        self.stack.config["_sip_tm"].newTransaction(request, self._reply)

    def _register(self, auth: Any) -> None:
        self._timer = None
        if self._stopping:
            return
        self._send(self._request(self.expires, auth))

    def _unregister(self) -> None:
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._state.state != "registered":
            self._set(RegistrationState("unregistered"))
            return
        self._challenges = 0
        self._send(self._request(0))

    def _reply(self, response: Any) -> None:
        code, reason = response.getSCode()[:2]
        if code < 200:
            return
        if code in (401, 407) and self._challenges < MAX_CHALLENGES and self.password:
            auth = self._answer(response, code)
            if auth is not None:
                self._challenges += 1
                expires = 0 if self._stopping else self.expires
                self._send(self._request(expires, auth))
                return
        self._challenges = 0
        if self._stopping:
            self._set(RegistrationState("unregistered", code, reason))
            return
        if 200 <= code < 300:
            granted = _granted(response, self.expires)
            self.registrations += 1
            self._set(RegistrationState("registered", code, reason, granted))
            self._later(refresh_after(granted))
            return
        log.warning("trunk registration refused: %s %s", code, reason)
        self._set(RegistrationState("failed", code, reason))
        self._later(self.retry_after)

    def _answer(self, response: Any, code: int) -> Any:
        name = "www-authenticate" if code == 401 else "proxy-authenticate"
        if response.countHFs(name) == 0:
            return None
        challenge = response.getHFBody(name)
        supported, qop = challenge.supportedAlgorithm()
        if not supported:
            return None
        uri = f"sip:{self.domain}"
        return challenge.genAuthHF(self.username, self.password, "REGISTER", uri, qop=qop)

    def _later(self, seconds: float) -> None:
        from sippy.Time.Timeout import Timeout

        self._timer = Timeout(self._register, max(0.1, seconds), 1, None)


def _granted(response: Any, asked: int) -> float:
    """Seconds the registrar granted: our Contact's expires parameter, else Expires."""
    for contact in response.getHFBodys("contact") if response.countHFs("contact") else ():
        value = contact.address.params.get("expires")
        if value is not None:
            try:
                return float(value)
            except ValueError:
                break
    if response.countHFs("expires"):
        return float(response.getHFBody("expires").getNum())
    return float(asked)

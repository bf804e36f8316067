"""sippy, bridged to asyncio.

sippy runs its own reactor (ED2) in a thread; every sippy object is touched only there. The
asyncio side enters with ``ED2.callFromThread`` and receives plain ``SipEvent`` values through
``loop.call_soon_threadsafe``. The stack's quirks are handled here, each with a test:

- ED2 binds itself to the thread that first imports it, so that import happens inside the
  reactor thread (otherwise cross-thread calls take ~10 ms and timers warn).
- sippy compares the URI parameter ``transport=UDP`` case-sensitively, so requests we send
  inside a dialog to a peer whose Contact says ``UDP`` (SIPp does) raise inside the reactor and
  the call stays up; next-hop transports are lower-cased (RFC 3261: case-insensitive).
- The default Contact carries the display name "Anonymous", which some peers copy into the
  Request-URI of their BYE; it is removed.
- 100 Trying arrives as a ring event; it is not ringing.
- Its transaction manager probes for IPv6 with a socket it never closes; the warning that
  socket raises when collected is silenced at that one place.
- Custom header names would be re-capitalised (``X-Campaign-Id`` -> ``X-campaign-id``); they
  are sent verbatim.
- Its transaction manager sends the ACK of a non-2xx final response to the response's Contact
  (and Record-Route), with that Contact as Request-URI. RFC 3261 17.1.1.3 wants it where the
  INVITE went, with the INVITE's Request-URI, Via branch and Route set: a trunk whose Contact
  names another host (an SBC's inside address) never sees the ACK, resends its 486 and fails
  the call. Those ACKs are sent by ``ack_failures_where_the_invite_went``.
- An in-dialog NOTIFY (a transfer's progress, RFC 3515) has no handler, so it is never
  answered; ``answer_notify`` answers it 200 and hands its sipfrag status to the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from outdial.speech.errors import SpeechUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SipEvent:
    kind: str  # ringing | progress | connected | failed | disconnected | dead | notify
    code: int | None = None
    reason: str = ""
    sdp: str | None = None
    origin: str | None = None  # "callee" when the far end hung up


def lower_case_transports() -> None:
    """Make next-hop transports lower case, as sippy's transaction manager expects."""
    from sippy.SipURL import SipURL

    if getattr(SipURL.getTAddr, "_outdial", False):
        return
    original = SipURL.getTAddr

    def get_taddr(self: Any) -> Any:
        addr, transport = original(self)
        return addr, transport.lower() if isinstance(transport, str) else transport

    get_taddr._outdial = True  # type: ignore[attr-defined]
    SipURL.getTAddr = get_taddr


def ack_failures_where_the_invite_went() -> None:
    """ACK every non-2xx final response to an INVITE as RFC 3261 17.1.1.3 says."""
    from sippy.SipHeader import SipHeader
    from sippy.SipTransactionManager import RINGING, TRYING, SipTransactionManager

    manager: Any = SipTransactionManager
    if getattr(manager.incomingResponse, "_outdial", False):
        return
    new_transaction, incoming_response = manager.newTransaction, manager.incomingResponse

    def remember_routes(self: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        t = new_transaction(self, msg, *args, **kwargs)
        if t.ack is not None:  # the INVITE's own Route set, which its ACK must repeat
            t.invite_routes = msg.getHFBCopys("route")
        return t

    def incoming(self: Any, msg: Any, t: Any, checksum: Any) -> Any:
        code = msg.getSCode()[0]
        if not (t.needack and not t.uack and code >= 300 and t.state in (TRYING, RINGING)):
            return incoming_response(self, msg, t, checksum)
        ack, target, server = t.ack, t.address, t.userv  # the INVITE's Request-URI and hop
        tag = msg.getHFBody("to").getTag()
        if tag is not None:
            ack.getHFBody("to").setTag(tag)
        ack.delHFs("route")
        ack.appendHeaders(
            [SipHeader(name="route", body=r) for r in getattr(t, "invite_routes", ())]
        )
        t.needack = False  # sippy then notifies the call and forgets the transaction
        incoming_response(self, msg, t, checksum)
        # Cached under the response's checksum: a retransmitted 486 gets this ACK again.
        self.transmitMsg(server, ack, target, checksum, compact=t.compact)
        return None

    incoming._outdial = True  # type: ignore[attr-defined]
    manager.newTransaction, manager.incomingResponse = remember_routes, incoming


def sipfrag_status(body: str) -> int | None:
    """The status code of a message/sipfrag body ("SIP/2.0 200 OK"), or None."""
    found = re.match(r"\s*SIP/2\.0\s+(\d{3})", body)
    return int(found.group(1)) if found else None


def answer_notify() -> None:
    """Answer in-dialog NOTIFY with 200 and pass its sipfrag status to ``ua.outdial_notify``."""
    from sippy.UaStateConnected import UaStateConnected

    if "NOTIFY" in UaStateConnected.recv_request_handlers:
        return

    def notify(state: Any, req: Any) -> None:
        req.sendResponse(200, "OK")
        body = req.getBody()
        status = sipfrag_status(str(body.content) if body is not None else "")
        report = getattr(state.ua, "outdial_notify", None)
        if report is not None and status is not None:
            report(status)

    UaStateConnected.recv_request_handlers = {
        **UaStateConnected.recv_request_handlers,
        "NOTIFY": notify,
    }


def verbatim_header(name: str, value: str) -> Any:
    """A header sent with exactly this name (sippy would re-capitalise unknown names)."""
    from sippy.SipGenericHF import SipGenericHF
    from sippy.SipHeader import SipHeader

    class Verbatim(SipGenericHF):  # type: ignore[misc]
        def __init__(self, body: str, cname: str) -> None:
            super().__init__(body, cname)
            self.cname = cname

        def getCanName(self, name: str, compact: bool = False) -> str:
            return self.cname

        def getCopy(self) -> Verbatim:
            return Verbatim(self.body, self.cname)

    return SipHeader(name=name, body=Verbatim(value, name))


class _Log:
    """sippy's logger interface; SIP messages go to debug logging (they carry numbers)."""

    def write(self, *args: object, **_: object) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("sip: %s", "".join(str(a) for a in args))


class SipStack:
    """The reactor thread and one UDP transaction manager for every call of the process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, user_agent: str = "outdial"):
        self.host, self.port, self.user_agent = host, port, user_agent
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.ed2: Any = None
        self.config: dict[str, Any] = {}
        self.bound: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> SipStack:
        try:
            import sippy  # noqa: F401
        except ImportError as exc:
            raise SpeechUnavailable(
                "the SIP carrier needs sippy: pip install 'outdial[sip]'"
            ) from exc
        if "sippy.Core.EventDispatcher" in sys.modules:
            raise RuntimeError(
                "sippy's reactor was imported outside its thread; one stack per process"
            )
        self._thread = threading.Thread(target=self._run, name="sippy-reactor", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the SIP stack did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            from sippy.Core.EventDispatcher import ED2  # created here: this is its thread
            from sippy.SipConf import SipConf
            from sippy.SipTransactionManager import SipTransactionManager

            lower_case_transports()
            ack_failures_where_the_invite_went()
            answer_notify()
            SipConf.my_uaname = self.user_agent
            self.config = {"_sip_address": self.host, "_sip_port": self.port, "_sip_logger": _Log()}
            with warnings.catch_warnings():
                # sippy probes for IPv6 with a socket it never closes (a ResourceWarning).
                warnings.simplefilter("ignore", ResourceWarning)
                tm = SipTransactionManager(self.config, self._out_of_dialog)
            self.config["_sip_tm"] = tm
            self.ed2 = ED2
            server = next(iter(tm.l4r.cache_l2s.values()))
            address = server.getSIPaddr()[0]
            self.bound = (str(address[0]), int(address[1]))
            from outdial.telephony.sip.tcp import install_tcp

            install_tcp(self.config, *self.bound)
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        ED2.loop()

    def _out_of_dialog(self, req: Any, _transaction: Any) -> Any:
        method = req.getMethod()
        if method == "OPTIONS":
            return (req.genResponse(200, "OK"), None, None)
        if method in ("ACK", "CANCEL"):
            return None
        if req.getHFBody("to").getTag() is not None:
            return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
        if method == "INVITE":
            return (req.genResponse(603, "Decline"), None, None)  # outbound only
        return (req.genResponse(501, "Not Implemented"), None, None)

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        self.ed2.callFromThread(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None or not self._thread.is_alive():
            return

        def shutdown() -> None:
            try:
                self.config["_tcp_server"].shutdown()
                self.config["_sip_tm"].shutdown()
            finally:
                self.ed2.breakLoop()

        self.ed2.callFromThread(shutdown)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            # Free the reactor's native timer now, while the interpreter is whole: left to the
            # garbage collector at exit, ElPeriodic.__del__ can crash the process (SIGSEGV) once
            # native libraries such as CTranslate2's are loaded too.
            elp = getattr(self.ed2, "elp", None)
            if elp is not None:
                elp.__del__()


@dataclass(frozen=True, slots=True)
class Dial:
    """One INVITE: who, where, with which offer and credentials."""

    to_user: str
    next_hop: tuple[str, int]
    sdp: str
    from_user: str = "anonymous"
    domain: str | None = None  # host of the Request-URI and To (default: the next hop)
    username: str | None = None
    password: str | None = None
    headers: Sequence[tuple[str, str]] = ()
    transport: str = "udp"  # or "tcp"
    give_up_after: float = 180.0  # CANCEL if not answered by then (a safety net)


class SipCall:
    """One outbound call; its events arrive on ``events`` (an asyncio queue)."""

    def __init__(self, stack: SipStack, loop: asyncio.AbstractEventLoop) -> None:
        self.stack, self.loop = stack, loop
        self.events: asyncio.Queue[SipEvent] = asyncio.Queue()
        self._ua: Any = None

    def start(self, dial: Dial) -> None:
        self.stack.call_soon(self._start, dial)

    def hangup(self) -> None:
        """CANCEL while ringing, BYE when answered; nothing once ended."""
        self.stack.call_soon(self._hangup)

    async def ping(self) -> int | None:
        """Send an in-dialog OPTIONS; its final response code (408 when none came), or None
        when the call is not up."""
        answered: asyncio.Future[int | None] = self.loop.create_future()

        def settle(code: int | None) -> None:
            if not answered.done():
                answered.set_result(code)

        def resolve(code: int | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be gone
                self.loop.call_soon_threadsafe(settle, code)

        self.stack.call_soon(self._ping, resolve)
        return await answered

    # --- on the reactor thread ---
    def _post(self, event: SipEvent) -> None:
        # The stack can outlive the call's loop (a dialog that dies after its record closed).
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    def _start(self, dial: Dial) -> None:
        from sippy.CCEvents import CCEventTry
        from sippy.MsgBody import MsgBody
        from sippy.SipCallId import SipCallId
        from sippy.SipContact import SipContact
        from sippy.UA import UA

        try:
            ua = UA(
                self.stack.config,
                event_cb=self._event,
                username=dial.username,
                password=dial.password,
                nh_address=dial.next_hop,
                dead_cbs=(self._dead,),
                expire_time=dial.give_up_after,
                **({"nh_transport": dial.transport} if dial.transport != "udp" else {}),
            )
            ua.godead_timeout = 0.5
            ua.outdial_notify = lambda code: self._post(SipEvent("notify", code))
            contact = SipContact()
            contact.getUri().name = None
            if dial.transport == "tcp":  # the far end's requests come back over TCP
                contact.getUrl().transport = "tcp"
            ua.lContact = contact
            self._ua = ua
            event = CCEventTry(
                (SipCallId(), dial.from_user, dial.to_user, MsgBody(dial.sdp), None, None)
            )
            if dial.headers:
                event.extra_headers = tuple(verbatim_header(n, v) for n, v in dial.headers)
            if dial.domain or dial.transport != "udp":
                domain, transport = dial.domain, dial.transport

                def set_target(uac: Any) -> None:
                    if domain:
                        uac.rTarget.host = domain
                        uac.rTarget.port = None
                        uac.rUri.getUrl().host = domain
                    if transport != "udp":
                        uac.rTarget.transport = transport

                event.onUacSetupComplete = set_target
            ua.recvEvent(event)
        except Exception as exc:  # reported as a failed call, never lost
            log.exception("could not start a SIP call")
            self._post(SipEvent("failed", 500, f"local error: {type(exc).__name__}"))
            self._post(SipEvent("dead"))

    def _event(self, event: Any, _ua: Any) -> None:
        from sippy.CCEvents import (
            CCEventConnect,
            CCEventDisconnect,
            CCEventFail,
            CCEventPreConnect,
            CCEventRedirect,
            CCEventRing,
        )

        data = event.getData()
        if isinstance(event, CCEventDisconnect):
            self._post(SipEvent("disconnected", origin=event.origin))
            return
        if not isinstance(
            event, CCEventRing | CCEventConnect | CCEventPreConnect | CCEventFail | CCEventRedirect
        ):
            return
        code, reason = int(data[0]), str(data[1])
        body = data[2] if len(data) > 2 else None
        sdp = str(body) if body is not None else None
        if isinstance(event, CCEventRing):
            if code == 100:
                return
            self._post(SipEvent("progress" if sdp else "ringing", code, reason, sdp))
        elif isinstance(event, CCEventConnect | CCEventPreConnect):
            self._post(SipEvent("connected", code, reason, sdp))
        else:
            self._post(SipEvent("failed", code, reason))

    async def refer(self, target: str) -> int | None:
        """Send a blind transfer (REFER to ``target``, a SIP URI); the REFER's final response
        code, or None when the call is not up. Progress arrives as "notify" events."""
        answered: asyncio.Future[int | None] = self.loop.create_future()

        def settle(code: int | None) -> None:
            if not answered.done():
                answered.set_result(code)

        def resolve(code: int | None) -> None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(settle, code)

        self.stack.call_soon(self._refer, target, resolve)
        return await answered

    def _refer(self, target: str, resolve: Callable[[int | None], None]) -> None:
        ua = self._ua
        if ua is None or ua.isDead() or not ua.isConnected():
            resolve(None)
            return

        def response(resp: Any) -> None:
            code = int(resp.getSCode()[0])
            if code >= 200:
                resolve(code)

        try:
            request = ua.genRequest("REFER")
            request.appendHeader(verbatim_header("Refer-To", f"<{target}>"))
            request.appendHeader(verbatim_header("Referred-By", f"<{ua.lUri.getUrl()}>"))
            ua.newTransaction(request, resp_cb=response)
        except Exception:
            log.exception("could not send a REFER")
            resolve(None)

    def _ping(self, resolve: Callable[[int | None], None]) -> None:
        ua = self._ua
        if ua is None or ua.isDead() or not ua.isConnected():
            resolve(None)
            return

        def response(resp: Any) -> None:
            code = int(resp.getSCode()[0])
            if code >= 200:
                resolve(code)

        try:
            ua.newTransaction(ua.genRequest("OPTIONS"), resp_cb=response)
        except Exception:  # a dialog torn down under us: no answer to wait for
            log.exception("could not send a keepalive OPTIONS")
            resolve(None)

    def _hangup(self) -> None:
        if self._ua is not None and not self._ua.isDead():
            self._ua.disconnect(origin="local")

    def _dead(self, _ua: Any) -> None:
        self._post(SipEvent("dead"))

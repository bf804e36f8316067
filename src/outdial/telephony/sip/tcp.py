"""SIP over TCP for sippy, which ships client transports only for UDP and WebSocket.

One connection per far end, opened on the first message to it and kept for the dialog (the far
end's requests and our responses use it too). A reader thread per connection cuts the byte
stream into messages by their Content-Length (RFC 3261 section 18.3) and hands each to the
reactor thread, as sippy's own UDP receivers do. Installed by ``install_tcp``: requests whose
next hop says ``transport=tcp`` go through it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE
)
MAX_MESSAGE = 64 * 1024


def split_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete SIP messages at the start of ``buffer``, and what is left of it."""
    out: list[bytes] = []
    while True:
        buffer = buffer.lstrip(b"\r\n")  # keep-alive CRLFs between messages
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_MESSAGE:
                raise ValueError("SIP header section too long")
            return out, buffer
        head = buffer[: end + 4]
        found = _LENGTH.search(head)
        body = int(found.group(1)) if found else 0
        if body > MAX_MESSAGE:
            raise ValueError("SIP body too long")
        if len(buffer) < end + 4 + body:
            return out, buffer
        out.append(buffer[: end + 4 + body])
        buffer = buffer[end + 4 + body :]


def make_tcp_transport(config: dict[str, Any], host: str, port: int) -> Any:
    """A sippy network server for TCP (built here so sippy is imported on the reactor thread)."""
    from sippy.Core.EventDispatcher import ED2
    from sippy.Network_server import Network_server, Network_server_opts, Remote_address
    from sippy.Time.MonoTime import MonoTime

    class TcpTransport(Network_server):  # type: ignore[misc]
        transport = "tcp"

        def __init__(self) -> None:
            tm = config["_sip_tm"]
            super().__init__(Network_server_opts((host, port), tm.handleIncoming))
            self._conns: dict[tuple[str, int], socket.socket] = {}
            self._lock = threading.Lock()
            self._sender = threading.Thread(
                target=self._send_loop, name="sip-tcp-send", daemon=True
            )
            self._sender.start()

        def _send_loop(self) -> None:
            while True:
                item = self.sendqueue.get()
                if item is None:
                    return
                data, address = item
                try:
                    self._conn(tuple(address)).sendall(data)
                except OSError as exc:
                    log.warning("SIP over TCP: cannot send to the trunk: %s", exc)
                    self._drop(tuple(address))

        def _conn(self, address: tuple[str, int]) -> socket.socket:
            with self._lock:
                conn = self._conns.get(address)
                if conn is None:
                    conn = socket.create_connection(address, timeout=10)
                    conn.settimeout(None)
                    self._conns[address] = conn
                    reader = threading.Thread(
                        target=self._read_loop, args=(conn, address), name="sip-tcp-read",
                        daemon=True,
                    )  # fmt: skip
                    reader.start()
                return conn

        def _drop(self, address: tuple[str, int]) -> None:
            with self._lock:
                conn = self._conns.pop(address, None)
            if conn is not None:
                conn.close()

        def _read_loop(self, conn: socket.socket, address: tuple[str, int]) -> None:
            buffer = b""
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    messages, buffer = split_messages(buffer + data)
                    for message in messages:
                        ED2.callFromThread(
                            self.handle_read, message, Remote_address(address, "tcp"), MonoTime()
                        )
            except (OSError, ValueError) as exc:
                log.info("SIP over TCP: connection to the trunk ended: %s", exc)
            finally:
                self._drop(address)

        def join(self) -> None:
            with self._lock:
                conns = list(self._conns.values())
                self._conns.clear()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._sender.join(2)

    return TcpTransport()


def install_tcp(config: dict[str, Any], host: str, port: int) -> None:
    """Route requests whose next hop is ``transport=tcp`` through a TCP transport."""
    from sippy.SipTransactionManager import SipTransactionManager

    config["_tcp_server"] = make_tcp_transport(config, host, port)
    if getattr(SipTransactionManager.newTransaction, "_outdial_tcp", False):
        return
    original = SipTransactionManager.newTransaction

    def new_transaction(self: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("userv") is None and len(args) < 3:
            _, transport = msg.getTarget()
            if str(transport).lower() == "tcp":
                kwargs["userv"] = self.global_config["_tcp_server"]
        return original(self, msg, *args, **kwargs)

    new_transaction._outdial_tcp = True  # type: ignore[attr-defined]
    SipTransactionManager.newTransaction = new_transaction

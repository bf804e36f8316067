"""Media and dialog robustness against SIPp: symmetric RTP for a far end behind NAT, and
answered calls ended when their line dies (no RTP, or a keepalive OPTIONS the far end does not
know)."""

# ruff: noqa: F811 - the fixtures imported from test_sip_carrier are parameters here
from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from outdial.clock import SystemClock
from outdial.domain.outcome import Outcome
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip.rtp import packet as rtp_packet
from outdial.telephony.sip.rtp import parse as rtp_parse
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import (
    place,
    request,
    run,
    template,  # noqa: F401 - a fixture, used by name
)


@pytest.fixture
def carrier_for(stack: Any, flite: Any, sphinx: Any, tmp_path: Path) -> Any:
    from outdial.telephony.sip.carrier import SipCarrier, Trunk

    def make(sipp: S.Sipp, **options: Any) -> SipCarrier:
        host, port = sipp.address
        return SipCarrier(
            stack, Trunk("test", host, port), SystemClock(), flite, sphinx,
            RecordingStore(tmp_path / "recordings"), stereo_recordings=True, **options,
        )  # fmt: skip

    return make


def test_silent_line_is_hung_up_after_the_rtp_timeout(
    carrier_for: Any, template: Any, tmp_path: Path
) -> None:
    # The far end answers and then sends no RTP at all: after 2 s the bot sends BYE.
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK
        + '  <recv request="BYE" timeout="40000"/>\n' + S._reply("200 OK", tag=False)
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "silent", body)
    carrier = carrier_for(sipp, rtp_timeout=2.0, keepalive=0)
    result = run(sipp, lambda: place(carrier, template, request(max_talk=40)))
    assert result.outcome is Outcome.CONNECTED and result.hangup_side == "media", sipp.log()
    assert carrier.dead_lines == {"media": 1}
    assert result.talk_seconds < 40
    assert sipp.succeeded() == 1, sipp.log()


RECV_OPTIONS = '  <recv request="OPTIONS" timeout="30000"/>\n'


def test_keepalive_answered_481_ends_the_call(
    carrier_for: Any, template: Any, tmp_path: Path
) -> None:
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK + RECV_OPTIONS
        + S._reply("481 Call/Transaction Does Not Exist", tag=False)
        + '  <recv request="BYE" timeout="30000"/>\n' + S._reply("200 OK", tag=False)
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "ka481", body)
    carrier = carrier_for(sipp, rtp_timeout=0, keepalive=1.0)
    result = run(sipp, lambda: place(carrier, template, request(max_talk=40)))
    assert result.outcome is Outcome.CONNECTED and result.hangup_side == "session", sipp.log()
    assert carrier.dead_lines == {"session": 1}
    assert sipp.succeeded() == 1, sipp.log()


def test_keepalive_answered_keeps_the_call(carrier_for: Any, template: Any, tmp_path: Path) -> None:
    # Two OPTIONS answered (200, then 405 as a far end without OPTIONS would): the call goes on
    # until its talk limit.
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK
        + RECV_OPTIONS + S._reply("200 OK", tag=False)
        + RECV_OPTIONS + S._reply("405 Method Not Allowed", tag=False)
        + '  <recv request="BYE" timeout="30000"/>\n' + S._reply("200 OK", tag=False)
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "ka200", body)
    carrier = carrier_for(sipp, rtp_timeout=0, keepalive=2.0)  # at 2 s and 4 s, not 6
    result = run(sipp, lambda: place(carrier, template, request(max_talk=5)))
    assert result.hangup_side == "limit", sipp.log()
    assert not carrier.dead_lines
    log = sipp.messages.read_text(errors="replace")
    options = S.received(log, "OPTIONS")
    assert len(options) >= 2, sipp.log()
    (invite,) = S.received(log, "INVITE")
    assert S.header(options[0], "Call-ID") == S.header(invite, "Call-ID")  # in the dialog
    assert sipp.succeeded() == 1, sipp.log()


def _ok_with_media_port(port: int) -> str:
    sdp = S.answer_sdp().replace("[media_port]", str(port))
    return S._reply("200 OK", sdp=sdp, retrans=True)


def _our_media_port(sipp: S.Sipp, deadline: float) -> int:
    """Our RTP port, read from the INVITE's SDP in SIPp's message trace."""
    while time.monotonic() < deadline:
        if sipp.messages.exists():
            found = re.search(r"^m=audio (\d+)", sipp.messages.read_text(errors="replace"), re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError("no INVITE reached SIPp")


def _far_end_behind_nat(sipp: S.Sipp, got: list[bytes]) -> None:
    """The far end's real media socket: its address is not the one its SDP names. It sends
    RTP for up to 6 s and keeps what comes back."""
    port = _our_media_port(sipp, time.monotonic() + 30)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.02)
        ssrc, end = 0x1234, time.monotonic() + 6
        for n in range(300):
            if time.monotonic() > end:
                break
            sock.sendto(rtp_packet(0, n, n * 160, ssrc, b"\xff" * 160), ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                got.append(sock.recv(2048))


def test_symmetric_rtp_sends_where_the_far_ends_media_comes_from(
    carrier_for: Any, template: Any, tmp_path: Path
) -> None:
    # The SDP names a port nobody listens on (the far end's inside address behind NAT); its
    # RTP comes from another socket, which gets the bot's packets only if the bot sends them
    # to where the far end's packets came from.
    dead = S.free_port()
    body = S.RECV_INVITE + S.TRYING + _ok_with_media_port(dead) + S.RECV_ACK + S.RECV_BYE
    sipp = S.Sipp(tmp_path, "nat", body)
    carrier = carrier_for(sipp, barge_in=False)
    got: list[bytes] = []

    def call() -> Any:
        far_end = threading.Thread(target=_far_end_behind_nat, args=(sipp, got))
        far_end.start()
        try:
            return place(carrier, template, request(max_talk=5))
        finally:
            far_end.join(40)

    result = run(sipp, call)
    assert result.outcome is Outcome.CONNECTED, sipp.log()
    assert carrier.latched == 1
    assert len(got) > 20, len(got)  # the bot's 20 ms packets reached the real address
    assert all(rtp_parse(p) is not None for p in got)


def test_symmetric_rtp_off_sends_where_the_sdp_says(
    carrier_for: Any, template: Any, tmp_path: Path
) -> None:
    dead = S.free_port()
    body = S.RECV_INVITE + S.TRYING + _ok_with_media_port(dead) + S.RECV_ACK + S.RECV_BYE
    sipp = S.Sipp(tmp_path, "nat_off", body)
    carrier = carrier_for(sipp, barge_in=False, symmetric_rtp=False)
    got: list[bytes] = []

    def call() -> Any:
        far_end = threading.Thread(target=_far_end_behind_nat, args=(sipp, got))
        far_end.start()
        try:
            return place(carrier, template, request(max_talk=5))
        finally:
            far_end.join(40)

    result = run(sipp, call)
    assert result.outcome is Outcome.CONNECTED, sipp.log()
    assert carrier.latched == 0 and got == []

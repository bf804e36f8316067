"""Unit tests of the SIP carrier's parts that need no SIP peer: the sippy patches, SDP offer and
answer, RTP packets, reordering, RFC 4733 DTMF, paced sending (over loopback UDP), the codecs
and the two-track recorder.

sippy's reactor (``sippy.Core.EventDispatcher``) binds itself to the thread that first imports
it and the SIP stack refuses to start once it has been imported elsewhere, so nothing here may
import it: only ``sippy.SipURL``, ``sippy.SipHeader`` and what they pull in are used.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import socket
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.speech.audio import Audio, silence
from outdial.speech.g711 import alaw_encode, ulaw_encode
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip import rtp, sdp
from outdial.telephony.sip.codecs import G722Codec, Pcma, Pcmu, codec_for
from outdial.telephony.sip.recorder import Recorder
from outdial.telephony.sip.rtp import MAX_FILL, Reorder, RtpSession, open_rtp, packet, parse

REACTOR = "sippy.Core.EventDispatcher"
ROOT = Path(__file__).resolve().parents[2]


_reactor_before: list[bool] = []


@pytest.fixture(scope="module", autouse=True)
def _note_the_reactor() -> None:
    """Whether the reactor was imported before this module's tests: a SIP stack started by
    another module of the same run imports it (in its own thread), legitimately."""
    _reactor_before.append(REACTOR in sys.modules)


def tone(seconds: float, freq: float = 440.0, rate: int = 8000, level: float = 8000.0) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((level * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes(), rate)


def constant(value: int, samples: int = 160, rate: int = 8000) -> Audio:
    return Audio(np.full(samples, value, dtype="<i2").tobytes(), rate)


# --- the sippy patches (no reactor) -----------------------------------------------------------


def _unpatched_get_taddr(url_class: Any) -> Callable[..., Any]:
    """sippy's own SipURL.getTAddr, behind any of our wrappers (a started stack installs one)."""
    fn = url_class.getTAddr
    while getattr(fn, "_outdial", False):
        fn = inspect.getclosurevars(fn).nonlocals["original"]
    return fn  # type: ignore[no-any-return]


def test_lower_case_transports_makes_next_hop_transports_lower_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("sippy")
    from sippy.SipURL import SipURL

    from outdial.telephony.sip.stack import lower_case_transports

    original = _unpatched_get_taddr(SipURL)
    monkeypatch.setattr(SipURL, "getTAddr", original)  # restored after the test
    url = "sip:127.0.0.1:5070;transport=UDP"
    assert SipURL(url).getTAddr() == (("127.0.0.1", 5070), "UDP")  # sippy as shipped

    lower_case_transports()
    assert SipURL(url).getTAddr() == (("127.0.0.1", 5070), "udp")
    assert SipURL("sip:127.0.0.1:5070;transport=TCP").getTAddr()[1] == "tcp"
    assert SipURL("sip:127.0.0.1:5070").getTAddr() == (("127.0.0.1", 5070), "udp")  # default
    patched = SipURL.getTAddr

    lower_case_transports()  # a second call (the stack calls it again) changes nothing
    assert SipURL.getTAddr is patched
    assert inspect.getclosurevars(SipURL.getTAddr).nonlocals["original"] is original
    assert SipURL(url).getTAddr() == (("127.0.0.1", 5070), "udp")


def test_verbatim_header_keeps_the_exact_name() -> None:
    pytest.importorskip("sippy")
    from sippy.SipHeader import SipHeader

    from outdial.telephony.sip.stack import verbatim_header

    # What sippy does with an unknown header name on its own: re-capitalised.
    assert str(SipHeader(name="X-Campaign-Id", bodys="42")) == "X-campaign-id: 42"

    header = verbatim_header("X-Campaign-Id", "42")
    assert str(header) == "X-Campaign-Id: 42"
    assert header.localStr() == "X-Campaign-Id: 42"
    assert header.localStr(compact=True) == "X-Campaign-Id: 42"
    copy = header.getCopy()  # requests copy their headers (e.g. for an authenticated retry)
    assert str(copy) == "X-Campaign-Id: 42"
    assert str(SipHeader(name=header.name, body=header.getBCopy())) == "X-Campaign-Id: 42"


def test_the_sippy_parts_used_do_not_import_the_reactor() -> None:
    """In a fresh interpreter: importing the SIP modules and this test module, patching the
    transports and building a verbatim header leave sippy's reactor unimported."""
    pytest.importorskip("sippy")
    code = (
        "import sys\n"
        "import outdial.telephony.sip.carrier, outdial.telephony.sip.session\n"
        "import tests.unit.test_sip_units\n"
        "from outdial.telephony.sip.stack import lower_case_transports, verbatim_header\n"
        "from sippy.SipURL import SipURL\n"
        "lower_case_transports()\n"
        "SipURL('sip:127.0.0.1:5070;transport=UDP').getTAddr()\n"
        "str(verbatim_header('X-Campaign-Id', '42'))\n"
        f"print({REACTOR!r} in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- SDP --------------------------------------------------------------------------------------


def test_offer_lists_our_codecs_dtmf_and_address() -> None:
    text = sdp.offer("192.0.2.10", 40000, 1234)
    lines = text.split("\r\n")
    assert text.endswith("\r\n") and lines[0] == "v=0"
    assert "o=outdial 1234 1234 IN IP4 192.0.2.10" in lines
    assert "c=IN IP4 192.0.2.10" in lines
    assert "m=audio 40000 RTP/AVP 0 8 9 101" in lines
    for rtpmap in ("0 PCMU/8000", "8 PCMA/8000", "9 G722/8000", "101 telephone-event/8000"):
        assert f"a=rtpmap:{rtpmap}" in lines
    assert "a=fmtp:101 0-16" in lines
    assert "a=ptime:20" in lines and "a=sendrecv" in lines
    # What we offer is what we accept back.
    assert sdp.answer(text) == sdp.Media("192.0.2.10", 40000, 0, 101)


def _answer(*media: str, session_c: str | None = "c=IN IP4 198.51.100.1") -> str:
    head = ["v=0", "o=peer 1 1 IN IP4 198.51.100.1", "s=-"]
    if session_c:
        head.append(session_c)
    return "\r\n".join([*head, "t=0 0", *media]) + "\r\n"


def test_answer_takes_the_first_payload_type_we_support() -> None:
    text = _answer(
        "m=audio 4000 RTP/AVP 18 8 0 101",
        "a=rtpmap:18 G729/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
    )
    assert sdp.answer(text) == sdp.Media("198.51.100.1", 4000, 8, 101)


def test_answer_reads_a_dynamic_telephone_event_type() -> None:
    text = _answer(
        "m=audio 4000 RTP/AVP 0 96", "a=rtpmap:0 PCMU/8000", "a=rtpmap:96 TELEPHONE-EVENT/8000"
    )
    assert sdp.answer(text).dtmf == 96


def test_answer_without_telephone_event_has_no_dtmf_type() -> None:
    assert sdp.answer(_answer("m=audio 4000 RTP/AVP 9", "a=rtpmap:9 G722/8000")).dtmf is None


def test_answer_media_level_address_overrides_the_session_level_one() -> None:
    text = _answer("m=audio 4000 RTP/AVP 0", "c=IN IP4 203.0.113.7", "a=rtpmap:0 PCMU/8000")
    assert sdp.answer(text).ip == "203.0.113.7"
    # Only a media-level address is fine too.
    text = _answer("m=audio 4000 RTP/AVP 0", "c=IN IP4 203.0.113.8", session_c=None)
    assert sdp.answer(text).ip == "203.0.113.8"


def test_answer_static_payload_type_without_rtpmap() -> None:
    assert sdp.answer(_answer("m=audio 4000 RTP/AVP 8")) == sdp.Media("198.51.100.1", 4000, 8, None)


def test_answer_static_number_mapped_to_another_codec_is_not_taken() -> None:
    # 0 remapped (unusually) to something we do not speak: skipped for the next one.
    text = _answer("m=audio 4000 RTP/AVP 0 8", "a=rtpmap:0 opus/48000/2")
    assert sdp.answer(text).codec == 8


def test_answer_uses_the_audio_stream_not_others() -> None:
    text = _answer(
        "m=audio 4000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "m=video 5000 RTP/AVP 96",
        "c=IN IP4 203.0.113.9",
        "a=rtpmap:96 H264/90000",
    )
    assert sdp.answer(text) == sdp.Media("198.51.100.1", 4000, 0, None)


@pytest.mark.parametrize(
    "media",
    [
        ("m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"),  # rejected stream
        ("m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"),  # no audio at all
        (),
    ],
    ids=["port-0", "video-only", "no-media"],
)
def test_answer_without_active_audio_is_an_error(media: tuple[str, ...]) -> None:
    with pytest.raises(sdp.SdpError, match="no active audio"):
        sdp.answer(_answer(*media))


def test_answer_without_an_address_is_an_error() -> None:
    with pytest.raises(sdp.SdpError):
        sdp.answer(_answer("m=audio 4000 RTP/AVP 0", session_c=None))


def test_answer_with_only_unsupported_codecs_names_them() -> None:
    text = _answer("m=audio 4000 RTP/AVP 18 3 101", "a=rtpmap:18 G729/8000", "a=rtpmap:3 GSM/8000")
    with pytest.raises(sdp.SdpError, match=r"no codec in common.*\[18, 3, 101\]"):
        sdp.answer(text)


def test_answer_ignores_the_address_of_a_preceding_video_stream() -> None:
    text = _answer(
        "m=video 5000 RTP/AVP 96",
        "c=IN IP4 203.0.113.9",
        "a=rtpmap:96 H264/90000",
        "m=audio 4000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
    )
    assert sdp.answer(text).ip == "198.51.100.1"


def test_answer_with_an_unreadable_port_is_an_sdp_error() -> None:
    # RFC 4566 allows "port/count"; the port is read from it.
    assert sdp.answer(_answer("m=audio 4000/2 RTP/AVP 0")).port == 4000
    with pytest.raises(sdp.SdpError, match="malformed"):
        sdp.answer(_answer("m=audio four RTP/AVP 0"))


# --- RTP packets ------------------------------------------------------------------------------


def test_packet_parse_round_trip() -> None:
    data = packet(8, 0x1234, 0xDEADBEEF, 0xCAFEBABE, b"\x01\x02\x03")
    assert len(data) == 12 + 3
    assert data[0] == 0x80 and data[1] == 8
    assert int.from_bytes(data[8:12], "big") == 0xCAFEBABE
    assert parse(data) == (8, 0x1234, 0xDEADBEEF, b"\x01\x02\x03")


def test_packet_marker_bit_is_not_part_of_the_payload_type() -> None:
    data = packet(0, 1, 2, 3, b"x", marker=True)
    assert data[1] == 0x80
    assert parse(data) == (0, 1, 2, b"x")


def test_packet_wraps_sequence_and_timestamp() -> None:
    assert parse(packet(0, 65536 + 5, 2**32 + 7, 1, b""))[:3] == (0, 5, 7)  # type: ignore[index]


def _header(first: int, second: int = 0, seq: int = 1, ts: int = 2, ssrc: int = 3) -> bytes:
    return rtp.HEADER.pack(first, second, seq, ts, ssrc)


def test_parse_skips_csrcs() -> None:
    csrcs = b"".join(i.to_bytes(4, "big") for i in range(3))
    assert parse(_header(0x80 | 3) + csrcs + b"audio") == (0, 1, 2, b"audio")


def test_parse_skips_a_header_extension() -> None:
    ext = b"\xbe\xde" + (2).to_bytes(2, "big") + b"\x00" * 8  # profile, 2 words, data
    assert parse(_header(0x90) + ext + b"audio") == (0, 1, 2, b"audio")
    assert parse(_header(0x90 | 1) + b"\x00" * 4 + ext + b"audio") == (0, 1, 2, b"audio")


def test_parse_removes_padding() -> None:
    assert parse(_header(0xA0) + b"audio" + b"\x00\x00\x03") == (0, 1, 2, b"audio")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _header(0x80)[:11],  # short header
        _header(0x40) + b"audio",  # version 1
        _header(0x00) + b"audio",  # version 0
        _header(0xC0) + b"audio",  # version 3
        _header(0x80 | 2) + b"\x00" * 4,  # claims two CSRCs, holds one
        _header(0x90) + b"\xbe\xde",  # extension header cut short
        _header(0x90) + b"\xbe\xde\x00\x05",  # extension longer than the packet
        _header(0xA0) + b"ab\x09",  # more padding than payload
    ],
    ids=["empty", "short", "v1", "v0", "v3", "csrc-cut", "ext-cut", "ext-long", "padding-long"],
)
def test_parse_rejects_malformed_packets(data: bytes) -> None:
    assert parse(data) is None


# --- reordering -------------------------------------------------------------------------------


def push_all(r: Reorder, seqs: list[int]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for s in seqs:
        out += r.push(s, b"%d" % s)
    return out


def test_reorder_passes_packets_in_order_at_once() -> None:
    r = Reorder()
    for s in range(100, 110):
        assert r.push(s, b"%d" % s) == [b"%d" % s]


def test_reorder_puts_a_swapped_pair_back_in_order() -> None:
    r = Reorder()
    assert r.push(10, b"10") == [b"10"]
    assert r.push(12, b"12") == []  # held for 11
    assert r.push(11, b"11") == [b"11", b"12"]
    assert r.push(13, b"13") == [b"13"]


def test_reorder_lost_packet_becomes_none_after_the_hold() -> None:
    r = Reorder(hold=3)
    assert r.push(1, b"1") == [b"1"]
    # 2 is lost; 3, 4, 5 wait for it ...
    assert push_all(r, [3, 4, 5]) == []
    # ... and one more than the hold gives up on it: a gap, then everything waiting.
    assert r.push(6, b"6") == [None, b"3", b"4", b"5", b"6"]
    assert r.push(2, b"2") == []  # too late: its slot was played as silence
    assert r.push(7, b"7") == [b"7"]


def test_reorder_hold_of_zero_fills_at_once() -> None:
    r = Reorder(hold=0)
    assert push_all(r, [1, 3]) == [b"1", None, b"3"]


def test_reorder_drops_duplicates() -> None:
    r = Reorder()
    assert push_all(r, [1, 2, 2, 3, 1, 3]) == [b"1", b"2", b"3"]
    # A duplicate of a packet still waiting replaces it, and is delivered once.
    assert push_all(r, [5, 5, 4]) == [b"4", b"5"]


def test_reorder_sequence_wraps_around() -> None:
    r = Reorder()
    assert push_all(r, [65534, 65535, 0, 1]) == [b"65534", b"65535", b"0", b"1"]
    r = Reorder()
    assert push_all(r, [65535, 1, 0]) == [b"65535", b"0", b"1"]  # swapped across the wrap
    r = Reorder()
    assert push_all(r, [65534, 0, 1, 2, 3]) == [b"65534", None, b"0", b"1", b"2", b"3"]


def test_reorder_big_jump_restarts_without_filling() -> None:
    r = Reorder()
    assert push_all(r, [1, 2]) == [b"1", b"2"]
    assert r.push(2 + MAX_FILL + 100, b"new") == [b"new"]  # a new stream: no run of Nones
    assert r.push(3 + MAX_FILL + 100, b"next") == [b"next"]
    assert r.push(3, b"3") == []  # the old stream is over


def test_reorder_gap_below_max_fill_is_filled() -> None:
    r = Reorder()
    r.push(0, b"0")
    gap = MAX_FILL - 10  # well below the limit, with the packets held after it
    out = push_all(r, [gap, gap + 1, gap + 2, gap + 3])
    assert out == [None] * (gap - 1) + [b"%d" % s for s in range(gap, gap + 4)]


def test_reorder_restarts_on_a_new_stream_behind_the_old_one() -> None:
    r = Reorder()
    assert push_all(r, [1000, 1001]) == [b"1000", b"1001"]
    assert push_all(r, [40000, 40001]) == [b"40000", b"40001"]


# --- receiving: audio and RFC 4733 DTMF -------------------------------------------------------


def in_loop(test: Callable[[], None]) -> Callable[[], None]:
    """Run a test's body inside a running event loop, where the loop delivers datagrams."""

    @functools.wraps(test)
    def run() -> None:
        async def body() -> None:
            test()

        asyncio.run(body())

    return run


class Received:
    def __init__(self) -> None:
        self.audio: list[Audio] = []
        self.keys: list[str] = []

    def session(self, codec: Any = None, pt: int = 0, dtmf_pt: int | None = 101) -> RtpSession:
        s = RtpSession(self.audio.append, self.keys.append)
        s.codec, s.pt, s.dtmf_pt = codec or Pcmu(), pt, dtmf_pt
        return s


ADDR = ("127.0.0.1", 4000)


def event(key: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return bytes([key, (0x80 if end else 0) | volume]) + duration.to_bytes(2, "big")


def send_event(s: RtpSession, key: int, ts: int, seq: int, pt: int = 101) -> int:
    """One key press as RFC 4733 sends it: updates, then the end packet three times."""
    for i in range(4):
        s.datagram_received(packet(pt, seq, ts, 7, event(key, False, 160 * (i + 1)), i == 0), ADDR)
        seq += 1
    for _ in range(3):
        s.datagram_received(packet(pt, seq, ts, 7, event(key, True, 800)), ADDR)
        seq += 1
    return seq


@in_loop
def test_dtmf_event_is_reported_once_when_it_ends() -> None:
    got = Received()
    s = got.session()
    for i in range(4):  # the key is still held: nothing yet
        s.datagram_received(packet(101, 10 + i, 8000, 7, event(5, False, 160 * (i + 1))), ADDR)
    assert got.keys == []
    for i in range(3):  # the end, sent three times
        s.datagram_received(packet(101, 14 + i, 8000, 7, event(5, True, 800)), ADDR)
    assert got.keys == ["5"]
    assert got.audio == []  # events are not audio


@in_loop
def test_dtmf_each_event_is_reported() -> None:
    got = Received()
    s = got.session()
    seq = send_event(s, 5, 8000, 1)
    seq = send_event(s, 5, 9600, seq)  # the same key again: a new timestamp, a new event
    seq = send_event(s, 10, 11200, seq)
    send_event(s, 11, 12800, seq)
    assert got.keys == ["5", "5", "*", "#"]


@in_loop
def test_dtmf_uses_the_negotiated_event_type() -> None:
    got = Received()
    s = got.session(dtmf_pt=96)
    send_event(s, 1, 8000, 1, pt=101)  # not the negotiated type: ignored
    send_event(s, 1, 9600, 100, pt=96)
    assert got.keys == ["1"]
    assert got.audio == []


@in_loop
def test_dtmf_ignores_unknown_events_and_short_payloads() -> None:
    got = Received()
    s = got.session()
    s.datagram_received(packet(101, 1, 8000, 7, event(16, True, 800)), ADDR)  # flash
    s.datagram_received(packet(101, 2, 9600, 7, b"\x05\x80"), ADDR)
    assert got.keys == []


@in_loop
def test_received_audio_is_decoded_in_order() -> None:
    got = Received()
    s = got.session(Pcmu(), pt=0)
    frames = [constant(v) for v in (1000, 2000, 3000, 4000)]
    payloads = [ulaw_encode(f) for f in frames]
    for seq in (50, 52, 51, 53):  # 51 and 52 swapped on the way
        s.datagram_received(packet(0, seq, seq * 160, 7, payloads[seq - 50]), ADDR)
    assert [int(a.array()[0]) for a in got.audio] == [
        int(Pcmu().decode(p).array()[0]) for p in payloads
    ]
    assert all(a.samples == 160 and a.rate == 8000 for a in got.audio)
    assert [round(int(a.array()[0]), -3) for a in got.audio] == [1000, 2000, 3000, 4000]
    assert s.received == 4


@in_loop
def test_received_audio_of_other_payload_types_is_ignored() -> None:
    got = Received()
    s = got.session(Pcma(), pt=8)
    s.datagram_received(packet(0, 1, 160, 7, ulaw_encode(constant(1000))), ADDR)  # PCMU
    s.datagram_received(packet(13, 2, 320, 7, b"\x40"), ADDR)  # comfort noise
    s.datagram_received(b"\x00" * 20, ADDR)  # not RTP
    assert got.audio == []
    s.datagram_received(packet(8, 3, 480, 7, alaw_encode(constant(-2000))), ADDR)
    assert len(got.audio) == 1 and round(int(got.audio[0].array()[0]), -2) == -2000


@in_loop
def test_received_lost_packet_becomes_silence() -> None:
    got = Received()
    s = got.session(Pcmu(), pt=0)
    payload = ulaw_encode(constant(1000))
    for seq in (1, 3, 4, 5, 6):
        s.datagram_received(packet(0, seq, seq * 160, 7, payload), ADDR)
    assert len(got.audio) == 6
    assert not got.audio[1].array().any()  # 2 never came
    assert got.audio[1].samples == 160


@in_loop
def test_audio_before_the_codec_is_known_is_ignored() -> None:
    got = Received()
    s = RtpSession(got.audio.append, got.keys.append)
    s.datagram_received(packet(0, 1, 160, 7, ulaw_encode(constant(1000))), ADDR)
    assert got.audio == []


def test_dtmf_through_a_started_session() -> None:
    async def main() -> list[str]:
        got = Received()
        s = await open_rtp("127.0.0.1")
        s.on_audio, s.on_dtmf = got.audio.append, got.keys.append
        try:
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind(("127.0.0.1", 0))
            with sink:
                s.start(sink.getsockname(), Pcmu(), 0, 101)
                send_event(s, 5, 8000, 1)
                await asyncio.sleep(0)
        finally:
            s.close()
            await s.closed()
        return got.keys

    assert asyncio.run(main()) == ["5"]


# --- sending ----------------------------------------------------------------------------------


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.arrived = asyncio.Event()
        self.want = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)
        if len(self.packets) >= self.want:
            self.arrived.set()


async def capture(audio: Audio, codec: Any, pt: int, count: int) -> tuple[list[bytes], Any]:
    """Send ``audio`` from a real RTP session to a loopback socket; the first ``count``
    packets, and the session."""
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    sink.want = count
    session = await open_rtp("127.0.0.1")
    try:
        session.start(transport.get_extra_info("sockname"), codec, pt, 101)
        session.play(audio)
        assert session.playing.is_set()
        await asyncio.wait_for(sink.arrived.wait(), 10)
    finally:
        session.close()
        await session.closed()
        transport.close()
    return sink.packets[:count], session


def test_sending_paces_numbered_packets_and_fills_with_silence() -> None:
    audio = tone(0.2)  # 10 frames
    packets, session = asyncio.run(capture(audio, Pcmu(), 0, 16))
    assert len(packets) == 16
    headers = [rtp.HEADER.unpack_from(p) for p in packets]
    assert all(h[0] == 0x80 for h in headers)  # version 2, no padding/extension/CSRC
    assert headers[0][1] == 0x80  # marker on the first packet, payload type 0
    assert all(h[1] == 0 for h in headers[1:])
    seqs = [h[2] for h in headers]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    stamps = [h[3] for h in headers]
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(stamps))
    assert {h[4] for h in headers} == {session.ssrc}
    assert all(len(p) == 12 + 160 for p in packets)
    # The prompt, frame by frame, then silence (mu-law 0xFF) once nothing is queued.
    expected = [ulaw_encode(f) for f in audio.frames()]
    assert [p[12:] for p in packets[:10]] == expected
    assert all(p[12:] == b"\xff" * 160 for p in packets[10:])
    assert session.sent >= 16
    assert not session.playing.is_set()  # the queue ran dry


def test_sending_g722_uses_the_8000_clock_for_16_khz_audio() -> None:
    pytest.importorskip("G722")
    packets, _ = asyncio.run(capture(tone(0.1, rate=16000), G722Codec(), 9, 6))
    headers = [rtp.HEADER.unpack_from(p) for p in packets]
    assert [h[1] & 0x7F for h in headers] == [9] * 6
    assert all((b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(headers))
    assert all(len(p) == 12 + 160 for p in packets)  # 64 kbit/s: 160 bytes per 20 ms


def test_stop_playing_drops_what_is_queued() -> None:
    async def main() -> None:
        s = RtpSession(lambda _: None, lambda _: None)
        s.codec = Pcmu()
        s.play(tone(1.0))
        assert len(s.queue) == 50 and s.playing.is_set()
        s.stop_playing()
        assert not s.queue
        await asyncio.wait_for(s.drained(), 1)

    asyncio.run(main())


def test_nothing_is_sent_before_start() -> None:
    async def main() -> int:
        s = await open_rtp("127.0.0.1")
        try:
            s.play(tone(0.1))
            await asyncio.sleep(0.1)
        finally:
            s.close()
            await s.closed()
        return s.sent

    assert asyncio.run(main()) == 0


# --- codecs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [Pcmu(), Pcma()], ids=["pcmu", "pcma"])
def test_g711_frame_round_trip(codec: Any) -> None:
    frame = tone(0.02)
    payload = codec.encode(frame)
    assert len(payload) == 160
    back = codec.decode(payload)
    assert back.rate == 8000 and back.samples == 160
    x, y = frame.array().astype(float), back.array().astype(float)
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 30, snr


def test_g711_encodes_16_khz_audio_at_8_khz() -> None:
    assert len(Pcmu().encode(tone(0.02, rate=16000))) == 160
    assert len(Pcma().encode(tone(0.02, rate=16000))) == 160


def test_codec_for_payload_types() -> None:
    assert isinstance(codec_for(0), Pcmu) and isinstance(codec_for(8), Pcma)
    with pytest.raises(ValueError, match="18"):
        codec_for(18)


def test_g722_frame_sizes() -> None:
    pytest.importorskip("G722")
    codec = codec_for(9)
    assert isinstance(codec, G722Codec) and codec.rate == 16000
    payload = codec.encode(tone(0.02, rate=16000))
    assert len(payload) == 160
    back = codec.decode(payload)
    assert back.rate == 16000 and back.samples == 320
    # 8 kHz audio is resampled first: still 20 ms of 64 kbit/s.
    assert len(G722Codec().encode(tone(0.02))) == 160


def dominant_hz(audio: Audio) -> float:
    a = audio.array().astype(float)
    spectrum = np.abs(np.fft.rfft(a * np.hanning(len(a))))
    return float(np.fft.rfftfreq(len(a), 1 / audio.rate)[int(np.argmax(spectrum))])


def test_g722_tone_survives_a_round_trip() -> None:
    pytest.importorskip("G722")
    enc, dec = G722Codec(), G722Codec()  # one per direction, as in a call
    # A chirp (not periodic, so the best lag is unique) and a 1 kHz tone.
    t = np.arange(16000) / 16000
    chirp = Audio(
        (8000 * np.sin(2 * np.pi * (300 * t + 1500 * t * t))).astype("<i2").tobytes(), 16000
    )
    for signal in (chirp, tone(1.0, 1000.0, rate=16000)):
        out = Audio(b"".join(dec.decode(enc.encode(f)).pcm for f in signal.frames()), 16000)
        assert out.samples == signal.samples
        x, y = signal.array().astype(float), out.array().astype(float)
        best = max(np.corrcoef(x[800 : len(x) - lag], y[800 + lag :])[0, 1] for lag in range(0, 64))
        assert best > 0.9, best
    assert abs(dominant_hz(out) - 1000) <= 2


# --- recording --------------------------------------------------------------------------------


_recorders: list[Recorder] = []


@pytest.fixture(autouse=True)
def _close_recorders() -> Iterator[None]:
    """Recorders keep their tracks in temporary files: close them after each test."""
    yield
    while _recorders:
        _recorders.pop().close()


def test_recorder_tracks_are_as_long_as_the_longer_one() -> None:
    r = Recorder()
    _recorders.append(r)
    for _ in range(3):
        r.said(constant(1000))
    for _ in range(5):
        r.heard(constant(-3000))
    mixed = np.frombuffer(r.mixed(), dtype="<i2")
    assert len(mixed) == 5 * 160
    assert (mixed[: 3 * 160] == -2000).all() and (mixed[3 * 160 :] == -3000).all()
    callee, bot = r.tracks()
    assert len(callee) == len(bot) == 5 * 160


def test_recorder_stereo_is_callee_left_and_bot_right() -> None:
    r = Recorder()
    _recorders.append(r)
    for _ in range(4):
        r.said(constant(1000))
    for _ in range(2):
        r.heard(constant(-3000))
    stereo = np.frombuffer(r.stereo(), dtype="<i2").reshape(-1, 2)
    assert stereo.shape == (4 * 160, 2)
    assert (stereo[: 2 * 160, 0] == -3000).all() and (stereo[2 * 160 :, 0] == 0).all()
    assert (stereo[:, 1] == 1000).all()


def test_recorder_mix_clips_instead_of_wrapping() -> None:
    r = Recorder()
    _recorders.append(r)
    r.said(constant(30000))
    r.heard(constant(30000))
    assert (np.frombuffer(r.mixed(), dtype="<i2") == 32767).all()


def test_recorder_takes_16_khz_frames_at_8_khz() -> None:
    r = Recorder()
    _recorders.append(r)
    r.said(silence(0.02, 16000))  # a G.722 call's frame
    r.heard(silence(0.02, 16000))
    assert len(r.mixed()) == 160 * 2


def _wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getnchannels(), w.getframerate(), data


def test_recorder_save_writes_mono_and_optionally_stereo(tmp_path: Path) -> None:
    r = Recorder()
    _recorders.append(r)
    for _ in range(2):
        r.said(constant(1000))
    for _ in range(3):
        r.heard(constant(-3000))
    store = RecordingStore(tmp_path)

    mono_only = r.save(store)
    assert {p.name for p in tmp_path.iterdir()} == {f"{mono_only}.wav"}

    rec = r.save(store, stereo=True)
    assert rec != mono_only
    channels, rate, data = _wav(tmp_path / f"{rec}.wav")
    assert (channels, rate, len(data)) == (1, 8000, 3 * 160)
    assert data[0] == -2000 and data[-1] == -3000
    channels, rate, data = _wav(tmp_path / f"{rec}-stereo.wav")
    assert (channels, rate, len(data)) == (2, 8000, 2 * 3 * 160)
    pairs = data.reshape(-1, 2)
    assert (pairs[:, 0] == -3000).all()
    assert (pairs[: 2 * 160, 1] == 1000).all() and (pairs[2 * 160 :, 1] == 0).all()


# --- last: nothing above imported the reactor -------------------------------------------------


def test_zz_reactor_still_not_imported() -> None:
    """Runs last in this module; the subprocess test above checks the same in any run."""
    if not _reactor_before[0]:
        assert REACTOR not in sys.modules


def test_a_call_on_an_unknown_trunk_is_rejected_for_good_without_dialing() -> None:
    import types

    from outdial.domain.conversation import CallRequest, HangUpAtOnce
    from outdial.telephony.sip.carrier import SipCarrier, UnknownTrunk
    from outdial.testing import FakeClock

    def lookup(name: str) -> Any:
        raise UnknownTrunk(f"no SIP trunk named {name!r}")

    stack = types.SimpleNamespace(bound=("127.0.0.1", 5060))
    carrier = SipCarrier(stack, lookup, FakeClock(), None, None)  # type: ignore[arg-type]
    assert carrier.max_cps is None  # no default trunk: the dialer does not pace by one
    request = CallRequest("15551230000", "", 30, 60, trunk="nope")
    with pytest.raises(UnknownTrunk) as raised:
        asyncio.run(carrier.place(request, HangUpAtOnce(), asyncio.Event()))
    assert raised.value.retryable is False  # the dialer records the attempt failed
    assert carrier.placed == 0


def test_ring_duration_rounds_and_talk_counts_started_seconds() -> None:
    from datetime import UTC, datetime, timedelta

    from outdial.domain.outcome import Outcome
    from outdial.telephony.carrier import CallResult

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    cancelled = CallResult(
        Outcome.NO_ANSWER, 487, t0, t0 + timedelta(seconds=60.004), ringing_at=t0
    )
    assert cancelled.ring_seconds == 60  # not 61 for 4 ms of jitter
    answered = CallResult(
        Outcome.CONNECTED, 200, t0, t0 + timedelta(seconds=70.2), ringing_at=t0,
        answered_at=t0 + timedelta(seconds=9.6),
    )  # fmt: skip
    assert answered.ring_seconds == 10 and answered.talk_seconds == 61


def test_tcp_framing_by_content_length() -> None:
    from outdial.telephony.sip.tcp import MAX_MESSAGE, split_messages

    one = b"SIP/2.0 200 OK\r\nCall-ID: a\r\nContent-Length:   4\r\n\r\nv=0\n"
    two = b"BYE sip:x SIP/2.0\r\nl: 0\r\n\r\n"
    assert split_messages(one + two) == ([one, two], b"")
    # A message cut anywhere waits for the rest; keep-alive CRLFs between messages are skipped.
    for cut in range(1, len(one)):
        got, rest = split_messages(one[:cut])
        assert got == [] and rest == one[:cut].lstrip(b"\r\n")
        assert split_messages(rest + one[cut:] + b"\r\n\r\n" + two)[0] == [one, two]
    no_length = b"OPTIONS sip:x SIP/2.0\r\nCall-ID: b\r\n\r\n"
    assert split_messages(no_length) == ([no_length], b"")
    with pytest.raises(ValueError, match="too long"):
        split_messages(b"X" * (MAX_MESSAGE + 1))
    with pytest.raises(ValueError, match="body too long"):
        split_messages(b"SIP/2.0 200 OK\r\nContent-Length: 999999\r\n\r\n")


def _media(s: RtpSession, seq: int, source: tuple[str, int]) -> None:
    s.datagram_received(packet(0, seq, seq * 160, 9, b"\xff" * 160), source)


def test_symmetric_rtp_latches_onto_the_first_source_and_ignores_strangers() -> None:
    async def main() -> None:
        got = Received()
        s = RtpSession(got.audio.append, got.keys.append)
        s.start(("10.0.0.1", 4000), Pcmu(), 0, 101)  # the SDP's (inside) address
        assert s.remote == ("10.0.0.1", 4000)
        _media(s, 1, ("198.51.100.7", 30000))  # the NAT's outside address
        assert s.remote == s.latched == ("198.51.100.7", 30000)
        before = s.received
        _media(s, 2, ("203.0.113.9", 5000))  # a stranger while ours is alive
        assert s.remote == ("198.51.100.7", 30000) and s.received == before
        # The same answer again (a re-sent 200) keeps the latch; a new address starts over.
        s.start(("10.0.0.1", 4000), Pcmu(), 0, 101)
        assert s.remote == ("198.51.100.7", 30000)
        s.start(("10.0.0.2", 4002), Pcmu(), 0, 101)
        assert s.remote == ("10.0.0.2", 4002) and s.latched is None
        s.close()

    asyncio.run(main())


def test_symmetric_rtp_moves_to_a_new_source_once_the_old_one_is_quiet() -> None:
    async def main() -> None:
        got = Received()
        s = RtpSession(got.audio.append, got.keys.append)
        s.start(("10.0.0.1", 4000), Pcmu(), 0, None)
        _media(s, 1, ("198.51.100.7", 30000))
        await asyncio.sleep(rtp.RELATCH_AFTER + 0.1)
        _media(s, 2, ("198.51.100.8", 30002))  # a media server handed the stream over
        assert s.remote == ("198.51.100.8", 30002)
        s.close()

    asyncio.run(main())


def test_symmetric_rtp_never_latches_onto_port_zero_or_when_off() -> None:
    async def main() -> None:
        got = Received()
        s = RtpSession(got.audio.append, got.keys.append)
        s.start(("10.0.0.1", 4000), Pcmu(), 0, None)
        _media(s, 1, ("127.0.0.1", 0))  # a raw-socket replay: no port to answer
        assert s.remote == ("10.0.0.1", 4000)
        off = RtpSession(got.audio.append, got.keys.append, symmetric=False)
        off.start(("10.0.0.1", 4000), Pcmu(), 0, None)
        _media(off, 1, ("198.51.100.7", 30000))
        assert off.remote == ("10.0.0.1", 4000) and off.received == 1
        s.close()
        off.close()

    asyncio.run(main())


def test_quiet_for_counts_from_the_last_packet() -> None:
    async def main() -> None:
        got = Received()
        s = RtpSession(got.audio.append, got.keys.append)
        assert s.quiet_for() == 0.0  # no media yet
        s.start(("10.0.0.1", 4000), Pcmu(), 0, None)
        await asyncio.sleep(0.2)
        assert s.quiet_for() >= 0.2
        _media(s, 1, ("10.0.0.1", 4000))
        assert s.quiet_for() < 0.2
        s.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("body", "status"),
    [("SIP/2.0 200 OK\r\n", 200), ("  SIP/2.0 486 Busy Here", 486), ("", None), ("hello", None)],
)
def test_sipfrag_status(body: str, status: int | None) -> None:
    from outdial.telephony.sip.stack import sipfrag_status

    assert sipfrag_status(body) == status


def test_transfer_uri_keeps_sip_uris_and_routes_numbers_through_the_trunk() -> None:
    from outdial.telephony.sip.carrier import Trunk, transfer_uri

    trunk = Trunk("t", "sip.example", dial_prefix="00")
    assert transfer_uri(trunk, "sip:desk@pbx.example") == "sip:desk@pbx.example"
    assert transfer_uri(trunk, "+15550001111") == "sip:0015550001111@sip.example"
    assert transfer_uri(Trunk("t", "10.0.0.1", 5080), "1555") == "sip:1555@10.0.0.1:5080"
    assert transfer_uri(Trunk("t", "10.0.0.1", 5080, domain="d.example"), "1") == "sip:1@d.example"

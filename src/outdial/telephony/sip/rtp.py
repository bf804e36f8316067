"""RTP over asyncio (RFC 3550): paced sending, ordered receiving, RFC 4733 DTMF.

Sending runs on a fixed 20 ms grid measured from the first packet, so scheduling jitter
never accumulates; when nothing is queued it sends silence, which keeps the far end's jitter
buffer and any NAT binding alive. Receiving holds a few packets to put reordered ones back in
order and fills lost ones with silence, so the VAD and the recording keep true time.

Symmetric RTP (on by default): packets go where the far end's RTP actually comes from, not only
where its SDP said. A far end behind NAT announces its inside address; its packets arrive from
the NAT's outside one, which is the only address that reaches it. The session latches onto the
first source heard after media starts, ignores other sources while that one is alive (no
stream injected by a stranger), and moves to a new source only after the latched one has been
quiet for ``RELATCH_AFTER`` seconds (a media server that hands the stream over).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from collections import deque
from collections.abc import Callable
from typing import cast

from outdial.speech.audio import FRAME_SECONDS, Audio, silence
from outdial.telephony.sip.codecs import Codec

HEADER = struct.Struct("!BBHII")
JITTER_PACKETS = 3  # held back to reorder; 60 ms
MAX_FILL = 50  # a longer gap is a restart (new stream), not loss
SILENT_AFTER = 0.1  # seconds without packets after which each tick counts as silence
DTMF_KEYS = "0123456789*#ABCD"
LATE_AFTER = 0.010  # a packet sent this long after its slot on the 20 ms grid is late
JITTER_BUCKETS = 101  # send-gap deviation from 20 ms, 1 ms buckets; the last is ">= 100 ms"
RELATCH_AFTER = 0.5  # seconds the latched source must be quiet before another one is taken


def packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        HEADER.pack(0x80, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        + payload
    )


def parse(data: bytes) -> tuple[int, int, int, bytes] | None:
    """(payload type, sequence, timestamp, payload) of an RTP packet, or None."""
    if len(data) < HEADER.size:
        return None
    first, second, seq, ts, _ssrc = HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    offset = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20:  # padding
        end -= data[-1]
    if offset > end:
        return None
    return second & 0x7F, seq, ts, data[offset:end]


def _newer(a: int, b: int) -> bool:
    """Whether sequence number a comes after b (modulo 2^16)."""
    return 0 < (a - b) & 0xFFFF < 0x8000


class Reorder:
    """Puts packets back in sequence order; missing ones become None after the hold."""

    def __init__(self, hold: int = JITTER_PACKETS) -> None:
        self.hold = hold
        self.next: int | None = None
        self.waiting: dict[int, bytes] = {}
        self._probe: tuple[int, bytes] | None = None

    def push(self, seq: int, payload: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        if self.next is None:
            self.next = seq
        ahead = (seq - self.next) & 0xFFFF
        if ahead >= 0x8000:  # behind what was played
            if 0x10000 - ahead <= MAX_FILL:
                return []  # late or duplicate: already played out (as silence)
            # Far behind: a stray old packet, or a new numbering. Two in a row decide it
            # (RFC 3550's probation), so one stray packet cannot reset the stream.
            probe, self._probe = self._probe, (seq, payload)
            if probe is None or (probe[0] + 1) & 0xFFFF != seq:
                return []
            out = self.restart(probe[0])
            self.waiting[probe[0]] = probe[1]
        elif ahead > MAX_FILL:
            out, ahead = self.restart(seq), 0  # far ahead: a new stream, not a long loss
        self._probe = None
        self.waiting[seq] = payload
        while self.waiting:
            if self.next in self.waiting:
                out.append(self.waiting.pop(self.next))
            elif len(self.waiting) > self.hold:
                out.append(None)  # lost
            else:
                break
            self.next = (self.next + 1) & 0xFFFF
        return out

    def restart(self, seq: int) -> list[bytes | None]:
        """Start again at ``seq``, handing over what was still held, in order."""
        assert self.next is not None
        start = self.next
        held = [self.waiting[k] for k in sorted(self.waiting, key=lambda k: (k - start) & 0xFFFF)]
        self.waiting.clear()
        self.next = seq
        return list(held)


class RtpSession(asyncio.DatagramProtocol):
    """One call's media: ``play`` queues audio to send; received audio goes to ``on_audio``
    frame by frame and keys to ``on_dtmf``."""

    def __init__(
        self,
        on_audio: Callable[[Audio], None],
        on_dtmf: Callable[[str], None],
        on_sent: Callable[[Audio], None] | None = None,
        *,
        symmetric: bool = True,
    ) -> None:
        self.on_sent = on_sent
        self.symmetric = symmetric
        self.signalled: tuple[str, int] | None = None  # where the SDP said to send
        self.latched: tuple[str, int] | None = None  # where the far end's RTP comes from
        self.codec: Codec | None = None
        self.pt = -1
        self.dtmf_pt: int | None = None
        self.on_audio, self.on_dtmf = on_audio, on_dtmf
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)
        self.samples = int(8000 * FRAME_SECONDS)  # RTP clock ticks per frame (8000 even for G.722)
        self.queue: deque[Audio] = deque()
        self.playing = asyncio.Event()  # set while queued audio is going out
        self._reorder = Reorder()
        self._last_dtmf_ts: int | None = None
        self._sender: asyncio.Task[None] | None = None
        self._silence = silence(FRAME_SECONDS)
        self.sent = 0
        self.received = 0
        # Send timing, for benches: |gap - 20 ms| histogram and packets late on the grid;
        # receive side: frames lost (filled) after reordering.
        self.jitter_ms = [0] * JITTER_BUCKETS
        self.late = 0
        self.lost = 0
        self._sent_at: float | None = None
        self._heard_at: float | None = None  # when the last packet arrived
        self._filled_to = 0.0  # silence has been supplied up to this instant
        self._peer_ssrc: int | None = None
        # A bridged transfer (bridge.py) with one codec on both legs: every audio packet in
        # goes whole to ``relay`` (the other leg's ``forward``), and while ``relaying`` the send
        # loop keeps time but sends nothing of its own, so the far end hears one stream.
        self.relay: Callable[[bytes], None] | None = None
        self.relaying = False
        self._relay_ssrc: int | None = None
        self._relay_base = (0, 0, 0, 0)  # (seq in, ts in, seq out, ts out) of the stream

    # --- asyncio protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        got = parse(data)
        if got is None:
            return
        pt, seq, ts, payload = got
        now = asyncio.get_running_loop().time()
        if self.symmetric and self.signalled is not None and addr != self.latched:
            if self.latched is not None and now - (self._heard_at or 0.0) < RELATCH_AFTER:
                return  # another source while ours is alive: not this call's stream
            if addr[1]:  # port 0 (a raw-socket replay) cannot be answered: keep the SDP's
                self.latched = self.remote = (addr[0], addr[1])
        self.received += 1
        self._heard_at = self._filled_to = now
        ssrc = HEADER.unpack_from(data)[4]
        if ssrc != self._peer_ssrc:  # a new source (e.g. after early media): new numbering
            self._peer_ssrc = ssrc
            self._reorder = Reorder()
        if pt == self.dtmf_pt:
            self._dtmf(ts, payload)
            return
        if pt != self.pt or self.codec is None:
            return
        if self.relay is not None:
            self.relay(data)
        for frame in self._reorder.push(seq, payload):
            if frame is None:
                self.lost += 1
            self.on_audio(self._silence if frame is None else self.codec.decode(frame))

    def _dtmf(self, ts: int, payload: bytes) -> None:
        # RFC 4733: an event repeats with the same timestamp; the end bit marks its last
        # packets (sent three times). Report each event once, when it ends.
        if len(payload) < 4:
            return
        event, flags = payload[0], payload[1]
        if flags & 0x80 and ts != self._last_dtmf_ts and event < len(DTMF_KEYS):
            self._last_dtmf_ts = ts
            self.on_dtmf(DTMF_KEYS[event])

    # --- sending ---
    def start(
        self, remote: tuple[str, int], codec: Codec, payload_type: int, dtmf_type: int | None
    ) -> None:
        """Send to ``remote`` with the codec the answer chose (early media or answer)."""
        if remote != self.signalled:  # a new answer: latch afresh
            self.signalled, self.latched = remote, None
        self.remote = self.latched or remote
        self.codec, self.pt, self.dtmf_pt = codec, payload_type, dtmf_type
        if self._heard_at is None:  # the far end's silence counts from the start of media
            now = asyncio.get_running_loop().time()
            self._heard_at, self._filled_to = now - SILENT_AFTER, now
        self._silence = silence(FRAME_SECONDS, codec.rate)
        if self._sender is None:
            self._sender = asyncio.ensure_future(self._send_loop())

    def forward(self, data: bytes) -> None:
        """Send a packet relayed from the other leg of a bridge, under our SSRC, with its
        numbering moved onto ours: gaps and reordering pass through for the far end's jitter
        buffer, and a new source on the other leg continues our sequence (marker set)."""
        got = parse(data)
        if got is None or self.remote is None or self.transport is None:
            return
        _pt, seq, ts, payload = got
        ssrc = HEADER.unpack_from(data)[4]
        marker = bool(data[1] & 0x80)
        if ssrc != self._relay_ssrc:
            self._relay_ssrc, marker = ssrc, True
            self._relay_base = (seq, ts, self.seq, self.ts)
        seq_in, ts_in, seq_out, ts_out = self._relay_base
        out = packet(
            self.pt, seq_out + seq - seq_in, ts_out + ts - ts_in, self.ssrc, payload, marker
        )
        if not self.transport.is_closing():
            self.transport.sendto(out, self.remote)
            self.sent += 1

    def play(self, audio: Audio) -> None:
        rate = self.codec.rate if self.codec is not None else audio.rate
        for frame in audio.resampled(rate).frames(FRAME_SECONDS):
            self.queue.append(frame)
        self.playing.set()

    def stop_playing(self) -> None:
        self.queue.clear()

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        marker = True
        while self.transport is not None and not self.transport.is_closing():
            frame = self.queue.popleft() if self.queue else None
            if frame is None and self.playing.is_set():
                self.playing.clear()
            if self.remote is not None and self.codec is not None and not self.relaying:
                audio = frame or self._silence
                if self.on_sent is not None:
                    self.on_sent(audio)
                payload = self.codec.encode(audio)
                self.transport.sendto(
                    packet(self.pt, self.seq, self.ts, self.ssrc, payload, marker), self.remote
                )
                self.sent += 1
                self._timing(loop.time(), start + n * FRAME_SECONDS)
            marker = False
            self._fill_silence(loop.time())
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + self.samples) & 0xFFFFFFFF
            n += 1
            await asyncio.sleep(max(0.0, start + n * FRAME_SECONDS - loop.time()))

    def _timing(self, now: float, slot: float) -> None:
        if now - slot > LATE_AFTER:
            self.late += 1
        if self._sent_at is not None:
            deviation = round(abs(now - self._sent_at - FRAME_SECONDS) * 1000)
            self.jitter_ms[min(deviation, JITTER_BUCKETS - 1)] += 1
        self._sent_at = now

    def _fill_silence(self, now: float) -> None:
        # A far end that stops sending (silence suppression, the end of a played file, not
        # started yet) still means time passing: the VAD must see the end of an answer, and
        # the recording's two directions must stay in line. Gaps become silence frames.
        if self._heard_at is None or now - self._heard_at <= SILENT_AFTER:
            return
        while self._filled_to + FRAME_SECONDS <= now:
            self._filled_to += FRAME_SECONDS
            self.on_audio(self._silence)

    def quiet_for(self) -> float:
        """Seconds since the far end's last packet (or since media started)."""
        if self._heard_at is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._heard_at

    async def drained(self) -> None:
        """Wait until everything queued has been sent."""
        while self.queue:
            await asyncio.sleep(FRAME_SECONDS)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        if self.transport is not None:
            self.transport.close()

    async def closed(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender


async def open_rtp(host: str, *, symmetric: bool = True) -> RtpSession:
    """An RTP socket on ``host``; set its callbacks before ``start``."""
    loop = asyncio.get_running_loop()
    _, session = await loop.create_datagram_endpoint(
        lambda: RtpSession(_ignore, _ignore, symmetric=symmetric), local_addr=(host, 0)
    )
    return session


def _ignore(_: object) -> None:
    pass

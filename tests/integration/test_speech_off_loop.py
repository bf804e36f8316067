"""Speech runs off the call loop: while one call's answer is being decoded by a slow
recogniser, another call's RTP keeps its 20 ms pace.

Call A is a SipCallSession whose callee answers (flite audio fed as received frames) and
whose recogniser (FakeAsr) takes 0.4 s per decode, busy in Python so it even competes for the
GIL. Call B's sender paces packets to a socket read by a plain thread, which stamps arrivals
with its own clock (not the loop's). The assertion counts late packets (gaps over 60 ms),
never wall-clock totals; a control run that decodes on the loop shows the count catches a
stall."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from outdial.speech.audio import FRAME_SECONDS, Audio, silence
from outdial.speech.tts import FliteTts
from outdial.telephony.sip.codecs import codec_for
from outdial.telephony.sip.rtp import RtpSession, open_rtp
from outdial.telephony.sip.session import SipCallSession
from outdial.testing import FakeAsr

LATE = 0.060  # a gap between two of call B's packets longer than this is a late packet
DECODE = 0.4


class Arrivals:
    """A UDP socket read by its own thread; arrival times on time.monotonic()."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return str(host), int(port)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(2048)
            except TimeoutError:
                continue
            self.times.append(time.monotonic())

    def late(self, since: float) -> int:
        ts = [t for t in self.times if t >= since]
        return sum(1 for a, b in itertools.pairwise(ts) if b - a > LATE)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def arrivals() -> Iterator[Arrivals]:
    a = Arrivals()
    yield a
    a.close()


async def _call_b(arrivals: Arrivals) -> RtpSession:
    b = await open_rtp("127.0.0.1")
    b.start(arrivals.address, codec_for(0), 0, None)
    return b


async def _answers(session: SipCallSession, answer: Audio, times: int) -> list[str]:
    """The callee answers ``times`` listens; each answer arrives as 20 ms frames."""
    heard: list[str] = []
    for _ in range(times):
        listen = asyncio.ensure_future(session.listen(5.0, ("yes",)))
        await asyncio.sleep(0)
        for frame in (answer + silence(1.0)).frames(FRAME_SECONDS):
            session.on_audio(frame)
        got = await listen
        assert got is not None
        heard.append(got.text)
    return heard


def test_other_calls_keep_their_pace_while_an_answer_decodes(
    flite: FliteTts, arrivals: Arrivals
) -> None:
    asr = FakeAsr(lambda _phrases: "yes", delay=DECODE, spin=True)
    answer = flite.render("yes I will be there")

    async def main() -> tuple[list[str], float]:
        b = await _call_b(arrivals)
        a = await open_rtp("127.0.0.1")
        session = SipCallSession(a, flite, asr, None)
        await asyncio.sleep(0.3)  # B's stream is established
        since = time.monotonic()
        heard = await _answers(session, answer, 3)
        await asyncio.sleep(0.1)
        a.close()
        b.close()
        return heard, since

    heard, since = asyncio.run(main())
    assert heard == ["yes", "yes", "yes"]
    assert asr.metrics.utterances == 3 and asr.metrics.timeouts == 0
    packets = len([t for t in arrivals.times if t >= since])
    assert packets >= 3 * DECODE / FRAME_SECONDS * 0.8  # B kept sending all along
    assert arrivals.late(since) <= 1, arrivals.late(since)


def test_control_a_decode_on_the_loop_makes_packets_late(
    flite: FliteTts, arrivals: Arrivals
) -> None:
    """The same measurement catches a stall: a decode run on the loop, as before."""
    asr = FakeAsr(lambda _phrases: "yes", delay=DECODE, spin=True)
    answer = flite.render("yes I will be there")

    async def main() -> float:
        b = await _call_b(arrivals)
        await asyncio.sleep(0.3)
        since = time.monotonic()
        await asyncio.sleep(0.1)  # a packet inside the window before the first stall
        for _ in range(3):
            r = asr.recognizer(["yes"])
            r.feed(answer)
            r.finish()  # on the loop: B's sender cannot run meanwhile
            await asyncio.sleep(0.1)
        b.close()
        return since

    since = asyncio.run(main())
    assert arrivals.late(since) >= 3


def test_uncached_prompts_render_off_the_loop(flite: FliteTts) -> None:
    tts = FliteTts()

    async def main() -> tuple[Audio, Audio, str]:
        first = await tts.render_parts_async([("Hello", True), ("Ann", False)])
        again = await tts.render_parts_async([("Hello", True), ("Ann", False)])
        name = await asyncio.get_running_loop().run_in_executor(
            tts.pool(), threading.current_thread
        )
        return first, again, name.name

    first, again, thread = asyncio.run(main())
    assert first == again == tts.render_parts([("Hello", True), ("Ann", False)])
    assert tts.metrics.cache_hits >= 2  # "Hello" came from the cache the second time
    assert thread.startswith("tts-flite")
    tts.close()

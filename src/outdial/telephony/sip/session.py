"""A conversation's view of a SIP call: prompts out as RTP, the callee's speech in through VAD
and ASR, keys in as RFC 4733 events; barge-in stops a prompt when the callee talks over it."""

from __future__ import annotations

import asyncio
from collections import deque

from outdial.domain.conversation import CalleeHungUp, Heard, PromptParts, Turn
from outdial.speech.asr import AsrEngine, Recognizer
from outdial.speech.audio import FRAME_SECONDS, Audio
from outdial.speech.tts import TtsEngine
from outdial.speech.vad import EnergyVad
from outdial.telephony.sip.recorder import Recorder
from outdial.telephony.sip.rtp import RtpSession

PRE_ROLL_FRAMES = 10  # speech kept from before the VAD decided it had started
MAX_UTTERANCE_SECONDS = 15.0


class SipCallSession:
    def __init__(
        self,
        rtp: RtpSession,
        tts: TtsEngine,
        asr: AsrEngine,
        recorder: Recorder | None,
        *,
        barge_in: bool = True,
    ) -> None:
        self.rtp, self.tts, self.asr, self.recorder = rtp, tts, asr, recorder
        self.barge_in = barge_in
        self.transcript: list[Turn] = []
        self.hung_up = asyncio.Event()  # the callee hung up (the carrier sets it)
        self.bot_hung_up = False
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._vad = EnergyVad()
        self._recent: deque[Audio] = deque(maxlen=PRE_ROLL_FRAMES)
        self._recognizer: Recognizer | None = None
        self._speech: asyncio.Event = asyncio.Event()  # speech started during a listen
        self._ended: asyncio.Event = asyncio.Event()  # ... and ended
        self._keys: asyncio.Queue[str] = asyncio.Queue()
        self._speaking = False

    def offset(self) -> float:
        return round(self._loop.time() - self._t0, 3)

    # --- media callbacks (on the loop) ---
    def on_audio(self, frame: Audio) -> None:
        if self.recorder is not None:
            self.recorder.heard(frame)
        event = self._vad.feed(frame.resampled(8000) if frame.rate != 8000 else frame)
        if event is not None and event.kind == "start":
            self._speaking = True
            if self.barge_in and self.rtp.queue:
                self.rtp.stop_playing()
            if self._recognizer is not None:
                for f in self._recent:
                    self._recognizer.feed(f)
                self._speech.set()
        if self._speaking and self._recognizer is not None:
            self._recognizer.feed(frame)
        if event is not None and event.kind == "end":
            self._speaking = False
            if self._speech.is_set():
                self._ended.set()
        if not self._speaking:
            self._recent.append(frame)

    def on_dtmf(self, key: str) -> None:
        self._keys.put_nowait(key)

    # --- CallSession ---
    def _check(self) -> None:
        if self.hung_up.is_set():
            raise CalleeHungUp

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        self._check()
        self.transcript.append(Turn("bot", text, self.offset()))
        audio = self.tts.render_parts(parts or ((text, False),))
        self.rtp.play(audio)
        drained = asyncio.ensure_future(self.rtp.drained())
        gone = asyncio.ensure_future(self.hung_up.wait())
        try:
            await asyncio.wait({drained, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (drained, gone):
                f.cancel()
        self._check()

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        self._check()
        if not self._keys.empty():
            return self._key()
        self._speech.clear()
        self._ended.clear()
        self._recognizer = self.asr.recognizer(expect) if expect else None
        try:
            return await self._await_answer(timeout)
        finally:
            self._recognizer = None

    def _key(self) -> Heard:
        key = self._keys.get_nowait()
        self.transcript.append(Turn("callee", f"(keys {key})", self.offset()))
        return Heard(dtmf=key)

    async def _await_answer(self, timeout: float) -> Heard | None:
        waits = {
            "key": asyncio.ensure_future(self._keys.get()),
            "speech": asyncio.ensure_future(self._speech.wait()),
            "gone": asyncio.ensure_future(self.hung_up.wait()),
        }
        try:
            done, _ = await asyncio.wait(
                waits.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waits["gone"] in done:
                raise CalleeHungUp
            if waits["key"] in done:
                key = str(waits["key"].result())
                self.transcript.append(Turn("callee", f"(keys {key})", self.offset()))
                return Heard(dtmf=key)
            if waits["speech"] not in done:
                return None  # silence until the timeout
            ended = asyncio.ensure_future(self._ended.wait())
            try:
                done, _ = await asyncio.wait(
                    {ended, waits["gone"]},
                    timeout=MAX_UTTERANCE_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                ended.cancel()
            if waits["gone"] in done:
                raise CalleeHungUp
            return self._recognised()
        finally:
            for f in waits.values():
                f.cancel()

    def _recognised(self) -> Heard:
        if self._recognizer is None:
            self.transcript.append(Turn("callee", "(speech)", self.offset()))
            return Heard(unclear=True)
        got = self._recognizer.finish()
        said = got.text if got.accepted else f"({got.heard or 'unclear'})"
        self.transcript.append(Turn("callee", said, self.offset()))
        return Heard(text=got.text, unclear=not got.accepted)

    async def hangup(self) -> None:
        self.bot_hung_up = True
        await self.rtp.drained()


__all__ = ["FRAME_SECONDS", "SipCallSession"]

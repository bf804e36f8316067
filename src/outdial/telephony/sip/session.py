"""A conversation's view of a SIP call: prompts out as RTP, the callee's speech in through VAD
and ASR, keys in as RFC 4733 events; barge-in stops a prompt when the callee talks over it.

The event loop this runs on also sends every other call's 20 ms packets, so nothing slow runs
on it: answers are decoded in the recogniser's pool (``Recognizer.finish_async``, under the
engine's timeout) and prompt parts not in the TTS cache render in the TTS engine's threads.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from outdial.domain.conversation import CalleeHungUp, Heard, PromptParts, Turn
from outdial.speech.asr import AsrEngine, Recognizer
from outdial.speech.audio import Audio
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
        on_turn: Callable[[Turn], None] | None = None,
    ) -> None:
        self.on_turn = on_turn
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
        self._utterance: list[Audio] | None = None  # the answer being spoken now
        self._pending: list[Audio] | None = None  # an answer finished before the listen
        # Sees every received frame at 8 kHz (answering machine detection, screening.py).
        self.tap: Callable[[Audio], None] | None = None

    def _note(self, speaker: str, text: str) -> None:
        turn = Turn(speaker, text, self.offset())
        self.transcript.append(turn)  # the one place turns are recorded
        if self.on_turn is not None:
            self.on_turn(turn)

    def offset(self) -> float:
        return round(self._loop.time() - self._t0, 3)

    # --- media callbacks (on the loop) ---
    def on_audio(self, frame: Audio) -> None:
        """Every received 20 ms frame: recording, VAD, barge-in, and the current answer.

        An answer is captured from the VAD's start (with a little audio before it) to its end
        whether or not a listen is waiting: a callee who answers over the prompt stops it
        (barge-in) and the next listen picks up that answer, finished or still going.
        """
        if self.recorder is not None:
            self.recorder.heard(frame)
        narrow = frame.resampled(8000) if frame.rate != 8000 else frame
        if self.tap is not None:
            self.tap(narrow)
        event = self._vad.feed(narrow)
        if event is not None and event.kind == "start":
            self._utterance = [*self._recent, frame]
            self._recent.clear()
            if self.barge_in and self.rtp.queue:
                self.rtp.stop_playing()
            if self._recognizer is not None:
                for f in self._utterance:
                    self._recognizer.feed(f)
                self._speech.set()
        elif self._utterance is not None:
            self._utterance.append(frame)
            if self._recognizer is not None:
                self._recognizer.feed(frame)
        else:
            self._recent.append(frame)
        if event is not None and event.kind == "end" and self._utterance is not None:
            if self._recognizer is not None:
                self._ended.set()
            else:
                self._pending = self._utterance  # answered while nobody listened
            self._utterance = None

    def forget_speech(self) -> None:
        """Drop what the callee said so far: a greeting ("hello?") heard before the first
        prompt is not the answer to it."""
        self._pending = self._utterance = None
        self._recent.clear()

    def on_dtmf(self, key: str) -> None:
        self._keys.put_nowait(key)

    # --- CallSession ---
    def _check(self) -> None:
        if self.hung_up.is_set():
            raise CalleeHungUp

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        self._check()
        self._note("bot", text)
        audio = await self.tts.render_parts_async(parts or ((text, False),))
        self._check()
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
            if self._pending is not None:
                frames, self._pending = self._pending, None
                self._feed(frames)
                return await self._recognised()
            if self._utterance is not None:  # the callee is already answering
                self._feed(self._utterance)
                self._speech.set()
            return await self._await_answer(timeout)
        finally:
            self._recognizer = None

    def _feed(self, frames: list[Audio]) -> None:
        if self._recognizer is not None:
            for f in frames:
                self._recognizer.feed(f)

    def _key(self) -> Heard:
        key = self._keys.get_nowait()
        self._note("callee", f"(keys {key})")
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
                self._note("callee", f"(keys {key})")
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
            return await self._recognised()
        finally:
            for f in waits.values():
                f.cancel()

    async def _recognised(self) -> Heard:
        recognizer, self._recognizer = self._recognizer, None  # audio from now on is not this
        if recognizer is None:
            self._note("callee", "(speech)")
            return Heard(unclear=True)
        # A callee who hangs up during the decode still gets their answer heard (an opt-out
        # is often the last thing said): the next call on the session raises instead.
        got = await recognizer.finish_async()
        said = got.text if got.accepted else f"({got.heard or 'unclear'})"
        self._note("callee", said)
        return Heard(text=got.text, unclear=not got.accepted, confidence=got.confidence)

    async def hangup(self) -> None:
        self.bot_hung_up = True
        await self.rtp.drained()

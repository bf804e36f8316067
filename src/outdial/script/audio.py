"""Templates over audio without a network: what ``outdial script test --audio`` runs.

The bot's prompts are rendered by the TTS engine (fixed parts from the cache); the persona's
answers are spoken by a second voice, sent through an 8 kHz mu-law line, cut at the end of
speech by the VAD and recognised by the ASR engine against the listen's expected phrases.
The conversation engine then sees only what was recognised, exactly as on a SIP call.

Each turn's reply latency is measured the way a caller feels it: from the VAD's end-of-speech
decision to the first 20 ms frame of the bot's next prompt being ready to send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from outdial.domain.conversation import Heard, PromptParts
from outdial.script.persona import Persona, TextSession
from outdial.speech.asr import AsrEngine
from outdial.speech.audio import FRAME_SECONDS, Audio, concat, silence
from outdial.speech.errors import SpeechUnavailable
from outdial.speech.loopback import spoken
from outdial.speech.tts import TtsEngine, make_tts
from outdial.speech.vad import EnergyVad

CALLEE = {"flite": "kal", "espeak-ng": "en-gb"}  # persona voices by engine
PRE_ROLL_FRAMES = 10  # audio kept from before the VAD's start decision (its onset delay)


@dataclass
class Hearing:
    """The engines an audio run uses; TTS engines are made per voice and kept."""

    tts_engine: str
    asr: AsrEngine
    callee_voice: str | None = None  # None: a voice unlike the bot's default (see CALLEE)
    bot_voice: str | None = None
    cache_prompts: bool = True  # off only to measure what the cache saves
    _voices: dict[str | None, TtsEngine] = field(default_factory=dict)

    def tts(self, voice: str | None) -> TtsEngine:
        if voice not in self._voices:
            self._voices[voice] = make_tts(self.tts_engine, voice)
        return self._voices[voice]

    def bot(self, template_voice: str | None) -> TtsEngine:
        """The bot's engine: the configured voice, else the template's, else the default.

        A template's voice names a voice of some engine; under another engine it is ignored
        (the call still speaks) rather than failing every call.
        """
        if self.bot_voice:
            return self.tts(self.bot_voice)
        try:
            return self.tts(template_voice)
        except SpeechUnavailable:
            return self.tts(None)

    def callee(self) -> TtsEngine:
        return self.tts(self.callee_voice or CALLEE.get(self.tts_engine))


class AudioSession(TextSession):
    """A persona's CallSession over audio: the same turns as in text, but prompts are rendered
    and spoken answers go through the line and the recogniser (see the module docstring)."""

    def __init__(self, persona: Persona, hearing: Hearing, bot_voice: str | None) -> None:
        super().__init__(persona)
        self.hearing = hearing
        self.bot = hearing.bot(bot_voice)
        self.callee = hearing.callee()
        self.latencies: list[float] = []  # seconds, end of speech -> first bot frame
        self.bot_audio: list[Audio] = []
        self._endpoint: float | None = None
        self.cache_prompts = hearing.cache_prompts

    async def say(self, text: str, parts: PromptParts = ()) -> None:
        # Playback starts with the first part; the rest renders while it plays (a part takes
        # milliseconds to render and seconds to play), so the reply latency ends there.
        rendered: list[Audio] = []
        for part, fixed in parts or ((text, False),):
            if not part.strip():
                continue
            rendered.append(self.bot.render(part, cache=fixed and self.cache_prompts))
            if self._endpoint is not None:
                self.latencies.append(time.perf_counter() - self._endpoint)
                self._endpoint = None
        audio = concat(rendered)
        self.bot_audio.append(audio)
        self.transcript.append({"speaker": "bot", "text": text})

    async def listen(self, timeout: float, expect: tuple[str, ...] = ()) -> Heard | None:
        self._endpoint = None
        return await super().listen(timeout, expect)

    async def _spoken(self, said: str, expect: tuple[str, ...]) -> Heard | None:
        vad = EnergyVad()
        recognizer = self.hearing.asr.recognizer(expect)
        line = spoken(self.callee, said, pad=0.4) + silence(1.0)
        recent: list[Audio] = []
        started = False
        for frame in line.frames(FRAME_SECONDS):
            event = vad.feed(frame)
            if not started:
                recent = [*recent[-PRE_ROLL_FRAMES:], frame]
                if event is not None and event.kind == "start":
                    started = True
                    for f in recent:
                        recognizer.feed(f)
                continue
            recognizer.feed(frame)
            if event is not None and event.kind == "end":
                break
        self._endpoint = time.perf_counter()
        if not started:
            self.transcript.append({"speaker": "callee", "text": f"{said} (not heard)"})
            return None
        got = await recognizer.finish_async()  # in the pool, under the timeout, as on a call
        heard = got.text if got.accepted else f"{got.heard or '-'} (not understood)"
        self.transcript.append({"speaker": "callee", "text": said, "heard": heard})
        return Heard(text=got.text, unclear=not got.accepted, confidence=got.confidence)

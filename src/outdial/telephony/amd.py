"""Answering machine detection: is the voice that answered a person or a voicemail greeting?

It works on the callee's audio after the answer, 20 ms frames at 8 kHz, and never reads a
clock: a frame's time is its index (the RTP receiver fills gaps with silence, so frames are
time). Two cues decide:

- cadence: a person answers with a short "hello?" and then waits for us; a greeting is a
  monologue that runs on, with only short pauses between its sentences. A first utterance
  that ends (``end_silence`` of quiet) shorter than ``machine_speech`` is a person; speech that
  runs past ``machine_speech`` is a machine.
- the beep: a steady sinusoid between 400 and 2000 Hz for ``beep_seconds`` is the machine's
  "record after the tone" signal, whatever came before it.

No speech at all by ``silence_seconds``, or no decision by ``max_seconds``, is "unknown": the
carrier treats it as a person (better to talk to a machine than to hang up on a person).

After a machine decision the detector keeps listening for where a message can start: the end
of the beep, or, for a greeting without one, ``message_silence`` of quiet after it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from outdial.speech.audio import Audio

RATE = 8000
FRAME = 0.02  # seconds: the RTP packet time the carrier feeds us in
FRAME_SAMPLES = int(RATE * FRAME)
_FFT = 512  # the 160-sample frame zero-padded: 15.6 Hz bins, enough to see a tone hold still
_FREQS = np.fft.rfftfreq(_FFT, 1 / RATE)
_WINDOW = np.hanning(FRAME_SAMPLES)

# Speech is this far above the line's noise floor, and never quieter than MIN_SPEECH_DB: TTS
# and telephone speech sits at -35..-15 dBFS, a quiet line's hiss below -50.
MARGIN_DB = 12.0
MIN_SPEECH_DB = -45.0
# The floor is the quietest frame of the last 1.5 s: speech has gaps between syllables that
# fall to the line's noise, so a monologue does not lift it, and a noisy line (hiss at -40)
# lifts it within that time instead of being heard as one long speech.
FLOOR_SECONDS = 1.5
START_FRAMES = 3  # loud frames in a row before speech starts (a click is not speech)
# Voicemail beeps are single tones from about 400 Hz (older machines) to 2000 Hz.
BEEP_BAND_HZ = (400.0, 2000.0)
# Share of a frame's energy within +-2 bins of its peak: a pure tone through G.711 keeps ~0.95;
# a vowel's strongest harmonic rarely holds more than half of the frame.
TONE_RATIO = 0.8
TONE_DRIFT_HZ = 40.0  # a beep's pitch holds still; a sung or intoned vowel glides


class Verdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"  # silence or a timeout: the carrier goes on as with a person


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Thresholds, in seconds of audio from the answer (OUTDIAL_AMD_* tunes them)."""

    # A "hello?" or "yes, speaking" lasts under ~1.5 s; a greeting's first sentence alone
    # ("Hi, you've reached the Smiths") lasts longer than 2.5 s.
    machine_speech: float = 2.6
    # A person who said hello waits for us; a greeting's pauses between sentences are shorter
    # (flite, espeak-ng and recorded greetings alike put 0.2-0.5 s between sentences).
    end_silence: float = 0.8
    beep_seconds: float = 0.15
    silence_seconds: float = 3.5  # nothing said by then: a person waiting, or a dead greeting
    max_seconds: float = 5.0  # longest a person may be kept waiting for our first words
    # Greetings without a beep: this much quiet after the greeting means it is recording (a
    # beep, when there is one, comes sooner: 0.2-1 s after the last word).
    message_silence: float = 2.0
    max_greeting: float = 30.0  # a message is left after this even if the greeting goes on

    def __post_init__(self) -> None:
        if not 0 < self.end_silence < self.silence_seconds <= self.max_seconds:
            raise ValueError("AMD settings need 0 < end_silence < silence_seconds <= max_seconds")
        if not 0 < self.machine_speech < self.max_seconds:
            raise ValueError("AMD settings need 0 < machine_speech < max_seconds")
        if self.beep_seconds <= 0 or self.message_silence <= 0 or self.max_greeting <= 0:
            raise ValueError("AMD beep, message silence and greeting times must be positive")


@dataclass(frozen=True, slots=True)
class Decision:
    """What answered, when it was decided (seconds of audio from the answer), and why:
    "short_greeting", "long_greeting", "beep", "silence" or "timeout"."""

    verdict: Verdict
    at: float
    reason: str


class MachineDetector:
    """Feed frames from the answer on; ``decision`` is set once, and on a machine
    ``message_at`` when a message may start (after the beep, or the greeting's end)."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.s = settings or AmdSettings()
        self._end_frames = round(self.s.end_silence / FRAME)
        self._beep_frames = max(1, round(self.s.beep_seconds / FRAME))
        self._message_frames = round(self.s.message_silence / FRAME)
        self.decision: Decision | None = None
        self.message_at: float | None = None
        self.beep_at: float | None = None
        self.frames = 0
        self._levels: deque[float] = deque(maxlen=round(FLOOR_SECONDS / FRAME))
        self._loud = 0  # loud frames in a row
        self._quiet = 0  # quiet frames in a row
        self._speech_from: int | None = None  # first frame of the current utterance
        self._speech_to = 0  # frame after its last loud frame
        self._heard_speech = False
        self._tone = 0  # tonal frames in a row, holding one pitch
        self._tone_hz = 0.0

    @property
    def seconds(self) -> float:
        """Audio fed so far."""
        return self.frames * FRAME

    def feed(self, frame: Audio) -> Decision | None:
        """One 20 ms frame at 8 kHz; returns the decision on the frame that makes it."""
        samples = frame.array().astype(np.float64)
        self.frames += 1
        level = _level_db(samples)
        self._levels.append(level)
        loud = level > max(min(self._levels) + MARGIN_DB, MIN_SPEECH_DB)
        beep = self._track_tone(samples, loud)
        self._track_speech(loud)
        if self.decision is None:
            self.decision = self._decide(beep)
            if self.decision is not None:
                if self.decision.verdict is Verdict.MACHINE:
                    self._message_check(beep)
                return self.decision
        elif self.decision.verdict is Verdict.MACHINE and self.message_at is None:
            self._message_check(beep)
        return None

    def _track_tone(self, samples: np.ndarray, loud: bool) -> bool:
        """Whether a beep has just held for ``beep_seconds`` (True on every frame after)."""
        hz = _tone_hz(samples) if loud and len(samples) == FRAME_SAMPLES else None
        if hz is not None and (self._tone == 0 or abs(hz - self._tone_hz) <= TONE_DRIFT_HZ):
            self._tone += 1
            self._tone_hz = hz
        else:
            ended_beep = self._tone >= self._beep_frames
            self._tone = 1 if hz is not None else 0
            self._tone_hz = hz or 0.0
            if ended_beep and self.beep_at is not None and self.message_at is None:
                self.message_at = self.seconds - FRAME  # the beep ended on the last frame
        if self._tone == self._beep_frames and self.beep_at is None:
            self.beep_at = self.seconds - self._beep_frames * FRAME
        return self._tone >= self._beep_frames

    def _track_speech(self, loud: bool) -> None:
        if loud:
            self._loud += 1
            self._quiet = 0
            if self._loud >= START_FRAMES:
                if self._speech_from is None:
                    self._speech_from = self.frames - START_FRAMES
                self._speech_to = self.frames
                self._heard_speech = True
        else:
            self._loud = 0
            self._quiet += 1

    def _decide(self, beep: bool) -> Decision | None:
        now = self.seconds
        if beep:
            return Decision(Verdict.MACHINE, now, "beep")
        if self._speech_from is not None:
            length = (self._speech_to - self._speech_from) * FRAME
            if length > self.s.machine_speech:
                return Decision(Verdict.MACHINE, now, "long_greeting")
            if self._quiet >= self._end_frames:
                return Decision(Verdict.HUMAN, now, "short_greeting")
        if not self._heard_speech and now >= self.s.silence_seconds:
            return Decision(Verdict.UNKNOWN, now, "silence")
        if now >= self.s.max_seconds:
            return Decision(Verdict.UNKNOWN, now, "timeout")
        return None

    def _message_check(self, beep: bool) -> None:
        """On a machine: a message may start after the beep, after the greeting has been
        quiet for ``message_silence`` (no beep), or at ``max_greeting`` regardless."""
        if self.message_at is not None or beep:
            return
        quiet_after = self.beep_at is None and self._quiet >= self._message_frames
        if quiet_after or self.seconds >= self.s.max_greeting:
            self.message_at = self.seconds


def _level_db(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(samples * samples))) / 32768.0
    return 20.0 * float(np.log10(rms)) if rms > 0 else -100.0


def _tone_hz(samples: np.ndarray) -> float | None:
    """The frame's pitch when it is a pure tone in the beep band, else None."""
    power = np.abs(np.fft.rfft(samples * _WINDOW, _FFT)) ** 2
    total = float(power.sum())
    if total <= 0:
        return None
    peak = int(np.argmax(power))
    if not BEEP_BAND_HZ[0] <= _FREQS[peak] <= BEEP_BAND_HZ[1]:
        return None
    near = float(power[max(0, peak - 2) : peak + 3].sum())
    return float(_FREQS[peak]) if near / total >= TONE_RATIO else None


def detect(audio: Audio, settings: AmdSettings | None = None) -> Decision:
    """The decision on a whole greeting (8 kHz), as a call would reach it frame by frame;
    audio that ends undecided is padded with silence, as the line would be."""
    detector = MachineDetector(settings)
    frames = audio.frames(FRAME)
    silent = Audio(b"\x00\x00" * FRAME_SAMPLES, RATE)
    while True:
        decided = detector.feed(
            frames[detector.frames] if detector.frames < len(frames) else silent
        )
        if decided is not None:
            return decided

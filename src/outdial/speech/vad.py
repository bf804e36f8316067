"""Voice activity: where the callee's speech starts and ends, frame by frame.

An energy detector with an adaptive noise floor, which is what telephone audio needs: the line
has a steady floor (comfort noise, hiss) and speech sits well above it. Speech starts after
``start_frames`` loud frames in a row (a click is not speech) and ends after ``hangover``
seconds of quiet (a pause between words is not the end of the answer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outdial.speech.audio import FRAME_SECONDS, Audio


@dataclass
class VadEvent:
    kind: str  # "start" or "end"
    at: float  # seconds from the first frame fed


class EnergyVad:
    def __init__(
        self,
        *,
        hangover: float = 0.6,
        start_frames: int = 3,
        margin_db: float = 12.0,
        min_level_db: float = -50.0,
    ) -> None:
        self.hangover_frames = max(1, round(hangover / FRAME_SECONDS))
        self.start_frames = start_frames
        self.margin_db = margin_db
        self.min_level_db = min_level_db
        self.noise_db = -70.0
        self.speaking = False
        self._loud = 0
        self._quiet = 0
        self._t = 0.0

    @staticmethod
    def level_db(frame: Audio) -> float:
        a = frame.array().astype(np.float64)
        if a.size == 0:
            return -100.0
        rms = float(np.sqrt(np.mean(a * a))) / 32768.0
        return 20.0 * float(np.log10(rms)) if rms > 0 else -100.0

    def feed(self, frame: Audio) -> VadEvent | None:
        """Feed one 20 ms frame; returns an event when speech starts or ends."""
        level = self.level_db(frame)
        self._t += frame.seconds
        loud = level > max(self.noise_db + self.margin_db, self.min_level_db)
        if not loud:
            # Track the floor quickly downwards and slowly upwards.
            rate = 0.3 if level < self.noise_db else 0.02
            self.noise_db += rate * (level - self.noise_db)
        if not self.speaking:
            self._loud = self._loud + 1 if loud else 0
            if self._loud >= self.start_frames:
                self.speaking, self._quiet = True, 0
                return VadEvent("start", self._t - self.start_frames * FRAME_SECONDS)
            return None
        self._quiet = 0 if loud else self._quiet + 1
        if self._quiet >= self.hangover_frames:
            self.speaking, self._loud = False, 0
            return VadEvent("end", self._t - self.hangover_frames * FRAME_SECONDS)
        return None

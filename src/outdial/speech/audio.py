"""Mono 16-bit PCM audio at a known rate: the one type every speech part passes around.

Telephony audio is 8 kHz; the recogniser wants 16 kHz. Resampling uses soxr (a maintained
binding of the SoX resampler) rather than a hand-written filter.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

from outdial.speech.errors import need

try:
    import numpy as np
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise need("numpy") from exc

TELEPHONY_RATE = 8000
FRAME_SECONDS = 0.02  # RTP's packet time; VAD and playback work in these frames


@dataclass(frozen=True, slots=True)
class Audio:
    """Signed 16-bit little-endian mono samples."""

    pcm: bytes
    rate: int = TELEPHONY_RATE

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def array(self) -> np.ndarray:
        return np.frombuffer(self.pcm, dtype="<i2")

    def resampled(self, rate: int) -> Audio:
        if rate == self.rate or not self.pcm:
            return Audio(self.pcm, rate)
        import soxr  # deferred: only conversions need it

        # float32 in and out: soxr dithers 16-bit output, which would make the same audio
        # resample (and so recognise) differently from run to run.
        out = soxr.resample(self.array().astype(np.float32), self.rate, rate)
        return Audio(to_pcm16(out), rate)

    def frames(self, seconds: float = FRAME_SECONDS) -> list[Audio]:
        """Split into frames of ``seconds``; the last one is padded with silence."""
        size = int(self.rate * seconds) * 2
        pcm = self.pcm + b"\x00" * (-len(self.pcm) % size)
        return [Audio(pcm[i : i + size], self.rate) for i in range(0, len(pcm), size)]

    def trimmed(self, floor: int = 300, keep: float = 0.02) -> Audio:
        """Without the leading and trailing silence (samples under ``floor``) that engines pad
        a render with; ``keep`` seconds stay at each end, so no word starts on a cut."""
        loud = np.flatnonzero(np.abs(self.array().astype(np.int32)) >= floor)
        if not len(loud):
            return Audio(b"", self.rate)
        margin = int(keep * self.rate)
        first, last = max(0, int(loud[0]) - margin), min(self.samples, int(loud[-1]) + 1 + margin)
        return Audio(self.pcm[2 * first : 2 * last], self.rate)

    def __add__(self, other: Audio) -> Audio:
        if other.rate != self.rate:
            other = other.resampled(self.rate)
        return Audio(self.pcm + other.pcm, self.rate)

    def wav(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.pcm)
        return buf.getvalue()


def to_pcm16(samples: np.ndarray) -> bytes:
    """float samples on the int16 scale -> rounded, clipped 16-bit little-endian PCM."""
    return bytes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())


class Resampler:
    """Resamples a stream of frames as one signal (no edges at frame boundaries)."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        import soxr

        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")

    def feed(self, audio: Audio, *, last: bool = False) -> bytes:
        if audio.rate != self.rate_in:
            raise ValueError(f"expected {self.rate_in} Hz audio, got {audio.rate} Hz")
        out = self._stream.resample_chunk(audio.array().astype(np.float32), last=last)
        return to_pcm16(out)


def silence(seconds: float, rate: int = TELEPHONY_RATE) -> Audio:
    return Audio(b"\x00\x00" * int(seconds * rate), rate)


def concat(parts: list[Audio], rate: int = TELEPHONY_RATE) -> Audio:
    return Audio(b"".join(p.resampled(rate).pcm for p in parts), rate)


def from_wav(data: bytes) -> Audio:
    """Read a mono or stereo 16-bit WAV (stereo is mixed down)."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit samples, got {8 * w.getsampwidth()}-bit")
        pcm = w.readframes(w.getnframes())
        channels, rate = w.getnchannels(), w.getframerate()
    if channels == 1:
        return Audio(pcm, rate)
    a = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.int32)
    return Audio(a.mean(axis=1).astype("<i2").tobytes(), rate)

"""Where call recordings are written: 8 kHz 16-bit mono WAV files named by recording id."""

from __future__ import annotations

import uuid
import wave
from pathlib import Path

SAMPLE_RATE = 8000


class RecordingStore:
    """A directory of recordings; ids are random and never derived from call data."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, recording_id: str) -> Path:
        return self.directory / f"{recording_id}.wav"

    def write(self, pcm16: bytes, rate: int = SAMPLE_RATE) -> str:
        """Store mono 16-bit little-endian samples; return the new recording id."""
        recording_id = uuid.uuid4().hex
        self.write_channels(recording_id, pcm16, rate, channels=1)
        return recording_id

    def write_channels(self, name: str, pcm16: bytes, rate: int, *, channels: int) -> None:
        """Store interleaved 16-bit samples as ``name``.wav."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with wave.open(str(self.path(name)), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm16)

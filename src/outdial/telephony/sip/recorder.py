"""Recording both directions of a call: frames in, a mixed mono WAV (and optionally a stereo
one, callee left and bot right) out.

Both directions are continuous 20 ms streams (the sender fills gaps with silence, the receiver
fills lost packets and silences), so frame counts are time and the two tracks line up from the
answer. Frames go to two temporary files as they come, so a call's memory does not grow with
its length (a minute of both directions is 1.9 MB); the files are mixed when the call ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO

import numpy as np

from outdial.speech.audio import Audio, to_pcm16
from outdial.telephony.recording import RecordingStore

RATE = 8000


class Recorder:
    def __init__(self, directory: str | None = None) -> None:
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
        self._bot: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed in close()
        self._callee: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115

    def said(self, frame: Audio) -> None:
        self._bot.write(frame.resampled(RATE).pcm)

    def heard(self, frame: Audio) -> None:
        self._callee.write(frame.resampled(RATE).pcm)

    @staticmethod
    def _read(track: IO[bytes]) -> np.ndarray:
        track.flush()
        track.seek(0)
        data = track.read()
        track.seek(0, os.SEEK_END)
        return np.frombuffer(data, dtype="<i2").astype(np.float32)

    def tracks(self) -> tuple[np.ndarray, np.ndarray]:
        """(callee, bot) as float samples of equal length."""
        bot, callee = self._read(self._bot), self._read(self._callee)
        n = max(len(bot), len(callee))
        return np.pad(callee, (0, n - len(callee))), np.pad(bot, (0, n - len(bot)))

    def mixed(self) -> bytes:
        callee, bot = self.tracks()
        return to_pcm16(callee + bot)

    def stereo(self) -> bytes:
        callee, bot = self.tracks()
        return to_pcm16(np.column_stack([callee, bot]).reshape(-1))

    def save(self, store: RecordingStore, *, stereo: bool = False) -> str:
        recording_id = store.write(self.mixed(), RATE)
        if stereo:
            store.write_channels(recording_id + "-stereo", self.stereo(), RATE, channels=2)
        return recording_id

    def close(self) -> None:
        for track in (self._bot, self._callee):
            with contextlib.suppress(OSError):
                track.close()

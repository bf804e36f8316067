"""Recording both directions of a call: frames in, a mixed mono WAV (and optionally a stereo
one, callee left and bot right) out.

Both directions are continuous 20 ms streams (the sender fills gaps with silence, the receiver
fills lost packets), so frame counts are time and the two tracks line up from the answer.
"""

from __future__ import annotations

import numpy as np

from outdial.speech.audio import Audio, to_pcm16
from outdial.telephony.recording import RecordingStore

RATE = 8000


class Recorder:
    def __init__(self) -> None:
        self._bot: list[bytes] = []
        self._callee: list[bytes] = []

    def said(self, frame: Audio) -> None:
        self._bot.append(frame.resampled(RATE).pcm)

    def heard(self, frame: Audio) -> None:
        self._callee.append(frame.resampled(RATE).pcm)

    def tracks(self) -> tuple[np.ndarray, np.ndarray]:
        bot = np.frombuffer(b"".join(self._bot), dtype="<i2").astype(np.float32)
        callee = np.frombuffer(b"".join(self._callee), dtype="<i2").astype(np.float32)
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

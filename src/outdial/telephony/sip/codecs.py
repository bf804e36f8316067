"""Payload codecs: G.711 (mu-law, A-law) and G.722, each turning 20 ms frames to and from
``Audio``. G.722 carries 16 kHz audio although its RTP clock rate is 8000 (RFC 3551)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from outdial.speech.audio import Audio
from outdial.speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from outdial.telephony.sip.sdp import CODECS


class Codec(Protocol):
    rate: int  # the audio's sample rate (not the RTP clock)

    def encode(self, audio: Audio) -> bytes: ...

    def decode(self, payload: bytes) -> Audio: ...


class Pcmu:
    rate = 8000

    def encode(self, audio: Audio) -> bytes:
        return ulaw_encode(audio)

    def decode(self, payload: bytes) -> Audio:
        return ulaw_decode(payload)


class Pcma:
    rate = 8000

    def encode(self, audio: Audio) -> bytes:
        return alaw_encode(audio)

    def decode(self, payload: bytes) -> Audio:
        return alaw_decode(payload)


class G722Codec:
    """Stateful (ADPCM): one instance per call and direction."""

    rate = 16000

    def __init__(self) -> None:
        from G722 import G722

        self._enc = G722(16000, 64000)
        self._dec = G722(16000, 64000)

    def encode(self, audio: Audio) -> bytes:
        pcm = audio if audio.rate == 16000 else audio.resampled(16000)
        return bytes(self._enc.encode(pcm.array().astype(np.int16)))

    def decode(self, payload: bytes) -> Audio:
        return Audio(np.asarray(self._dec.decode(payload), dtype="<i2").tobytes(), 16000)


def codec_for(payload_type: int) -> Codec:
    name = CODECS.get(payload_type)
    if name == "PCMU":
        return Pcmu()
    if name == "PCMA":
        return Pcma()
    if name == "G722":
        return G722Codec()
    raise ValueError(f"no codec for payload type {payload_type}")

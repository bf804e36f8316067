"""G.711 mu-law and A-law, the two codecs every SIP trunk speaks.

Encoding goes through 64k-entry lookup tables built once with numpy, so a 20 ms frame costs a
single indexing operation. The tables follow ITU-T G.711 (segment/quantisation with the
standard bias for mu-law and even-bit inversion for A-law).
"""

from __future__ import annotations

import numpy as np

from outdial.speech.audio import Audio

_BIAS = 0x21  # on the 14-bit scale (0x84 on 16 bits)
_CLIP = 8159


def _ulaw_encode_one(sample: int) -> int:
    value = sample >> 2  # mu-law works on 14 bits
    sign = 0x80 if value < 0 else 0
    value = min(-value if value < 0 else value, _CLIP) + _BIAS
    exponent = max(0, value.bit_length() - 6)
    if exponent >= 8:  # the clipped top of the range: the largest code of that sign
        return 0x00 if sign else 0x80
    mantissa = (value >> (exponent + 1)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_one(code: int) -> int:
    code = ~code & 0xFF
    sign, exponent, mantissa = code & 0x80, (code >> 4) & 0x07, code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if sign else magnitude


def _alaw_encode_one(sample: int) -> int:
    value = sample >> 3  # A-law works on 13 bits
    mask = 0xD5
    if value < 0:
        mask, value = 0x55, -value - 1
    segment = max(0, value.bit_length() - 5)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((value >> shift) & 0x0F)) ^ mask


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    segment, value = (code >> 4) & 0x07, (code & 0x0F) << 4
    if segment == 0:
        value += 8
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


_ALL = np.arange(-32768, 32768, dtype=np.int32)
_ULAW_ENC = np.array([_ulaw_encode_one(int(s)) for s in _ALL], dtype=np.uint8)
_ALAW_ENC = np.array([_alaw_encode_one(int(s)) for s in _ALL], dtype=np.uint8)
_ULAW_DEC = np.array([_ulaw_decode_one(c) for c in range(256)], dtype="<i2")
_ALAW_DEC = np.array([_alaw_decode_one(c) for c in range(256)], dtype="<i2")


def _encode(table: np.ndarray, audio: Audio) -> bytes:
    pcm = audio if audio.rate == 8000 else audio.resampled(8000)
    return bytes(table[pcm.array().astype(np.int32) + 32768].tobytes())


def ulaw_encode(audio: Audio) -> bytes:
    return _encode(_ULAW_ENC, audio)


def alaw_encode(audio: Audio) -> bytes:
    return _encode(_ALAW_ENC, audio)


def ulaw_decode(data: bytes) -> Audio:
    return Audio(_ULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes(), 8000)


def alaw_decode(data: bytes) -> Audio:
    return Audio(_ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes(), 8000)


def telephone_line(audio: Audio) -> Audio:
    """What a caller hears: audio at 8 kHz through a mu-law codec and back."""
    return ulaw_decode(ulaw_encode(audio))

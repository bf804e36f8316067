"""Optional recognisers whose models the operator supplies: Vosk (Kaldi) and Whisper-class.

Neither ships a model on the registries this project installs from, so each takes a model
path (``OUTDIAL_ASR_MODEL``) and refuses clearly when the package or the model is missing.
Vosk decodes against the listen's phrases (its grammar mode); Whisper is open-vocabulary and
leaves the choice to the intent rules.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from outdial.speech.asr import FILLERS, AsrEngine, Stream
from outdial.speech.audio import Audio
from outdial.speech.errors import SpeechUnavailable, need


def _model_path(name: str, model: str | None) -> str:
    if not model or not os.path.exists(model):
        raise SpeechUnavailable(
            f"the {name} engine needs a model: set OUTDIAL_ASR_MODEL to its directory "
            f"(got {model!r})"
        )
    return model


class VoskAsr(AsrEngine):
    name = "vosk"

    def __init__(self, model: str | None) -> None:
        super().__init__()
        try:
            import vosk
        except ImportError as exc:
            raise need("vosk", "vosk") from exc
        self._vosk = vosk
        self._model = vosk.Model(_model_path(self.name, model))

    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        grammar = [" ".join(p) for p in phrases] + list(FILLERS) + ["[unk]"]
        rec = self._vosk.KaldiRecognizer(self._model, self.rate, json.dumps(grammar))
        return _VoskStream(rec)


class _VoskStream(Stream):
    def __init__(self, rec: Any) -> None:
        self.rec = rec

    def feed(self, pcm: bytes) -> None:
        self.rec.AcceptWaveform(pcm)

    def end(self) -> str:
        text = json.loads(self.rec.FinalResult()).get("text", "")
        return str(text).replace("[unk]", "")


class WhisperAsr(AsrEngine):
    """faster-whisper (CTranslate2): open vocabulary, so the intent rules decide alone."""

    name = "whisper"
    uses_grammar = False

    def __init__(self, model: str | None) -> None:
        super().__init__()
        try:
            import faster_whisper
        except ImportError as exc:
            raise need("faster_whisper", "whisper") from exc
        self._model = faster_whisper.WhisperModel(
            _model_path(self.name, model), device="cpu", compute_type="int8"
        )

    def _impl(self, phrases: tuple[tuple[str, ...], ...]) -> Stream:
        return _WhisperStream(self)


class _WhisperStream(Stream):
    def __init__(self, engine: WhisperAsr) -> None:
        self.engine = engine
        self._pcm: list[bytes] = []

    def feed(self, pcm: bytes) -> None:
        self._pcm.append(pcm)

    def end(self) -> str:
        audio = Audio(b"".join(self._pcm), self.engine.rate)
        samples = audio.array().astype(np.float32) / 32768.0
        segments, _ = self.engine._model.transcribe(samples, language="en", beam_size=1)
        return " ".join(s.text for s in segments)


def make_extra(name: str, model: str | None) -> AsrEngine:
    return VoskAsr(model) if name == "vosk" else WhisperAsr(model)

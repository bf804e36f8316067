"""Vosk (Kaldi): a grammar engine whose model the operator supplies (``OUTDIAL_ASR_MODEL``).

No English Vosk model ships on the registries this project installs from, so the engine
refuses clearly when the package or the model is missing.
"""

from __future__ import annotations

import json
from typing import Any

from outdial.speech.asr.base import DEFAULT_TIMEOUT, FILLERS, AsrEngine, Stream, model_path
from outdial.speech.errors import need


class VoskAsr(AsrEngine):
    """Decodes against the listen's phrases (Vosk's grammar mode) plus fillers and [unk]."""

    name = "vosk"

    def __init__(
        self,
        model: str | None = None,
        *,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
        try:
            import vosk
        except ImportError as exc:
            raise need("vosk", "vosk") from exc
        self._vosk = vosk
        self._model = vosk.Model(model_path(self.name, model))

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

"""Speech recognition: the base class (``base``), one module per engine (``pocketsphinx``,
``whisper``, ``vosk``) and ``make_asr``, which builds an engine by its registered name.

``asr_from_settings`` is the one way the edges (``outdial script test --audio``, the SIP
carrier's dialer) build the recogniser, so both hear with the same engine and settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

from outdial.speech.asr.base import (
    DEFAULT_TIMEOUT,
    FILLERS,
    AsrEngine,
    AsrMetrics,
    Capabilities,
    Recognition,
    Recognizer,
    Stream,
    words,
)
from outdial.speech.asr.pocketsphinx import PocketSphinxAsr, arpa
from outdial.speech.errors import SpeechUnavailable
from outdial.speech.registry import ASR_ENGINES

__all__ = [
    "DEFAULT_TIMEOUT",
    "FILLERS",
    "AsrEngine",
    "AsrMetrics",
    "AsrSettings",
    "Capabilities",
    "PocketSphinxAsr",
    "Recognition",
    "Recognizer",
    "Stream",
    "arpa",
    "asr_from_settings",
    "engine_class",
    "make_asr",
    "words",
]


def engine_class(name: str) -> Callable[..., AsrEngine]:
    """The class registered as ``name`` (its module imported now)."""
    try:
        target = ASR_ENGINES[name]
    except KeyError:
        raise SpeechUnavailable(
            f"unknown ASR engine {name!r}; choose {', '.join(ASR_ENGINES)}"
        ) from None
    module, _, cls = target.partition(":")
    found: Callable[..., AsrEngine] = getattr(importlib.import_module(module), cls)
    return found


def make_asr(name: str, model: str | None = None, **options: Any) -> AsrEngine:
    """The engine ``name`` with ``model`` (None: the engine's own) and engine ``options``
    (``workers``, ``timeout``, and per engine e.g. Whisper's ``threads``)."""
    engine: AsrEngine = engine_class(name)(model, **options)
    return engine


class AsrSettings(Protocol):
    """The settings a recogniser is built from (``outdial.config.Settings`` has them)."""

    @property
    def asr_engine(self) -> str: ...
    @property
    def asr_model(self) -> str | None: ...
    @property
    def asr_workers(self) -> int | None: ...
    @property
    def asr_timeout_seconds(self) -> float: ...


def asr_from_settings(settings: AsrSettings) -> AsrEngine:
    """The process's recogniser, shared by all its calls: engine, model, pool, timeout."""
    return make_asr(
        settings.asr_engine,
        settings.asr_model,
        workers=settings.asr_workers,
        timeout=settings.asr_timeout_seconds,
    )

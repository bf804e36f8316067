"""A recogniser that hears what it is told: scripted results, an optional artificial decode
time. Shipped for tests (ours and users'); re-exported by ``outdial.testing``."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from outdial.speech.asr.base import DEFAULT_TIMEOUT, AsrEngine, Stream

Phrases = tuple[tuple[str, ...], ...]


class FakeAsr(AsrEngine):
    """Each finished utterance hears the next of ``results`` ('' once they run out), or what
    ``results(phrases)`` answers when it is a function.

    ``delay`` seconds pass in every decode, in the pool thread like a real decode: asleep
    (the GIL released, as PocketSphinx and CTranslate2 do) or, with ``spin``, busy in Python
    (holding the GIL between the interpreter's switches: the worst case for the event loop).
    ``grammar`` makes it accept only results an expected phrase explains, like PocketSphinx.
    """

    name = "fake"

    def __init__(
        self,
        results: Iterable[str] | Callable[[Phrases], str] = (),
        *,
        delay: float = 0.0,
        spin: bool = False,
        grammar: bool = False,
        languages: Iterable[str] = ("en",),
        rate: int = 8000,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        confidence: float | None = None,
    ) -> None:
        super().__init__(workers=workers, timeout=timeout)
        self._script: Callable[[Phrases], str] | None = None
        self._queue: deque[str] = deque()
        if callable(results):
            self._script = results
        else:
            self._queue.extend(results)
        self.delay, self.spin = delay, spin
        self.uses_grammar = grammar
        self.languages = frozenset(languages)
        self.rate = rate
        self.confidence = confidence  # reported with every result, like a scoring engine
        self.decoded: list[Phrases] = []  # the phrases of every finished utterance, in order
        self.fed_bytes = 0
        self.running = 0  # decodes under way now
        self.most_running = 0
        self._count = threading.Lock()

    def say(self, *results: str) -> None:
        """Queue more scripted results."""
        self._queue.extend(results)

    def _impl(self, phrases: Phrases) -> Stream:
        return _FakeStream(self, phrases)

    def _decode(self, phrases: Phrases) -> str:
        with self._count:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.spin:
                until = time.perf_counter() + self.delay
                while time.perf_counter() < until:
                    pass
            elif self.delay:
                time.sleep(self.delay)
            self.decoded.append(phrases)
            if self._script is not None:
                return self._script(phrases)
            return self._queue.popleft() if self._queue else ""
        finally:
            with self._count:
                self.running -= 1


class _FakeStream(Stream):
    def __init__(self, engine: FakeAsr, phrases: Phrases) -> None:
        self.engine, self.phrases = engine, phrases

    def feed(self, pcm: bytes) -> None:
        self.engine.fed_bytes += len(pcm)

    def end(self) -> str:
        self.confidence = self.engine.confidence
        return self.engine._decode(self.phrases)

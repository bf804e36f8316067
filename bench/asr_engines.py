"""Benchmark: the recognisers on the phone line, side by side in one run.

Each answer below (replies to an appointment question, written for this bench, not taken from
the templates' phrase lists) is rendered by TTS, padded with line silence and sent through the
8 kHz mu-law line (``speech.loopback.spoken``), then decoded by each engine: PocketSphinx
against the reminder's expected phrases (as on a call), Whisper tiny.en as shipped, and
Whisper variants (expected phrases as initial prompt; without the Silero VAD gate).

Prints per engine and voice: word error rate, exact utterances, decode time p50/p95 (one
decode at a time), and, with ``--capacity``, recognitions per second per core with the
engine's pool busy (``--concurrency`` decodes in flight) and the ratio to PocketSphinx.

    python bench/asr_engines.py [--voices kal,slt,en-us] [--capacity]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from outdial.script.engine import TemplateConversation
from outdial.script.template import load, parse
from outdial.speech.asr import AsrEngine, make_asr, words
from outdial.speech.audio import Audio
from outdial.speech.loopback import spoken
from outdial.speech.tts import make_tts

ROOT = Path(__file__).resolve().parent.parent / "examples"
ANSWERS = [
    "yes I will be there",
    "no I can't make it",
    "please stop calling me",
    "who is this",
    "could we do thursday afternoon instead",
    "sure that works for me",
    "I need to reschedule",
    "not that day but maybe friday",
    "call me back later please",
    "I'm busy right now",
    "yes see you tomorrow",
    "I don't need the appointment anymore",
    "can you move it to next week",
    "remove me from your list",
    "what time was it again",
    "okay I'll come",
    "no thank you",
    "I'm driving can you call me in an hour",
    "yes absolutely",
    "I'm not able to attend",
    "earlier if possible",
    "wrong number",
    "sorry who am I speaking to",
    "I already cancelled that",
    "maybe I have to check my calendar",
    "I will definitely be there on time",
    "don't contact me again",
    "that's fine thanks",
    "I can't come tomorrow morning",
    "is it possible to come on monday",
]


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference words) by Levenshtein distance on normalised words."""
    r, h = words(ref), words(hyp)
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, row[0] = row[0], i
        for j, hw in enumerate(h, 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
            prev, row[j] = row[j], cur
    return row[len(h)], len(r)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def expected_phrases() -> tuple[str, ...]:
    template = load(parse((ROOT / "templates" / "appointment-reminder.yaml").read_text()))
    return TemplateConversation(template)._expect(template.nodes["remind"])


def accuracy(engine: AsrEngine, line: list[Audio], phrases: tuple[str, ...]) -> dict[str, float]:
    edits = total = exact = 0
    times: list[float] = []
    for said, audio in zip(ANSWERS, line, strict=True):
        r = engine.recognizer(phrases)
        for frame in audio.frames():
            r.feed(frame)
        started = time.perf_counter()
        got = r.finish()
        times.append(time.perf_counter() - started)
        e, n = wer(said, got.heard)
        edits, total, exact = edits + e, total + n, exact + (e == 0)
    return {
        "wer": 100 * edits / total,
        "exact": exact,
        "p50": 1000 * pct(times, 0.5),
        "p95": 1000 * pct(times, 0.95),
    }


async def throughput(
    engine: AsrEngine, line: list[Audio], phrases: tuple[str, ...], n: int
) -> float:
    """Recognitions per second with ``n`` decodes in flight through ``finish_async``."""
    queue = [line[i % len(line)] for i in range(max(n * 4, 2 * len(line)))]
    done = 0

    async def one(audio: Audio) -> None:
        nonlocal done
        r = engine.recognizer(phrases)
        for frame in audio.frames():
            r.feed(frame)
        await r.finish_async()
        done += 1

    sem = asyncio.Semaphore(n)

    async def gated(audio: Audio) -> None:
        async with sem:
            await one(audio)

    started = time.perf_counter()
    await asyncio.gather(*(gated(a) for a in queue))
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--voices", default="kal,slt,en-us")
    parser.add_argument("--engines", default="pocketsphinx,whisper,whisper+prompt,whisper-vad")
    parser.add_argument("--capacity", action="store_true")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    phrases = expected_phrases()
    builds = {
        "pocketsphinx": lambda: make_asr("pocketsphinx"),
        "whisper": lambda: make_asr("whisper"),
        "whisper+prompt": lambda: make_asr("whisper", prompt=True),
        "whisper-vad": lambda: make_asr("whisper", vad=False),
    }
    engines = {name: builds[name]() for name in args.engines.split(",")}
    cores = os.cpu_count() or 1
    print(
        f"{len(ANSWERS)} answers per voice, 8 kHz mu-law line, {cores} cores, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    for voice in args.voices.split(","):
        tts = make_tts("espeak-ng" if "-" in voice else "flite", voice)
        line = [spoken(tts, a) for a in ANSWERS]
        for name, engine in engines.items():
            engine.recognize(line[0], phrases)  # warm up
            m = accuracy(engine, line, phrases)
            print(
                f"{voice:6} {name:15} WER {m['wer']:5.1f}%  exact {m['exact']:2.0f}/{len(ANSWERS)}"
                f"  decode p50 {m['p50']:4.0f} ms  p95 {m['p95']:4.0f} ms"
            )
        if args.capacity and voice == args.voices.split(",")[0]:
            rates = {}
            for name, engine in engines.items():
                if name in ("pocketsphinx", "whisper"):
                    rates[name] = asyncio.run(throughput(engine, line, phrases, args.concurrency))
                    print(
                        f"capacity {name:13} {rates[name]:5.2f} recognitions/s, "
                        f"{rates[name] / cores:5.2f} per core (pool of {engine.workers}, "
                        f"{args.concurrency} in flight)"
                    )
            if len(rates) == 2:
                print(
                    f"capacity whisper/pocketsphinx {rates['whisper'] / rates['pocketsphinx']:.2f}"
                )
    for engine in engines.values():
        engine.close()


if __name__ == "__main__":
    main()

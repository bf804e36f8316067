"""Benchmark: reply latency on audio, from the end of the callee's speech to the bot's first
audio frame, through the real engines (flite TTS -> 8 kHz mu-law -> VAD -> PocketSphinx ->
intent rules -> conversation engine -> flite TTS of the next prompt).

Runs the example personas that speak against the example templates, ``--rounds`` times, with
prompt audio cached (the product) and, as the baseline in the same run, with every prompt
rendered afresh. Prints p50/p95 of each and the ratio, against the targets (p50 <= 300 ms,
p95 <= 600 ms with cached prompts). Exit code 0 when the targets are met.

    python bench/turn_latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

from outdial.script.audio import Hearing
from outdial.script.persona import load_persona, run_persona
from outdial.script.template import load, parse
from outdial.speech.asr import PocketSphinxAsr

ROOT = Path(__file__).resolve().parent.parent / "examples"
RUNS = [
    ("appointment-reminder", "reminder-confirms"),
    ("appointment-reminder", "reminder-opts-out"),
    ("payment-reminder", "payment-cannot-pay"),
    ("satisfaction-survey", "survey-unhappy"),
]
TARGET_P50_MS, TARGET_P95_MS = 300.0, 600.0


def measure(rounds: int, cache: bool) -> list[float]:
    hearing = Hearing("flite", PocketSphinxAsr(), cache_prompts=cache)
    latencies: list[float] = []
    for _ in range(rounds):
        for template_name, persona_name in RUNS:
            template = load(parse((ROOT / "templates" / f"{template_name}.yaml").read_text()))
            persona = load_persona((ROOT / "personas" / f"{persona_name}.yaml").read_text())
            result = asyncio.run(run_persona(template, persona, hearing))
            latencies.extend(result["audio"]["replyLatencyMs"])
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    measure(1, True)  # warm up: load the acoustic model, build the phrase models
    cached = measure(args.rounds, True)
    fresh = measure(args.rounds, False)
    c50, c95, f50, f95 = pct(cached, 0.5), pct(cached, 0.95), pct(fresh, 0.5), pct(fresh, 0.95)
    print(f"turns measured: {len(cached)} cached, {len(fresh)} uncached")
    mean_c, mean_f = statistics.mean(cached), statistics.mean(fresh)
    print(f"cached prompts:   p50 {c50:6.1f} ms  p95 {c95:6.1f} ms  mean {mean_c:.1f}")
    print(f"uncached (base):  p50 {f50:6.1f} ms  p95 {f95:6.1f} ms  mean {mean_f:.1f}")
    print(f"ratio cached/uncached: p50 {c50 / f50:.2f}x  p95 {c95 / f95:.2f}x")
    ok = c50 <= TARGET_P50_MS and c95 <= TARGET_P95_MS
    print(
        f"target p50 <= {TARGET_P50_MS:.0f} ms, p95 <= {TARGET_P95_MS:.0f} ms: "
        f"{'ok' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

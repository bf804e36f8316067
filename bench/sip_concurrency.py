"""Benchmark: concurrent SIP calls with media both ways and recording, in one process.

SIPp (`sipp -sn uas -rtp_echo`) answers on loopback and echoes our RTP. For each level N the
carrier places N calls at up to ``--cps`` calls per second; every call plays a cached prompt
in a loop (so RTP flows both ways, recorded) and holds for ``--hold`` seconds, then hangs up.
A level is held when every call connected and ended normally AND the audio was good: p99 of
the send-gap deviation from 20 ms <= 10 ms and < 0.5% of packets late on the 20 ms grid (more
than 10 ms after their slot). Prints, per level: calls per second reached, CPU (share of one
core), memory per call, RTP send jitter p50/p99, late packets, and the far end's audio as it
came back (SIPp echoes it): frames received against frames sent, and frames lost in the
echo; then the highest N held, against
the targets (>= 200 concurrent, >= 50 calls/s, < 1 MB per call). The baseline measured in the
same run is the process idle with the SIP stack started (CPU and RSS before any call).

    python bench/sip_concurrency.py [--levels 50,100,200,300] [--hold 30] [--cps 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from outdial.clock import SystemClock
from outdial.domain.conversation import CallRequest, CallSession, ConversationOutcome
from outdial.domain.outcome import Outcome
from outdial.speech.asr import PocketSphinxAsr
from outdial.speech.tts import FliteTts
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sip.carrier import MediaTotals, SipCarrier, Trunk
from outdial.telephony.sip.stack import SipStack

PROMPT = "This is a load test of the outdial SIP carrier. Please hold the line."
TARGET_CALLS, TARGET_CPS, TARGET_MB = 200, 50.0, 1.0
MAX_P99_JITTER_MS, MAX_LATE = 10, 0.005


class Hold:
    """Says the prompt again and again until ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def run(self, call: CallSession, request: CallRequest) -> ConversationOutcome:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.seconds
        while loop.time() < end:
            await call.say(PROMPT, ((PROMPT, True),))
        return ConversationOutcome()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1]) & ~1


def start_sipp(calls: int, tmp: Path) -> tuple[int, int]:
    port, media = free_port(), free_port()
    program = shutil.which("sipp")
    if program is None:
        sys.exit("sipp is not installed: apt-get install sip-tester")
    out = subprocess.run(
        [program, "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(port),
         "-mp", str(media), "-m", str(calls), "-bg", "-nostdin", "-timeout", "600s",
         "-max_socket", "5000", "-trace_err", "-error_file", str(tmp / "sipp-errors.log")],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    found = re.search(r"PID=\[(\d+)\]", out.stdout + out.stderr)
    if not found:
        sys.exit(f"sipp did not start: {out.stdout}{out.stderr}")
    time.sleep(0.3)
    return port, int(found.group(1))


async def level(
    carrier: SipCarrier, n: int, hold: float, cps: float, rss0: int
) -> dict[str, float]:
    """Place ``n`` calls; memory per call is the growth over the idle process (``rss0``)."""
    proc = psutil.Process()
    carrier.media = MediaTotals()  # this level's calls only
    cpu0, t0 = proc.cpu_times(), time.perf_counter()
    stop = asyncio.Event()
    tasks = []
    placing_started = time.perf_counter()
    for i in range(n):
        request = CallRequest(
            callee=f"1555{i:07d}", caller_id="15550000000", max_ringing=30,
            max_talk=hold + 30, record=True,
        )  # fmt: skip
        tasks.append(asyncio.ensure_future(carrier.place(request, Hold(hold), stop)))
        await asyncio.sleep(max(0.0, placing_started + (i + 1) / cps - time.perf_counter()))
    placed_in = time.perf_counter() - placing_started
    await asyncio.sleep(hold / 2)
    rss_mid = proc.memory_info().rss
    results = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    ok = sum(
        1 for r in results
        if not isinstance(r, BaseException) and r.outcome is Outcome.CONNECTED
        and r.hangup_side == "bot"
    )  # fmt: skip
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
    media = carrier.media
    sent = max(media.sent, 1)
    return {
        "p50_ms": media.jitter_percentile(0.5),
        "p99_ms": media.jitter_percentile(0.99),
        "late": media.late / sent,
        "echoed": media.received / sent,
        "echo_lost": media.lost / max(media.received + media.lost, 1),
        "calls": n,
        "ok": ok,
        "failed": n - ok,
        "cps": n / placed_in,
        "cpu_per_call": cpu / n,
        "cpu": cpu,
        "mb_per_call": (rss_mid - rss0) / n / 1e6,
    }


async def main_async(args: argparse.Namespace) -> int:
    levels = [int(x) for x in args.levels.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="outdial-sipbench-"))
    stack = SipStack("127.0.0.1", 0).start()
    port, pid = start_sipp(sum(levels) + 10, tmp)
    try:
        carrier = SipCarrier(
            stack, Trunk("bench", "127.0.0.1", port), SystemClock(), FliteTts(), PocketSphinxAsr(),
            RecordingStore(tmp / "recordings"), barge_in=False,
        )  # fmt: skip
        carrier.tts.render(PROMPT)  # cached, as a campaign's fixed prompt is
        proc = psutil.Process()
        idle0, w0 = proc.cpu_times(), time.perf_counter()
        await asyncio.sleep(2)
        idle1 = proc.cpu_times()
        idle_cpu = (idle1.user + idle1.system - idle0.user - idle0.system) / (
            time.perf_counter() - w0
        )
        rss_idle = proc.memory_info().rss
        print(f"baseline: idle process with the SIP stack: CPU {idle_cpu:.3f} core, "
              f"RSS {rss_idle / 1e6:.0f} MB")  # fmt: skip
        best = None
        passed: list[dict[str, float]] = []
        for n in levels:
            r = await level(carrier, n, args.hold, args.cps, rss_idle)
            print(
                f"N={n:4d}: ok {r['ok']}/{n}, placed at {r['cps']:.1f} calls/s, "
                f"CPU {r['cpu']:.2f} core ({r['cpu_per_call'] * 1000:.2f} ms/s per call, "
                f"{r['cpu'] / max(idle_cpu, 1e-3):.0f}x idle), memory "
                f"{r['mb_per_call']:.2f} MB per call; RTP send jitter p50 {r['p50_ms']:.0f} ms "
                f"p99 {r['p99_ms']:.0f} ms, late {r['late']:.2%}, echo back "
                f"{r['echoed']:.1%} of sent, lost {r['echo_lost']:.2%}",
                flush=True,
            )
            audio_ok = r["p99_ms"] <= MAX_P99_JITTER_MS and r["late"] < MAX_LATE
            if not audio_ok:
                print(f"N={n}: signalling held but the audio did not (p99 <= "
                      f"{MAX_P99_JITTER_MS} ms and < {MAX_LATE:.1%} late needed)")  # fmt: skip
            if r["failed"] or not audio_ok:
                break
            best = r
            passed.append(r)
            await asyncio.sleep(2)
        if best is None:
            print("no level held without failures")
            return 1
        print(
            f"highest held for {args.hold:.0f} s with zero failed calls: {best['calls']} "
            f"({best['cps']:.1f} calls/s reached, {best['mb_per_call']:.2f} MB per call)"
        )
        meeting = [
            r for r in passed
            if r["calls"] >= TARGET_CALLS and r["cps"] >= TARGET_CPS
            and r["mb_per_call"] < TARGET_MB
        ]  # fmt: skip
        met = bool(meeting)
        shown = max(meeting, key=lambda r: r["calls"]) if meeting else best
        print(
            f"targets (>= {TARGET_CALLS} calls held, >= {TARGET_CPS:.0f} calls/s, "
            f"< {TARGET_MB:.0f} MB per call): {'ok' if met else 'FAIL'} at N={shown['calls']} "
            f"({shown['cps']:.1f} calls/s, {shown['mb_per_call']:.2f} MB per call)"
        )
        return 0 if met else 1
    finally:
        os.kill(pid, signal.SIGUSR1)
        time.sleep(0.5)
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--levels", default="50,100,200,300")
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--cps", type=float, default=60.0, help="placing rate to attempt")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

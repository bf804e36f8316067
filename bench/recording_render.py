"""Benchmark: what speaking the recordings of simulated calls costs the dialer.

One in-process dialer on virtual time (calls take no real time, so the figure is the dialer's
own work) places the same task of connected calls three times, each on a fresh SQLite
database: recording off (the baseline), recording on without speech engines (silence), and
recording on with the conversation spoken (flite: bot kal, callee slt). The template is the
appointment reminder with per-callee variables, so each call renders its variable parts
while the fixed ones and the callee's lines come from the caches. Prints calls/s for each and
the TTS engines' renders and cache hits. The machine is shared, so the three runs are repeated
in turn and the best of each is reported; every repeat has callees of its own (new names).

    python bench/recording_render.py [--calls 200] [--lines 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from outdial.api.bodies import task_submission
from outdial.client import published_example
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.service.scripts import ScriptService
from outdial.service.submit import SubmitPolicy, SubmitService
from outdial.store.repo import Store
from outdial.telephony.callaudio import CallAudio
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sim import SimCarrier, SimProfile
from outdial.testing import make_account

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PROFILE = SimProfile(
    answer=1,
    busy=0,
    no_answer=0,
    unreachable=0,
    vacant=0,
    failed=0,
    voicemail=0,
    ring_seconds=(2, 12),
    talk_seconds=(10, 45),
    post_dial_seconds=(0.5, 1.5),
    personas=(("yes",), ("no", "please do not call me again"), ("who is this", "yes"), ()),
)


def run(
    calls: int, lines: int, folder: Path, record: bool, voices: CallAudio | None, first: int
) -> float:
    """Calls per real second for one task of ``calls`` connected callees, numbered from
    ``first``."""
    name = f"{first}-{record}-{voices is not None}"
    store = Store.open(f"sqlite:///{folder / f'bench-{name}.db'}")
    loop = VirtualTimeLoop()
    clock = LoopClock(loop, START)
    try:
        account = make_account(store, clock, lines=lines, balance="100000")
        source = (EXAMPLES / "templates" / "appointment-reminder.yaml").read_text()
        scripts = ScriptService(store, clock, tts_languages=["en"], long_chars=200)
        script_id = int(scripts.import_script(account.account_id, source)["scriptId"])
        body = published_example(account.app_id, script_id)
        body["allowSendTime"] = []
        body["enableRecording"] = int(record)
        body["numberInfoList"] = [
            {"calleeNumber": f"1415{i:07d}", "text1": f"Caller {i}", "text2": f"June {i % 28 + 1}"}
            for i in range(first, first + calls)
        ]
        SubmitService(store, clock, SubmitPolicy()).submit(
            account.account_id, task_submission(orjson.dumps(body))
        )
        recordings = RecordingStore(folder / f"rec-{name}")
        carrier = SimCarrier(clock, PROFILE, recordings, voices)
        dialer = Dialer(store, carrier, clock, DialerConfig(worker_id="bench"))
        began = time.perf_counter()
        loop.run_until_complete(dialer.drain())
        seconds = time.perf_counter() - began
        if record:
            assert len(list(recordings.directory.glob("*.wav"))) == calls
        return calls / seconds
    finally:
        loop.close()
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outdial-recording-bench-"))
    voices = CallAudio.for_bot("flite", None)
    off = silent = spoken = 0.0
    try:
        for r in range(args.repeat):
            first = r * args.calls
            off = max(off, run(args.calls, args.lines, folder, False, voices, first))
            silent = max(silent, run(args.calls, args.lines, folder, True, None, first))
            spoken = max(spoken, run(args.calls, args.lines, folder, True, voices, first))
    finally:
        voices.close()
    print(
        f"{args.calls} connected simulated calls, {args.lines} lines, virtual time, SQLite, "
        f"best of {args.repeat}"
    )
    print(f"recording off (baseline)   {off:7.1f} calls/s")
    print(f"recording on, silence      {silent:7.1f} calls/s  ({silent / off:.2f}x)")
    print(
        f"recording on, spoken       {spoken:7.1f} calls/s  ({spoken / off:.2f}x)  "
        f"{voices.describe()}"
    )
    for side, engine in (("bot", voices.bot), ("callee", voices.callee)):
        m = engine.metrics
        print(
            f"  {side:6s} renders {m.renders:5d} ({m.render_seconds:.1f} s of work, "
            f"{m.audio_seconds:.0f} s of audio), cache hits {m.cache_hits}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

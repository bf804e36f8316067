"""A recorded simulated call sounds like the call: a template run by the dialer on the
simulated network, with flite speaking the bot (kal) and the callee (slt), downloaded through
the API with byte ranges. The recording is measured against the call record: speech where the
transcript says each side spoke, silence between, the talk's length, two different voices."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.dialer.timeloop import LoopClock, VirtualTimeLoop
from outdial.dialer.worker import Dialer, DialerConfig
from outdial.store import schema
from outdial.store.repo import Store
from outdial.telephony.recording import RecordingStore
from outdial.telephony.sim import SPEECH_SECONDS_PER_CHAR, SimCarrier, SimProfile
from outdial.testing import TestAccount, make_account
from tests.helpers import import_example, post, send_body

RATE = 8000
START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SPEAKING, SILENT = 300.0, 30.0  # RMS of a window with words in it / of line silence
NUMBERS = [f"1415555{n:04d}" for n in range(101, 107)]


@pytest.fixture(scope="module")
def voices() -> Iterator[Any]:
    from outdial.speech.errors import SpeechUnavailable

    try:
        from outdial.telephony.callaudio import CallAudio

        audio = CallAudio.for_bot("flite", None)
    except (SpeechUnavailable, ImportError) as exc:
        pytest.skip(f"speech engine unavailable (.ci/run installs it): {exc}")
    yield audio
    audio.close()


@dataclass
class Call:
    transcript: list[dict[str, Any]]
    talked: float  # seconds, from the record's answer and hang-up times
    track: np.ndarray


@pytest.fixture
def calls(fresh_db_url: str, tmp_path: Path, voices: Any) -> Iterator[list[Call]]:
    store = Store.open(fresh_db_url)
    loop = VirtualTimeLoop()
    clock = LoopClock(loop, START)
    settings = Settings(_env_file=None, recordings_dir=str(tmp_path / "rec"))  # type: ignore[call-arg]
    account = make_account(store, clock)
    script_id = import_example(store, clock, account, "appointment-reminder.yaml")
    profile = SimProfile(
        answer=1,
        busy=0,
        no_answer=0,
        unreachable=0,
        vacant=0,
        failed=0,
        voicemail=0,
        ring_seconds=(1, 3),
        talk_seconds=(60, 60),
        post_dial_seconds=(0, 0),
        personas=(("yes",), ()),  # answers at once, or never (the template asks again)
    )
    carrier = SimCarrier(clock, profile, RecordingStore(settings.recordings_dir), voices)
    try:
        with TestClient(create_app(settings, store, clock)) as api:
            _send(api, account, clock, script_id)
            loop.run_until_complete(
                Dialer(store, carrier, clock, DialerConfig(worker_id="t")).drain()
            )
            yield _downloaded(api, account, clock, store)
    finally:
        loop.close()
        store.close()


def _send(api: TestClient, account: TestAccount, clock: LoopClock, script_id: int) -> None:
    numbers = [{"calleeNumber": n, "text1": "Ann", "text2": "Friday at ten"} for n in NUMBERS]
    body = send_body(
        account, script_id, numberInfoList=numbers, allowSendTime=[], enableRecording=1
    )
    resp = post(api, account, clock, "/v3/voice/group/call/send/ai", body)
    assert resp["status"] == "0", resp


def _downloaded(
    api: TestClient, account: TestAccount, clock: LoopClock, store: Store
) -> list[Call]:
    with store.read() as tx:
        rows = tx.conn.execute(select(schema.calls).order_by(schema.calls.c.id)).mappings().all()
    assert len(rows) == len(NUMBERS)
    out = []
    for row in rows:
        url = f"/v3/voice/recording/{row['recording_file_id']}"
        whole = api.get(url, headers=account.headers(clock))
        assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
        # A seekable player asks for pieces: the header, then from some offset on.
        head = api.get(url, headers={**account.headers(clock), "Range": "bytes=0-43"})
        assert head.status_code == 206 and head.content == whole.content[:44]
        assert head.headers["content-range"] == f"bytes 0-43/{len(whole.content)}"
        with wave.open(io.BytesIO(whole.content)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
            track = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        talked = (row["hangup_time"] - row["answer_time"]) / 1000
        out.append(Call(orjson.loads(row["transcript"]), talked, track))
    return out


def _rms(track: np.ndarray, start: float, end: float) -> float:
    part = track[max(0, int(start * RATE)) : int(end * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(part**2)))


def _pitch(spans: list[tuple[np.ndarray, float, float]]) -> float:
    """Median fundamental frequency (Hz) of the voiced 40 ms frames in (track, start, end)."""
    found = []
    for track, start, end in spans:
        part = track[int(start * RATE) : int(end * RATE)].astype(np.float64)
        for i in range(0, len(part) - 320, 160):
            frame = part[i : i + 320] - part[i : i + 320].mean()
            if np.sqrt(np.mean(frame**2)) < SPEAKING:
                continue
            corr = np.correlate(frame, frame, "full")[319:]
            lag = 20 + int(np.argmax(corr[20:134]))  # 60-400 Hz
            if corr[lag] > 0.5 * corr[0]:
                found.append(RATE / lag)
    assert found, "no voiced frames"
    return float(np.median(found))


def _silent_stretch(track: np.ndarray, start: float, end: float, seconds: float) -> bool:
    """Whether some ``seconds`` between ``start`` and ``end`` are line silence."""
    frame = 0.02
    quiet = [_rms(track, t, t + frame) < SILENT for t in np.arange(start, end - frame, frame)]
    need = int(seconds / frame)
    run = 0
    for q in quiet:
        run = run + 1 if q else 0
        if run >= need:
            return True
    return False


def test_a_recorded_simulated_call_sounds_like_its_record(calls: list[Call]) -> None:
    answers = [any(t["speaker"] == "callee" for t in c.transcript) for c in calls]
    assert any(answers) and not all(answers), "both personas are drawn"
    bot_spans: list[tuple[np.ndarray, float, float]] = []
    callee_spans: list[tuple[np.ndarray, float, float]] = []
    for call in calls:
        assert abs(len(call.track) / RATE - call.talked) <= 0.02  # the talk, within a frame
        turns = call.transcript
        for turn, after in zip(turns, [*turns[1:], None], strict=True):
            at = turn["at"]
            if turn["speaker"] == "bot":
                assert _rms(call.track, at + 0.1, at + 0.6) > SPEAKING, (at, turn)
                slot = len(turn["text"]) * SPEECH_SECONDS_PER_CHAR
                bot_spans.append((call.track, at, at + slot - 0.5))
            else:
                assert _rms(call.track, at - 0.3, at - 0.05) > SPEAKING, (at, turn)
                callee_spans.append((call.track, at - 0.3, at))
            if after is None or turn["speaker"] == "callee":
                continue  # the simulated bot replies the moment an answer is recognised
            # After a prompt the line goes quiet: the pause before an answer, or the listen's
            # whole timeout when the callee says nothing.
            assert _silent_stretch(call.track, at, after["at"], 0.2), (turn, after)
            if turn["speaker"] == after["speaker"] == "bot":
                quiet_from = at + len(turn["text"]) * SPEECH_SECONDS_PER_CHAR + 0.8
                assert _rms(call.track, quiet_from, after["at"] - 0.1) < SILENT
        last = turns[-1]
        assert last["speaker"] == "bot"  # the template says goodbye and hangs up
    # Two voices: flite's kal is a low male voice, slt a higher female one.
    bot, callee = _pitch(bot_spans), _pitch(callee_spans)
    assert callee > 1.3 * bot, (bot, callee)

"""Media behaviour of the SIP carrier against SIPp: barge-in, and a call on A-law (PCMA).

SIPp answers as the callee and speaks a recorded answer into the call; the one SIP stack of the
process comes from this folder's conftest, the template and helpers from test_sip_carrier.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from outdial.clock import SystemClock
from outdial.domain.outcome import Outcome
from outdial.speech.audio import Audio
from outdial.speech.g711 import alaw_encode
from outdial.speech.loopback import spoken
from outdial.telephony.carrier import CallResult
from outdial.telephony.recording import RecordingStore
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import (
    answer_file,
    make_carrier,  # noqa: F401 - a fixture, used by name
    place,
    request,
    run,
    template,  # noqa: F401 - a fixture, used by name
)

PROMPT = "Will you come on Friday? Say yes or no."  # the template's first prompt (text1=Friday)
FRAME = 0.02
SPEECH_DB = -40.0  # a 20 ms frame louder than this is speech (flite's pauses sit below -45)
# SIPp starts speaking this long after the ACK, well inside the ~2.9 s prompt.
BARGE_AFTER_MS = 600
# A window of the prompt that is speech when it plays in full, but comes after the barge-in and
# before the callee has finished answering (so before the bot can reply).
QUIET = (1.5, 2.4)


def levels(samples: np.ndarray, rate: int) -> np.ndarray:
    """RMS level (dBFS) of each 20 ms frame."""
    n = int(rate * FRAME)
    frames = samples[: len(samples) // n * n].astype(np.float64).reshape(-1, n)
    rms = np.sqrt(np.mean(frames**2, axis=1)) / 32768
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-9)))


def window_db(db: np.ndarray, start: float, end: float) -> float:
    """Mean power (dBFS) of the frames from ``start`` to ``end`` seconds."""
    part = db[int(start / FRAME) : int(end / FRAME)]
    return float(10 * np.log10(np.mean(10 ** (part / 10))))


def first_loud(db: np.ndarray, after: float = 0.0) -> float:
    loud = np.nonzero(db[int(after / FRAME) :] > SPEECH_DB)[0]
    assert loud.size, "no speech found"
    return after + float(loud[0]) * FRAME


def speech_end_before(db: np.ndarray, before: float) -> float:
    """Where the last stretch of speech before ``before`` seconds ends."""
    loud = np.nonzero(db[: int(before / FRAME)] > SPEECH_DB)[0]
    assert loud.size, "no speech found"
    return float(loud[-1] + 1) * FRAME


def stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frame levels of the left (callee) and right (bot) channels of a stereo recording."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return levels(a[:, 0], 8000), levels(a[:, 1], 8000)


@dataclass
class Call:
    result: CallResult
    callee_db: np.ndarray  # frame levels of the stereo recording's channels
    bot_db: np.ndarray
    prompt_db: np.ndarray  # frame levels of the first prompt as rendered, in full
    log: str


@pytest.fixture(scope="module")
def barge_in(
    stack: Any,
    template: Any,  # noqa: F811 - the imported fixture
    flite: Any,
    sphinx: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Call:
    """One call: SIPp answers, and talks ("no I will not be there") over the first prompt."""
    from outdial.telephony.sip.carrier import SipCarrier, Trunk

    tmp = tmp_path_factory.mktemp("barge-in")
    said = answer_file(flite, tmp, "no I will not be there")
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK
        + S.pause(BARGE_AFTER_MS) + S.play(said) + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp, "bargein", body)
    carrier = SipCarrier(
        stack,
        Trunk("test", *sipp.address),
        SystemClock(),
        flite,
        sphinx,
        RecordingStore(tmp / "recordings"),
        stereo_recordings=True,
    )
    result = run(sipp, lambda: place(carrier, template, request()))
    assert result.outcome is Outcome.CONNECTED and result.recording is not None, sipp.log()
    callee_db, bot_db = stereo(tmp / "recordings" / f"{result.recording}-stereo.wav")
    prompt = flite.render(PROMPT)
    return Call(result, callee_db, bot_db, levels(prompt.array(), prompt.rate), sipp.log())


def test_barge_in_cuts_the_prompt_short(barge_in: Call) -> None:
    full, bot = barge_in.prompt_db, barge_in.bot_db
    # Played in full, the prompt lasts ~2.9 s and is speech throughout the window ...
    assert len(full) * FRAME > QUIET[1] + 0.3
    assert window_db(full, *QUIET) > -30, window_db(full, *QUIET)
    # ... and the call did start playing it (the bot's channel starts with the prompt) ...
    assert window_db(bot, 0.0, 0.8) > -30, window_db(bot, 0.0, 0.8)
    # ... but the callee talked over it: the bot fell silent in that window.
    assert window_db(bot, *QUIET) < -60, window_db(bot, *QUIET)
    # Where the prompt stopped: after the callee started (600 ms after the ACK), not before.
    cut = speech_end_before(bot, QUIET[0])
    assert BARGE_AFTER_MS / 1000 < cut < QUIET[0], cut
    # The bot spoke again (its reply) only after the window.
    assert first_loud(bot, after=QUIET[0]) > QUIET[1]


def test_barge_in_answer_is_heard_and_branches(barge_in: Call) -> None:
    result = barge_in.result
    assert result.conversation.path == ("ask", "declined"), (result.transcript, barge_in.log)
    assert result.conversation.intent == "decline"
    assert [t.speaker for t in result.transcript] == ["bot", "callee", "bot"], result.transcript
    assert "not be there" in result.transcript[1].text
    assert result.transcript[2].text == "Sorry to hear that. Goodbye."
    assert result.hangup_side == "bot"
    # The answer was taken while the prompt would still have been playing.
    prompt_seconds = len(barge_in.prompt_db) * FRAME
    assert result.transcript[1].at < prompt_seconds + 1.5, result.transcript


def test_barge_in_recording_tracks_line_up(barge_in: Call) -> None:
    # In a recording whose tracks line up, the bot's prompt stops just after the callee's
    # speech starts (VAD onset, jitter buffer): well under 0.35 s, and never before it.
    onset = first_loud(barge_in.callee_db)
    cut = speech_end_before(barge_in.bot_db, QUIET[0])
    assert 0 <= cut - onset <= 0.35, (onset, cut)


def test_pcma_call_hears_an_a_law_answer(
    make_carrier: Any,  # noqa: F811 - the imported fixture
    template: Any,  # noqa: F811 - the imported fixture
    flite: Any,
    tmp_path: Path,
) -> None:
    said = tmp_path / "answer.alaw"
    answer: Audio = spoken(flite, "yes I will be there", pad=0.2)
    said.write_bytes(alaw_encode(answer))
    body = (
        S.RECV_INVITE + S.TRYING + S.RINGING + S.ok(8) + S.RECV_ACK
        + S.pause(3500) + S.play(said, 8) + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "pcma", body)
    carrier = make_carrier(sipp)
    result = run(sipp, lambda: place(carrier, template, request()))
    assert result.outcome is Outcome.CONNECTED and result.sip_code == 200, sipp.log()
    assert carrier.codecs == {8: 1}  # PCMA was chosen from SIPp's answer
    assert result.conversation.intent == "confirm", (result.transcript, sipp.log())
    assert result.conversation.path == ("ask", "confirmed")
    assert [t.speaker for t in result.transcript] == ["bot", "callee", "bot"], result.transcript
    assert "be there" in result.transcript[1].text
    assert sipp.succeeded() == 1, sipp.log()
    # Both directions carried audio: the bot's prompt went out A-law-encoded too.
    assert result.recording is not None
    callee_db, bot_db = stereo(tmp_path / "recordings" / f"{result.recording}-stereo.wav")
    assert window_db(bot_db, 0.0, 2.5) > -30
    assert window_db(callee_db, 0.0, len(callee_db) * FRAME) > -45

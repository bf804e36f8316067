"""The dead-line checks of an answered SIP call (telephony/sip/liveness.py)."""

from __future__ import annotations

import asyncio

import pytest

from outdial.telephony.sip.liveness import Liveness


def _watch(quiet: float, codes: list[int | None], **options: float) -> tuple[str | None, int]:
    pings: list[int | None] = []

    async def ping() -> int | None:
        code = codes[len(pings)] if len(pings) < len(codes) else 200
        pings.append(code)
        return code

    async def main() -> str | None:
        worker_stop = asyncio.Event()
        with Liveness(worker_stop, lambda: quiet, ping, **options) as line:
            await asyncio.wait_for(line.stop.wait(), 10)
        return line.reason

    return asyncio.run(main()), len(pings)


def test_no_rtp_for_the_timeout_ends_the_call_as_media() -> None:
    assert _watch(5.0, [], rtp_timeout=0.2)[0] == "media"


@pytest.mark.parametrize("dead", [481, 408])
def test_keepalive_answered_dead_ends_the_call_as_session(dead: int) -> None:
    reason, pings = _watch(0.0, [200, 405, 501, dead], keepalive=0.01)
    assert reason == "session" and pings == 4  # 200, 405 and 501 prove the far end is there


def test_worker_stop_has_no_reason() -> None:
    async def ping() -> int | None:
        return 200

    async def main() -> str | None:
        worker_stop = asyncio.Event()
        with Liveness(worker_stop, lambda: 100.0, ping) as line:  # both checks off
            worker_stop.set()
            await asyncio.wait_for(line.stop.wait(), 10)
        return line.reason

    assert asyncio.run(main()) is None

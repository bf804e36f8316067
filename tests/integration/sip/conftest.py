"""The one SIP stack of the test process, shared by every SIP module (sippy's reactor can be
started once per process: a second ``SipStack().start()`` raises RuntimeError)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    try:
        from outdial.telephony.sip.stack import SipStack
    except ImportError as exc:  # pragma: no cover - the sip extra is missing
        pytest.skip(f"sip extra missing: {exc}")
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (apt-get install sip-tester); .ci/run installs it")
    s = SipStack("127.0.0.1", 0).start()
    yield s
    s.stop()

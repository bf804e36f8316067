"""RFC 3261 details a carrier's far end relies on, against SIPp scenarios written unlike the
other tests': a rejection whose Contact names another host, a 487 that comes late."""

# ruff: noqa: F811 - the fixtures imported from test_sip_carrier are parameters here
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from outdial.domain.outcome import Outcome
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import (
    make_carrier,  # noqa: F401 - a fixture, used by name
    place,
    request,
    run,
    template,  # noqa: F401 - a fixture, used by name
)

# A 486 as an SBC sends it: Contact and Record-Route name inside addresses nobody listens on.
BUSY_FROM_ELSEWHERE = """  <send retrans="500">
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag07[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Record-Route: <sip:127.0.0.3:5199;lr>
      Contact: <sip:sbc-inside@127.0.0.2:5198;transport=UDP>
      Content-Length: 0
    ]]>
  </send>
"""


def test_ack_of_a_rejection_goes_where_the_invite_went(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    # SIPp gets the ACK only if it is sent to the INVITE's destination; else it resends the
    # 486 and fails the call when its recv times out.
    body = (
        S.RECV_INVITE + S.TRYING + BUSY_FROM_ELSEWHERE
        + '  <recv request="ACK" timeout="15000"/>\n'
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "busy_elsewhere", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request()))
    assert result.outcome is Outcome.BUSY and result.sip_code == 486
    assert sipp.succeeded() == 1, sipp.log()
    log = sipp.messages.read_text(errors="replace")
    (invite,) = S.received(log, "INVITE")
    acks = S.received(log, "ACK")
    assert acks, sipp.log()
    ack = acks[0]
    # RFC 3261 17.1.1.3: the INVITE's Request-URI, its Via (same branch), CSeq number + ACK,
    # the To tag of the response, and no Route taken from the response's Record-Route.
    assert ack.split()[1] == invite.split()[1]
    assert S.header(ack, "Via") == S.header(invite, "Via")
    assert S.header(ack, "CSeq") == S.header(invite, "CSeq").split()[0] + " ACK"
    assert "SIPpTag07" in S.header(ack, "To")
    assert S.header(ack, "Call-ID") == S.header(invite, "Call-ID")
    assert not re.search(r"^Route\s*:", ack, re.I | re.M)


def _ring_then_slow_487(delay_ms: int) -> str:
    return (
        S.RECV_INVITE_KEEP_CSEQ + S.TRYING + S.RINGING + S.CANCELLED + S._reply("200 OK")
        + S.pause(delay_ms) + S.TERMINATED + S.RECV_ACK + S.USES_JUNK
    )  # fmt: skip


def test_ring_time_ends_when_cancel_is_sent_not_when_487_arrives(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    # The 487 comes 8 s after the CANCEL: longer than the carrier waits for it. Ringing
    # still reads the limit (2 s), not the limit plus that wait.
    sipp = S.Sipp(tmp_path, "late487", _ring_then_slow_487(8000))
    result = run(sipp, lambda: place(make_carrier(sipp), template, request(max_ringing=2)))
    assert result.outcome is Outcome.NO_ANSWER and result.sip_code == 487, sipp.log()
    assert result.hangup_side == "bot"
    assert 2 <= result.ring_seconds <= 3, (result.ringing_at, result.ended_at)
    assert S.received(sipp.messages.read_text(errors="replace"), "CANCEL"), sipp.log()


def test_ring_time_reads_the_limit_when_no_487_ever_comes(
    make_carrier: Any, template: Any, tmp_path: Path
) -> None:
    body = S.RECV_INVITE + S.TRYING + S.RINGING + S.CANCELLED + S._reply("200 OK") + S.pause(500)
    sipp = S.Sipp(tmp_path, "no487", body)
    result = run(sipp, lambda: place(make_carrier(sipp), template, request(max_ringing=2)))
    assert result.outcome is Outcome.NO_ANSWER and result.sip_code == 487, sipp.log()
    assert 2 <= result.ring_seconds <= 3, (result.ringing_at, result.ended_at)

"""Blind transfer (REFER, RFC 3515) from a template's transfer node, against SIPp as the far
end: accepted and reported connected, refused, and a transfer target that is busy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from outdial.clock import SystemClock
from outdial.script.engine import TemplateConversation
from outdial.script.template import load, parse
from outdial.telephony.carrier import CallResult
from tests.integration.sip import sipp as S
from tests.integration.sip.test_sip_carrier import request, run

TEMPLATE = """
name: transfer test
language: en
start: hello
nodes:
  hello:
    say: Connecting you now.
    transfer: {to: "15550001111", fallback: "Sorry, nobody can take your call."}
"""

RECV_REFER = '  <recv request="REFER" timeout="30000"/>\n'


def notify(status: str) -> str:
    """The far end's report of the new leg (message/sipfrag), sent inside the dialog."""
    return f"""  <send retrans="500">
    <![CDATA[
      NOTIFY [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From:[$remote_to];tag=[pid]SIPpTag01[call_number]
      To:[$remote_from]
      [last_Call-ID:]
      CSeq: 1 NOTIFY
      Event: refer
      Subscription-State: terminated;reason=noresource
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: message/sipfrag;version=2.0
      Content-Length: [len]

      SIP/2.0 {status}
    ]]>
  </send>
  <recv response="200"/>
"""


@pytest.fixture
def transfer_call(stack: Any, flite: Any, sphinx: Any) -> Any:
    from outdial.telephony.sip.carrier import SipCarrier, Trunk

    def place(sipp: S.Sipp) -> CallResult:
        host, port = sipp.address
        carrier = SipCarrier(stack, Trunk("test", host, port), SystemClock(), flite, sphinx)
        conversation = TemplateConversation(load(parse(TEMPLATE)))

        async def go() -> CallResult:
            return await carrier.place(request(record=False), conversation, asyncio.Event())

        return asyncio.run(go())

    return place


def _answered() -> str:
    return S.RECV_INVITE_FOR_BYE + S.TRYING + S.ok() + S.RECV_ACK


def test_accepted_transfer_is_recorded_transferred(transfer_call: Any, tmp_path: Path) -> None:
    body = (
        _answered() + RECV_REFER + S._reply("202 Accepted", tag=False) + S.pause(300)
        + notify("200 OK") + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "refer_ok", body)
    result = run(sipp, lambda: transfer_call(sipp))
    assert result.transfer == "transferred", sipp.log()
    assert result.hangup_side == "transfer"
    assert [t.text for t in result.transcript] == ["Connecting you now."]  # no fallback
    assert result.conversation.transfer_to == "15550001111"
    assert sipp.succeeded() == 1, sipp.log()
    (refer,) = S.received(sipp.messages.read_text(errors="replace"), "REFER")
    host, port = sipp.address
    assert S.header(refer, "Refer-To") == f"<sip:15550001111@{host}:{port}>"
    assert S.header(refer, "Referred-By")


def test_refused_transfer_falls_back_to_hanging_up(transfer_call: Any, tmp_path: Path) -> None:
    body = (
        S.RECV_INVITE + S.TRYING + S.ok() + S.RECV_ACK + RECV_REFER
        + S._reply("403 Forbidden", tag=False) + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "refer_refused", body)
    result = run(sipp, lambda: transfer_call(sipp))
    assert result.transfer == "refused 403", sipp.log()
    assert result.hangup_side == "bot"
    assert result.transcript[-1].text == "Sorry, nobody can take your call."  # the fallback
    assert sipp.succeeded() == 1, sipp.log()


def test_busy_transfer_target_is_a_failed_transfer(transfer_call: Any, tmp_path: Path) -> None:
    body = (
        _answered() + RECV_REFER + S._reply("202 Accepted", tag=False)
        + notify("100 Trying").replace("terminated;reason=noresource", "active;expires=60")
        + S.pause(300) + notify("486 Busy Here").replace("CSeq: 1 NOTIFY", "CSeq: 2 NOTIFY")
        + S.RECV_BYE
    )  # fmt: skip
    sipp = S.Sipp(tmp_path, "refer_busy", body)
    result = run(sipp, lambda: transfer_call(sipp))
    assert result.transfer == "failed 486", sipp.log()
    assert result.hangup_side == "bot"
    assert sipp.succeeded() == 1, sipp.log()

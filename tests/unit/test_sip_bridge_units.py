"""Bridged transfer pieces without a network: where the second leg goes, and how relayed RTP
is renumbered onto the sending leg's stream."""

from __future__ import annotations

import asyncio
from typing import Any

from outdial.telephony.sip.bridge import sip_uri_leg
from outdial.telephony.sip.carrier import Trunk, target_leg
from outdial.telephony.sip.codecs import Pcmu
from outdial.telephony.sip.rtp import RtpSession, packet, parse

TRUNK = Trunk("t", "10.0.0.1", 5070, username="u", password="p", domain="sip.example",
              dial_prefix="00", transport="tcp")  # fmt: skip


def test_a_number_goes_through_the_trunk_with_its_prefix() -> None:
    leg = target_leg(TRUNK, "+15550001111")
    assert leg is not None
    assert leg.to_user == "0015550001111" and leg.next_hop == ("10.0.0.1", 5070)
    assert leg.domain == "sip.example" and leg.transport == "tcp" and leg.username == "u"


def test_a_sip_uri_goes_to_its_host_with_credentials_only_for_the_trunk() -> None:
    leg = target_leg(TRUNK, "sip:agent@192.0.2.9:5080;transport=TCP")
    assert leg is not None
    assert leg.to_user == "agent" and leg.next_hop == ("192.0.2.9", 5080)
    assert leg.transport == "tcp" and leg.username is None and leg.password is None
    mine = target_leg(TRUNK, "sip:desk@sip.example")
    assert mine is not None and mine.next_hop == ("sip.example", 5060) and mine.username == "u"


def test_a_sip_uri_without_a_user_cannot_be_dialled() -> None:
    assert sip_uri_leg("sip:192.0.2.9") is None
    assert sip_uri_leg("sip:a@h:99999") is None
    assert target_leg(TRUNK, "sip:nobody") is None


class _Wire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, _addr: Any) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False


def test_forwarded_packets_take_our_ssrc_and_continue_our_numbering() -> None:
    async def go() -> list[bytes]:
        rtp = RtpSession(lambda _a: None, lambda _k: None)
        wire = _Wire()
        rtp.transport = wire  # type: ignore[assignment]
        rtp.remote, rtp.pt, rtp.codec = ("192.0.2.1", 4000), 0, Pcmu()
        rtp.seq, rtp.ts = 100, 8000
        for seq, ts in ((5000, 1000), (5002, 1320), (5001, 1160)):  # one reordered
            rtp.forward(packet(0, seq, ts, 0xAAAA, b"x" * 160))
        rtp.forward(packet(0, 7, 50, 0xBBBB, b"y" * 160))  # a new source on the other leg
        return wire.sent

    sent = asyncio.run(go())
    got = [parse(p) for p in sent]
    assert [(g[1], g[2]) for g in got if g] == [(100, 8000), (102, 8320), (101, 8160), (100, 8000)]
    assert all(p[8:12] == sent[0][8:12] for p in sent)  # one SSRC, ours
    assert sent[0][1] & 0x80 and not sent[1][1] & 0x80 and sent[3][1] & 0x80  # marker: new source

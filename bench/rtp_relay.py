"""What relaying a bridged call's RTP costs per packet: forwarding a payload (same codec on
both legs) against decoding and encoding it (PCMU to PCMA).

    PYTHONPATH=src python bench/rtp_relay.py
"""

from __future__ import annotations

import asyncio
import time

from outdial.telephony.sip.codecs import Pcma, Pcmu
from outdial.telephony.sip.rtp import RtpSession, packet

PACKETS = 20000


class _NullWire:
    def sendto(self, _data: bytes, _addr: object) -> None:
        pass

    def is_closing(self) -> bool:
        return False


async def main() -> None:
    rtp = RtpSession(lambda _a: None, lambda _k: None)
    rtp.transport = _NullWire()  # type: ignore[assignment]
    rtp.remote, rtp.pt, rtp.codec = ("192.0.2.1", 4000), 0, Pcmu()
    packets = [packet(0, i, i * 160, 7, b"\x10" * 160) for i in range(PACKETS)]
    t = time.perf_counter()
    for p in packets:
        rtp.forward(p)
    forward = (time.perf_counter() - t) / PACKETS
    mu, a = Pcmu(), Pcma()
    t = time.perf_counter()
    for p in packets:
        a.encode(mu.decode(p[12:]))
    transcode = (time.perf_counter() - t) / PACKETS
    print(f"forward: {forward * 1e6:.1f} us/packet")
    print(f"decode PCMU + encode PCMA: {transcode * 1e6:.1f} us/frame")


if __name__ == "__main__":
    asyncio.run(main())

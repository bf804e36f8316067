"""SIPp as the far end of test calls: scenarios written per test, unique loopback ports,
started in the background and stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'
TAIL = "</scenario>\n"


def _reply(
    status: str, *, tag: bool = True, sdp: str | None = None, extra: str = "", retrans: bool = False
) -> str:
    """A response to the last request; ``retrans`` for final INVITE responses (until ACK)."""
    to_tag = ";tag=[pid]SIPpTag01[call_number]" if tag else ""
    body = ""
    content = "Content-Length: 0"
    if sdp is not None:
        content = "Content-Type: application/sdp\n      Content-Length: [len]"
        body = "\n\n" + sdp
    again = ' retrans="500"' if retrans else ""
    return f"""  <send{again}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:]{to_tag}
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      {extra}{content}{body}
    ]]>
  </send>
"""


def answer_sdp(payload_type: int = 0) -> str:
    names = {0: "PCMU", 8: "PCMA", 9: "G722"}
    return f"""      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {payload_type} 101
      a=rtpmap:{payload_type} {names[payload_type]}/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20"""


TRYING = _reply("100 Trying", tag=False)
RINGING = _reply("180 Ringing")


def ok(payload_type: int = 0) -> str:
    return _reply("200 OK", sdp=answer_sdp(payload_type), retrans=True)


RECV_INVITE = '  <recv request="INVITE" crlf="true"/>\n'
# An INVITE remembered for a BYE the far end sends itself (route set, From, To).
RECV_INVITE_FOR_BYE = """  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="remote_to"/>
    </action>
  </recv>
"""
# An INVITE whose CSeq is kept for a 487 sent after a CANCEL (whose CSeq is then "last").
RECV_INVITE_KEEP_CSEQ = """  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" assign_to="junk,invcseq"/>
    </action>
  </recv>
"""
# After a CANCEL: the 200 to it, then TERMINATED (the 487 to the INVITE).
CANCELLED = '  <recv request="CANCEL"/>\n'
TERMINATED = """  <send retrans="500">
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invcseq] INVITE
      Content-Length: 0
    ]]>
  </send>
"""
USES_JUNK = '  <Reference variables="junk"/>\n'
RECV_ACK = '  <recv request="ACK" crlf="true"/>\n'
RECV_BYE = '  <recv request="BYE"/>\n' + _reply("200 OK", tag=False)
SEND_BYE = """  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From:[$remote_to];tag=[pid]SIPpTag01[call_number]
      To:[$remote_from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
"""


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def play(path: Path, payload_type: int = 0) -> str:
    """Speak a headerless G.711/G.722 file into the call (SIPp's rtp_stream)."""
    return f'  <nop><action><exec rtp_stream="{path},1,{payload_type}"/></action></nop>\n'


def play_pcap(path: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{path}"/></action></nop>\n'


def free_port(span: int = 1) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1]) & ~1
        try:
            for p in range(port, port + span):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


class Sipp:
    """One SIPp UAS running ``body`` (the scenario's steps) for ``calls`` calls."""

    def __init__(
        self, tmp: Path, name: str, body: str, *, calls: int = 1, extra: tuple[str, ...] = ()
    ):
        self.tmp = tmp
        self.scenario = tmp / f"{name}.xml"
        scenario = (
            body if body.lstrip().startswith("<?xml") else HEAD.format(name=name) + body + TAIL
        )
        self.scenario.write_text(scenario)
        self.port = free_port()
        self.media_port = free_port(4)
        self.screen = tmp / f"{name}-screen.log"
        self.messages = tmp / f"{name}-messages.log"
        self.errors = tmp / f"{name}-errors.log"
        self.calls = calls
        self.extra = extra
        self.pid: int | None = None

    @classmethod
    def from_file(cls, tmp: Path, name: str) -> Sipp:
        """A scenario kept under tests/integration/sip/scenarios/."""
        return cls(tmp, name, (Path(__file__).parent / "scenarios" / f"{name}.xml").read_text())

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> Sipp:
        program = shutil.which("sipp")
        assert program, "sipp is not installed (apt-get install sip-tester)"
        cmd = [
            program, "-sf", str(self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
            "-mp", str(self.media_port), "-m", str(self.calls), "-bg", "-nostdin",
            "-timeout", "60s", "-trace_msg", "-message_file", str(self.messages),
            "-trace_screen", "-screen_file", str(self.screen),
            "-trace_err", "-error_file", str(self.errors), *self.extra,
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        found = re.search(r"PID=\[(\d+)\]", out.stdout + out.stderr)
        assert found, (out.stdout, out.stderr)
        self.pid = int(found.group(1))
        time.sleep(0.2)
        return self

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie is not alive
            return Path(f"/proc/{self.pid}/stat").read_text().split()[2] != "Z"
        except FileNotFoundError:
            return False

    def wait(self, timeout: float = 20.0) -> bool:
        """Wait for SIPp to finish its calls; True when it exited by itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGUSR1)  # SIPp's graceful quit
            if not self.wait(3):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def log(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.messages, self.errors) if p.exists()]
        return "\n".join(parts)[-6000:]

    def succeeded(self) -> int:
        """Successful calls SIPp counted (from its final screen)."""
        text = self.screen.read_text(errors="replace") if self.screen.exists() else ""
        found = re.findall(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", text)
        return int(found[-1]) if found else 0


def received(log: str, method: str) -> list[str]:
    """Requests of ``method`` that SIPp received, as text, from its message trace."""
    out = []
    for block in re.split(r"^-{20,}.*$", log, flags=re.MULTILINE):
        if "message received" not in block:
            continue
        text = block.split("bytes :", 1)[-1].strip()
        if text.startswith(f"{method} "):
            out.append(text)
    return out


def header(message: str, name: str) -> str:
    """The first value of header ``name`` in a SIP message (case-insensitive)."""
    found = re.search(rf"^{re.escape(name)}\s*:\s*(.*?)\s*$", message, re.I | re.M)
    assert found, (name, message)
    return found.group(1)

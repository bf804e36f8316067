"""The SDP we offer and what we read from the answer (RFC 4566, audio only)."""

from __future__ import annotations

from dataclasses import dataclass

# Static payload types we can send and receive, in order of preference of the offer.
CODECS = {0: "PCMU", 8: "PCMA", 9: "G722"}
DTMF_PT = 101


def offer(ip: str, port: int, session: int) -> str:
    pts = [*CODECS, DTMF_PT]
    lines = [
        "v=0",
        f"o=outdial {session} {session} IN IP4 {ip}",
        "s=outdial",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
        *(f"a=rtpmap:{pt} {name}/8000" for pt, name in CODECS.items()),
        f"a=rtpmap:{DTMF_PT} telephone-event/8000",
        f"a=fmtp:{DTMF_PT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True, slots=True)
class Media:
    """Where and how to send audio, from the far end's SDP."""

    ip: str
    port: int
    codec: int  # payload type
    dtmf: int | None  # telephone-event payload type, when offered back


class SdpError(ValueError):
    """An answer we cannot use (no audio, or only codecs we do not speak)."""


def answer(text: str) -> Media:
    """The first audio stream of an SDP answer; SdpError when it cannot be used."""
    try:
        return _answer(text)
    except SdpError:
        raise
    except (ValueError, IndexError) as exc:
        raise SdpError(f"malformed SDP: {exc}") from exc


def _answer(text: str) -> Media:
    session_ip: str | None = None
    media_ip: str | None = None
    port: int | None = None
    formats: list[int] = []
    names: dict[int, str] = {}
    section = "session"  # session | audio | other (a later audio stream is ignored)
    for raw in text.splitlines():
        key, _, value = raw.strip().partition("=")
        if key == "m":
            parts = value.split()
            if len(parts) >= 4 and parts[0] == "audio" and port is None:
                section = "audio"
                port = int(parts[1].split("/")[0])  # "4000/2" is a port and a count
                formats = [int(p) for p in parts[3:] if p.isdigit()]
            else:
                section = "other"
        elif key == "c":
            ip = value.split()[-1].split("/")[0]
            if section == "session":
                session_ip = ip
            elif section == "audio":
                media_ip = ip
        elif key == "a" and section == "audio" and value.startswith("rtpmap:"):
            number, _, name = value[len("rtpmap:") :].partition(" ")
            if number.isdigit():
                names[int(number)] = name.split("/")[0].upper()
    address = media_ip or session_ip
    if port is None or not address or port == 0:
        raise SdpError("the answer has no active audio stream")
    dtmf = next((pt for pt, n in names.items() if n == "TELEPHONE-EVENT"), None)
    for pt in formats:
        if pt in CODECS and names.get(pt, CODECS[pt]) == CODECS[pt]:
            return Media(address, port, pt, dtmf)
    raise SdpError(f"no codec in common (answer offers payload types {formats})")

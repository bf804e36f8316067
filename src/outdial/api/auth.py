"""LAAFFIC request signing: Sign = hex MD5(apiKey + apiSecret + Timestamp), per-key IP lists."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from outdial.errors import AuthError, IpRestricted, TimestampExpired
from outdial.store.records import KeyRecord

Network = IPv4Network | IPv6Network
# Compared against when the key is unknown, so a miss costs the same as a bad signature.
_DUMMY_SECRET = "0" * 32


def sign(api_key: str, api_secret: str, timestamp: str | int) -> str:
    """The LAAFFIC signature of a request."""
    return hashlib.md5(
        f"{api_key}{api_secret}{timestamp}".encode(), usedforsecurity=False
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's account."""

    account_id: int
    api_key: str


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The caller's address: the peer, or behind a trusted proxy the nearest untrusted hop."""
    if peer is None:
        return ""
    if not forwarded_for or not _in_any(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_any(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _in_any(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; match them as IPv4.
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return any(ip in n for n in networks)


def verify(
    key: KeyRecord | None,
    api_key: str,
    timestamp: str,
    signature: str,
    ip: str,
    now: datetime,
    skew_seconds: int,
) -> Caller:
    """Check a request's headers; raise -1, -2 or -16."""
    expected = sign(api_key, key.api_secret if key else _DUMMY_SECRET, timestamp)
    given = signature.strip().lower().encode()
    good = hmac.compare_digest(expected.encode(), given)
    if key is None or not good or key.disabled:
        raise AuthError("authentication error: unknown Api-Key or bad Sign")
    if key.ip_allow and not _in_any(ip, [ip_network(c, strict=False) for c in key.ip_allow]):
        raise IpRestricted("restricted IP access: this address is not allowed for the key")
    try:
        ts = int(timestamp.strip())
    except ValueError as exc:
        raise AuthError("authentication error: Timestamp must be Unix seconds") from exc
    if abs(now.timestamp() - ts) > skew_seconds:
        raise TimestampExpired(
            f"timestamp expires: Timestamp is more than {skew_seconds} s from the server's time"
        )
    return Caller(account_id=key.account_id, api_key=key.api_key)

"""Refusing push URLs that point into the server's own network (SSRF).

A push URL makes outdial's server send requests wherever an operator (or a console user) says.
Unless ``OUTDIAL_PUSH_ALLOW_PRIVATE`` is set, a URL is accepted only when every address its
host resolves to is a public (globally routable) one: loopback, private, link-local (cloud
metadata at 169.254.169.254), shared (100.64/10), multicast, reserved and unspecified
addresses are refused, IPv4-mapped IPv6 included.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

from outdial.errors import ValidationError

Resolver = Callable[[str, int], Sequence[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 read as IPv4)."""
    ip: IPv4Address | IPv6Address = ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class PushTargets:
    """Which push URLs may be stored and called."""

    allow_private: bool = False
    resolve: Resolver = field(default=resolve_host)

    def check(self, url: str) -> str:
        """``url`` if it is an http(s) URL to a public host; else ValidationError (-21)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("push URL must be http:// or https:// with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValidationError("push URL has an invalid port") from exc
        if self.allow_private:
            return url
        host = parts.hostname
        try:
            addresses: Sequence[str] = [str(ip_address(host))]
        except ValueError:
            addresses = self.resolve(host, port)
        if not addresses:
            raise ValidationError(f"push URL host {host!r} does not resolve")
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise ValidationError(
                f"push URL host {host!r} is a private, loopback or link-local address "
                f"({private[0]}); set OUTDIAL_PUSH_ALLOW_PRIVATE=true to allow it"
            )
        return url

    def refused_literal(self, url: str) -> str | None:
        """At delivery: why ``url``, whose host is an IP address, may not be called (None when
        it may, or when its host is a name: names are checked as they resolve)."""
        if self.allow_private:
            return None
        host = urlsplit(url).hostname or ""
        try:
            address = str(ip_address(host))
        except ValueError:
            return None
        if is_public(address):
            return None
        return f"refused: {address} is not a public address (OUTDIAL_PUSH_ALLOW_PRIVATE)"

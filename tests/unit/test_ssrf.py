"""Push URL targets: public hosts only unless private ones are allowed (SSRF)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from outdial.errors import ValidationError
from outdial.notify.ssrf import PushTargets

DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "sneaky.example.com": ["93.184.216.34", "10.1.2.3"],  # one private answer is enough
    "metadata.example.com": ["169.254.169.254"],
    "cgnat.example.com": ["100.64.0.7"],
    "v6.example.com": ["2606:4700:4700::1111"],
}


def _resolve(host: str, port: int) -> Sequence[str]:
    return DNS.get(host, [])


GUARD = PushTargets(resolve=_resolve)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/outdial",
        "http://hooks.example.com:8080/x?y=1",
        "https://v6.example.com/",
        "http://93.184.216.34/",
    ],
)
def test_public_targets_pass(url: str) -> None:
    assert GUARD.check(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/push", "loopback"),
        ("http://localhost/push", "does not resolve"),  # not in the fake DNS
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[::ffff:127.0.0.1]/", "private"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "private"),
        ("http://224.0.0.1/", "private"),
        ("http://sneaky.example.com/", "10.1.2.3"),
        ("http://metadata.example.com/", "169.254.169.254"),
        ("http://cgnat.example.com/", "100.64.0.7"),
        ("ftp://hooks.example.com/", "http"),
        ("http:///nohost", "http"),
        ("http://hooks.example.com:99999/", "port"),
    ],
)
def test_private_and_malformed_targets_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValidationError) as err:
        GUARD.check(url)
    assert why in err.value.message and int(err.value.code) == -21


def test_the_operator_may_allow_private_targets() -> None:
    allowed = PushTargets(allow_private=True, resolve=_resolve)
    assert allowed.check("http://127.0.0.1:9/push") == "http://127.0.0.1:9/push"
    with pytest.raises(ValidationError):
        allowed.check("file:///etc/passwd")

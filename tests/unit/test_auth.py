"""outdial.api.auth: LAAFFIC signatures, header verification and the caller's address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from outdial import client
from outdial.api.auth import Caller, client_ip, sign, verify
from outdial.errors import AuthError, IpRestricted, TimestampExpired
from outdial.store.records import KeyRecord
from outdial.testing import FakeClock

# LAAFFIC's worked example from its API documentation.
EXAMPLE_KEY = "bDqJFiq9"
EXAMPLE_SECRET = "7bz1lzh9"
EXAMPLE_TS = 1630468800
EXAMPLE_SIGN = "05d7a50893e22a5c4bb3216ae3396c7c"

NOW = datetime.fromtimestamp(EXAMPLE_TS, UTC)
SKEW = 60


def key_record(**changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": 1,
        "account_id": 42,
        "api_key": EXAMPLE_KEY,
        "api_secret": EXAMPLE_SECRET,
        "ip_allow": (),
        "disabled": False,
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


def check(
    key: KeyRecord | None = None,
    *,
    api_key: str = EXAMPLE_KEY,
    timestamp: str = str(EXAMPLE_TS),
    signature: str | None = None,
    ip: str = "203.0.113.9",
    now: datetime = NOW,
) -> Caller:
    key = key if key is not None else key_record()
    secret = key.api_secret
    if signature is None:
        signature = sign(api_key, secret, timestamp)
    return verify(key, api_key, timestamp, signature, ip, now, SKEW)


# --- sign --------------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [EXAMPLE_TS, str(EXAMPLE_TS)])
def test_sign_matches_laaffic_example(timestamp: int | str) -> None:
    assert sign(EXAMPLE_KEY, EXAMPLE_SECRET, timestamp) == EXAMPLE_SIGN


def test_client_sign_equals_server_sign() -> None:
    assert client.sign(EXAMPLE_KEY, EXAMPLE_SECRET, EXAMPLE_TS) == EXAMPLE_SIGN
    for ts in ["0", "1", "9999999999", "1630468801"]:
        assert client.sign("k", "s", ts) == sign("k", "s", ts)


def test_sign_is_lowercase_hex_md5() -> None:
    out = sign("a", "b", 1)
    assert len(out) == 32
    assert out == out.lower()
    int(out, 16)


def test_sign_depends_on_every_part() -> None:
    base = sign(EXAMPLE_KEY, EXAMPLE_SECRET, EXAMPLE_TS)
    assert sign(EXAMPLE_KEY + "x", EXAMPLE_SECRET, EXAMPLE_TS) != base
    assert sign(EXAMPLE_KEY, EXAMPLE_SECRET + "x", EXAMPLE_TS) != base
    assert sign(EXAMPLE_KEY, EXAMPLE_SECRET, EXAMPLE_TS + 1) != base


def test_sign_non_ascii_is_utf8() -> None:
    assert sign("ключ", "秘密", 1) == client.sign("ключ", "秘密", 1)


# --- verify: success ---------------------------------------------------------------------------


def test_verify_example_request() -> None:
    caller = check(signature=EXAMPLE_SIGN)
    assert caller == Caller(account_id=42, api_key=EXAMPLE_KEY)


@pytest.mark.parametrize("signature", [EXAMPLE_SIGN.upper(), f"  {EXAMPLE_SIGN}\n"])
def test_verify_signature_case_and_space_insensitive(signature: str) -> None:
    assert check(signature=signature).account_id == 42


@pytest.mark.parametrize("offset", [-SKEW, 0, SKEW])
def test_verify_timestamp_within_skew(offset: int) -> None:
    now = NOW + timedelta(seconds=offset)
    assert check(now=now).account_id == 42


def test_verify_with_fake_clock() -> None:
    clock = FakeClock(NOW)
    assert check(now=clock.now()).api_key == EXAMPLE_KEY
    clock.advance(SKEW)
    assert check(now=clock.now()).api_key == EXAMPLE_KEY
    clock.advance(1)
    with pytest.raises(TimestampExpired):
        check(now=clock.now())


def test_verify_timestamp_with_whitespace() -> None:
    ts = f" {EXAMPLE_TS} "
    assert check(timestamp=ts, signature=sign(EXAMPLE_KEY, EXAMPLE_SECRET, ts)).account_id == 42


# --- verify: -1 --------------------------------------------------------------------------------


def test_unknown_key_is_auth_error() -> None:
    with pytest.raises(AuthError) as info:
        verify(None, EXAMPLE_KEY, str(EXAMPLE_TS), EXAMPLE_SIGN, "203.0.113.9", NOW, SKEW)
    assert info.value.code == -1


def test_unknown_key_with_dummy_secret_signature_is_still_rejected() -> None:
    signature = sign(EXAMPLE_KEY, "0" * 32, EXAMPLE_TS)
    with pytest.raises(AuthError):
        verify(None, EXAMPLE_KEY, str(EXAMPLE_TS), signature, "203.0.113.9", NOW, SKEW)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0" * 32,
        EXAMPLE_SIGN[:-1],
        EXAMPLE_SIGN + "0",
        sign(EXAMPLE_KEY, "wrong", EXAMPLE_TS),
        sign(EXAMPLE_KEY, EXAMPLE_SECRET, EXAMPLE_TS + 1),
        "ü" * 32,
    ],
)
def test_bad_signature_is_auth_error(signature: str) -> None:
    with pytest.raises(AuthError, match="bad Sign"):
        check(signature=signature)


def test_disabled_key_is_auth_error() -> None:
    with pytest.raises(AuthError) as info:
        check(key_record(disabled=True), signature=EXAMPLE_SIGN)
    assert type(info.value) is AuthError


@pytest.mark.parametrize("timestamp", ["abc", "1630468800.0", "", "1e9"])
def test_non_integer_timestamp_is_auth_error(timestamp: str) -> None:
    with pytest.raises(AuthError, match="Unix seconds"):
        check(timestamp=timestamp)


def test_bad_signature_checked_before_ip_and_time() -> None:
    far = NOW + timedelta(days=1)
    with pytest.raises(AuthError):
        check(key_record(ip_allow=("10.0.0.0/8",)), signature="0" * 32, now=far)


# --- verify: -2 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "ip"),
    [
        (("203.0.113.9",), "203.0.113.9"),
        (("203.0.113.0/24",), "203.0.113.200"),
        (("10.0.0.0/8", "203.0.113.9/32"), "203.0.113.9"),
        (("203.0.113.9/24",), "203.0.113.1"),  # host bits are ignored
        (("2001:db8::/32",), "2001:db8::1"),
        (("10.0.0.0/8", "2001:db8::/32"), "2001:db8:ffff::1"),
    ],
)
def test_ip_allowed(allow: tuple[str, ...], ip: str) -> None:
    assert check(key_record(ip_allow=allow), ip=ip).account_id == 42


@pytest.mark.parametrize(
    ("allow", "ip"),
    [
        (("203.0.113.9",), "203.0.113.10"),
        (("203.0.113.0/24",), "198.51.100.1"),
        (("2001:db8::/32",), "203.0.113.9"),
        (("203.0.113.0/24",), "2001:db8::1"),
        (("203.0.113.0/24",), ""),
        (("203.0.113.0/24",), "not-an-ip"),
    ],
)
def test_ip_restricted(allow: tuple[str, ...], ip: str) -> None:
    with pytest.raises(IpRestricted) as info:
        check(key_record(ip_allow=allow), ip=ip)
    assert info.value.code == -2


def test_ip_checked_before_timestamp() -> None:
    with pytest.raises(IpRestricted):
        check(key_record(ip_allow=("10.0.0.1",)), ip="10.0.0.2", now=NOW + timedelta(days=1))


def test_empty_allow_list_allows_any_address() -> None:
    assert check(key_record(ip_allow=()), ip="").account_id == 42


# --- verify: -16 -------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-SKEW - 1, SKEW + 1, 86_400, -86_400])
def test_timestamp_expired(offset: int) -> None:
    with pytest.raises(TimestampExpired) as info:
        check(now=NOW + timedelta(seconds=offset))
    assert info.value.code == -16
    assert f"more than {SKEW} s" in str(info.value)


def test_timestamp_in_milliseconds_is_expired() -> None:
    ts = str(EXAMPLE_TS * 1000)
    with pytest.raises(TimestampExpired):
        check(timestamp=ts)


def test_zero_skew_requires_the_exact_second() -> None:
    ts = str(EXAMPLE_TS)
    signature = sign(EXAMPLE_KEY, EXAMPLE_SECRET, ts)
    assert verify(key_record(), EXAMPLE_KEY, ts, signature, "", NOW, 0).account_id == 42
    later = NOW + timedelta(seconds=1)
    with pytest.raises(TimestampExpired):
        verify(key_record(), EXAMPLE_KEY, ts, signature, "", later, 0)


# --- client_ip ---------------------------------------------------------------------------------

Networks = list[IPv4Network | IPv6Network]
PROXIES: Networks = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


def test_no_peer_gives_empty_address() -> None:
    assert client_ip(None, "198.51.100.7", PROXIES) == ""


@pytest.mark.parametrize("forwarded", [None, "", "198.51.100.7"])
def test_without_trusted_proxies_the_peer_is_the_caller(forwarded: str | None) -> None:
    assert client_ip("203.0.113.9", forwarded, []) == "203.0.113.9"


def test_untrusted_peer_cannot_spoof_forwarded_for() -> None:
    assert client_ip("203.0.113.9", "198.51.100.7", PROXIES) == "203.0.113.9"


@pytest.mark.parametrize("forwarded", [None, "", " , ,"])
def test_trusted_peer_without_usable_header_is_the_caller(forwarded: str | None) -> None:
    assert client_ip("10.0.0.1", forwarded, PROXIES) == "10.0.0.1"


def test_trusted_peer_single_hop() -> None:
    assert client_ip("10.0.0.1", "198.51.100.7", PROXIES) == "198.51.100.7"


def test_multiple_hops_take_the_nearest_untrusted() -> None:
    # client-supplied spoof, real client, then two of our proxies
    forwarded = "1.1.1.1, 198.51.100.7, 10.1.1.1, 10.2.2.2"
    assert client_ip("10.0.0.1", forwarded, PROXIES) == "198.51.100.7"


def test_multiple_hops_without_spaces() -> None:
    assert client_ip("10.0.0.1", "1.1.1.1,198.51.100.7,10.1.1.1", PROXIES) == "198.51.100.7"


def test_ipv6_hops() -> None:
    forwarded = "2001:db8::7, fd00::2"
    assert client_ip("fd00::1", forwarded, PROXIES) == "2001:db8::7"


def test_all_trusted_chain_gives_the_leftmost_hop() -> None:
    assert client_ip("10.0.0.1", "10.9.9.9, 10.8.8.8, 10.7.7.7", PROXIES) == "10.9.9.9"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("garbage", "garbage"),
        ("198.51.100.7, unknown", "unknown"),
        ("198.51.100.7:4711", "198.51.100.7:4711"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("unknown, 10.1.1.1", "unknown"),
    ],
)
def test_garbage_hops_count_as_untrusted(forwarded: str, expected: str) -> None:
    # A hop that is not an address is never trusted, so it is returned as the caller; it then
    # fails any per-key IP allow list.
    assert client_ip("10.0.0.1", forwarded, PROXIES) == expected


def test_garbage_peer_is_not_trusted() -> None:
    assert client_ip("testclient", "198.51.100.7", PROXIES) == "testclient"


def test_garbage_caller_fails_ip_allow_list() -> None:
    ip = client_ip("10.0.0.1", "garbage", PROXIES)
    with pytest.raises(IpRestricted):
        check(key_record(ip_allow=("0.0.0.0/0", "::/0")), ip=ip)

"""The push report signature: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from outdial.client import push_signature, verify_push_signature

SECRET = "s3cr3t-push-key"
BODY = b'{"voiceId":"1","callee":"8613242926514"}'
T = 1_780_000_000


def test_the_header_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert push_signature(SECRET, T, BODY) == f"t={T},v1={expected}"


def test_a_good_signature_verifies_within_the_tolerance() -> None:
    header = push_signature(SECRET, T, BODY)
    assert verify_push_signature(SECRET, header, BODY, now=T)
    assert verify_push_signature(SECRET, header, BODY, now=T + 300)
    assert verify_push_signature(SECRET, header, BODY, now=T - 300)
    assert verify_push_signature(SECRET, header.replace(",", ", "), BODY, now=T)


def test_a_tampered_body_fails() -> None:
    header = push_signature(SECRET, T, BODY)
    assert not verify_push_signature(SECRET, header, BODY.replace(b"1", b"2", 1), now=T)
    assert not verify_push_signature(SECRET, header, BODY + b" ", now=T)


def test_a_wrong_secret_fails() -> None:
    header = push_signature(SECRET, T, BODY)
    assert not verify_push_signature("another-secret", header, BODY, now=T)


def test_a_changed_timestamp_fails() -> None:
    mac = push_signature(SECRET, T, BODY).split("v1=")[1]
    assert not verify_push_signature(SECRET, f"t={T + 1},v1={mac}", BODY, now=T)


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_a_stale_or_future_timestamp_fails(skew: int) -> None:
    header = push_signature(SECRET, T, BODY)
    assert not verify_push_signature(SECRET, header, BODY, now=T + skew)


def test_the_tolerance_is_a_parameter() -> None:
    header = push_signature(SECRET, T, BODY)
    assert verify_push_signature(SECRET, header, BODY, now=T + 3600, tolerance=3600)
    assert not verify_push_signature(SECRET, header, BODY, now=T + 10, tolerance=5)


def test_any_of_several_v1_values_may_match() -> None:
    mac = push_signature(SECRET, T, BODY).split("v1=")[1]
    header = f"t={T},v1={'0' * 64},v1={mac}"
    assert verify_push_signature(SECRET, header, BODY, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"v1={'a' * 64}",
        f"t={T}",
        f"t=,v1={'a' * 64}",
        f"t=soon,v1={'a' * 64}",
        f"t=-{T},v1={'a' * 64}",
        f"t={T},t={T},v1={'a' * 64}",
        f"t={T};v1={'a' * 64}",
        f"t={T},v1=é{'a' * 63}",
        f"t=１２３,v1={'a' * 64}",
    ],
)
def test_a_malformed_header_fails_without_raising(header: str) -> None:
    assert not verify_push_signature(SECRET, header, BODY, now=T)


def test_a_malformed_header_with_a_valid_signature_still_fails() -> None:
    good = push_signature(SECRET, T, BODY)
    assert not verify_push_signature(SECRET, good + ",junk", BODY, now=T)
    assert not verify_push_signature(SECRET, f"t={T},{good}", BODY, now=T)

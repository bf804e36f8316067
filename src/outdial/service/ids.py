"""Random public identifiers (app ids, API keys and secrets)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def token(length: int) -> str:
    """A random alphanumeric string from the OS CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))

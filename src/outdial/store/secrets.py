"""API secrets and push secrets at rest: encrypted with the server's key when it has one.

A stored secret is either ``enc:v1:<Fernet token>`` or, in a database written without a key,
the plain secret. With ``OUTDIAL_SECRET_KEYS`` set (comma-separated Fernet keys, the first
encrypts, every one decrypts) new secrets are stored encrypted, and ``outdial secrets
rotate`` re-encrypts every stored secret with the first key (plain ones included), after
which the old keys can be removed. The LAAFFIC signature needs the secret itself, so it is
encrypted rather than hashed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "enc:v1:"


class SecretKeyError(Exception):
    """A stored secret cannot be read with the configured keys."""


class SecretBox:
    """Seals and opens stored secrets; without keys it stores them as they are."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys]) if keys else None
        except ValueError as exc:
            raise SecretKeyError(
                "OUTDIAL_SECRET_KEYS must be Fernet keys (32 url-safe base64 bytes); "
                "make one with `outdial secrets new-key`"
            ) from exc
        # Secrets are opened on every signed request and every push: decrypt each once.
        self._opened = lru_cache(maxsize=4096)(self._open)

    @property
    def encrypting(self) -> bool:
        return self._fernet is not None

    def seal(self, secret: str) -> str:
        if self._fernet is None:
            return secret
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret ``stored`` holds (plain secrets are returned as they are)."""
        return self._opened(stored)

    def _open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise SecretKeyError("a stored secret is encrypted and OUTDIAL_SECRET_KEYS is not set")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError("a stored secret does not open with OUTDIAL_SECRET_KEYS") from exc

    def reseal(self, stored: str) -> str:
        """``stored`` encrypted with the first key (opened with any key first)."""
        return self.seal(self.open(stored))


def new_key() -> str:
    return Fernet.generate_key().decode()


PLAIN = SecretBox()

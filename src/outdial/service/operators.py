"""Console operators: creating them, signing them in (argon2, throttled), and their sessions.

A session is a cookie ``<payload>.<HMAC-SHA256>`` signed with a key kept in the database, so
every process serving the database accepts it. It carries the operator id, the operator's
session version (raised on a password change, which ends older sessions) and an expiry. CSRF
tokens are derived from the session (an HMAC of its nonce), so they need no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from outdial.clock import Clock, epoch_ms
from outdial.errors import AuthError, NotFound, ValidationError
from outdial.store import operators as q
from outdial.store.repo import IntegrityError, Store

ADMIN = "admin"
ACCOUNT_USER = "account"
ROLES = (ADMIN, ACCOUNT_USER)
SESSION_SECONDS = 12 * 3600
# Failed sign-ins allowed before a lock, then a lock that doubles with each further failure.
FREE_FAILURES = 5
FIRST_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginThrottled(AuthError):
    """too many failed sign-ins: wait before trying again"""


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    username: str
    role: str
    account_id: int | None

    @property
    def scope(self) -> int | None:
        """The account this operator may see; None: every account (an admin)."""
        return None if self.role == ADMIN else self.account_id


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OperatorService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._secret: bytes | None = None

    # --- users --------------------------------------------------------------------------
    def add(self, username: str, password: str, role: str, account_id: int | None) -> Operator:
        if not _USERNAME.match(username):
            raise ValidationError("username: 1 to 64 letters, digits or . _ @ -")
        if len(password) < MIN_PASSWORD:
            raise ValidationError(f"password: at least {MIN_PASSWORD} characters")
        if role not in ROLES:
            raise ValidationError(f"role: one of {', '.join(ROLES)}")
        if role == ADMIN and account_id is not None:
            raise ValidationError("an admin sees every account: give no account")
        if role == ACCOUNT_USER and account_id is None:
            raise ValidationError("an account user needs the account it may see")
        digest = _hasher.hash(password)
        now = epoch_ms(self.clock.now())
        try:
            with self.store.write() as tx:
                if account_id is not None and tx.account(account_id) is None:
                    raise NotFound(f"account {account_id} does not exist")
                new_id = q.insert_operator(tx.conn, username, digest, role, account_id, now)
        except IntegrityError as exc:
            raise ValidationError(f"user {username!r} already exists") from exc
        return Operator(new_id, username, role, account_id)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValidationError(f"password: at least {MIN_PASSWORD} characters")
        with self.store.write() as tx:
            found = q.operator_named(tx.conn, username)
            if found is None:
                raise NotFound(f"user {username!r} does not exist")
            q.update_operator(
                tx.conn,
                found.id,
                password_hash=_hasher.hash(password),
                session_version=found.session_version + 1,
                failed_logins=0,
                locked_until=None,
            )

    def end_sessions(self, operator_id: int) -> None:
        """Sign out: every session of this operator stops counting (a copied cookie too)."""
        with self.store.write() as tx:
            found = q.operator(tx.conn, operator_id)
            if found is not None:
                q.update_operator(tx.conn, operator_id, session_version=found.session_version + 1)

    # --- signing in -----------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Operator:
        """The operator, or AuthError (wrong name or password) / LoginThrottled (locked)."""
        now = epoch_ms(self.clock.now())
        with self.store.read() as tx:
            found = q.operator_named(tx.conn, username) if _USERNAME.match(username) else None
        if found is None:
            _verify(_DUMMY_HASH, password)
            raise AuthError("wrong username or password")
        if found.locked_until is not None and found.locked_until > now:
            wait = -(-(found.locked_until - now) // 1000)
            raise LoginThrottled(f"too many failed sign-ins: try again in {wait} s")
        if not _verify(found.password_hash, password):
            with self.store.write() as tx:
                current = q.operator(tx.conn, found.id)
                failures = (current.failed_logins if current else found.failed_logins) + 1
                lock = None
                if failures >= FREE_FAILURES:
                    seconds = min(
                        MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** (failures - FREE_FAILURES)
                    )
                    lock = now + seconds * 1000
                q.update_operator(tx.conn, found.id, failed_logins=failures, locked_until=lock)
            raise AuthError("wrong username or password")
        with self.store.write() as tx:
            values: dict[str, object] = {
                "failed_logins": 0,
                "locked_until": None,
                "last_login_at": now,
            }
            if _hasher.check_needs_rehash(found.password_hash):
                values["password_hash"] = _hasher.hash(password)
            q.update_operator(tx.conn, found.id, **values)
        return Operator(found.id, found.username, found.role, found.account_id)

    # --- sessions -------------------------------------------------------------------------
    def _key(self) -> bytes:
        if self._secret is None:
            with self.store.write() as tx:
                text = q.console_secret(
                    tx.conn, secrets.token_urlsafe(48), epoch_ms(self.clock.now())
                )
            self._secret = text.encode()
        return self._secret

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key(), payload, hashlib.sha256).digest())

    def issue(self, operator: Operator) -> str:
        with self.store.read() as tx:
            found = q.operator(tx.conn, operator.id)
        version = found.session_version if found else 0
        expires = int(self.clock.now().timestamp()) + SESSION_SECONDS
        payload = orjson.dumps(
            {"o": operator.id, "v": version, "e": expires, "n": secrets.token_urlsafe(12)}
        )
        return f"{_b64(payload)}.{self._sign(payload)}"

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None (missing, forged, expired, revoked)."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            return None
        body, mac = cookie.split(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._sign(payload)):
            return None
        try:
            data = orjson.loads(payload)
            op_id, version, expires, nonce = int(data["o"]), int(data["v"]), data["e"], data["n"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if expires < self.clock.now().timestamp():
            return None
        with self.store.read() as tx:
            found = q.operator(tx.conn, op_id)
        if found is None or found.session_version != version:
            return None
        return Session(Operator(found.id, found.username, found.role, found.account_id), nonce)

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of a session (its nonce) or of the sign-in form (a cookie nonce)."""
        return self._sign(b"csrf:" + nonce.encode())

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(nonce), str(token))


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False

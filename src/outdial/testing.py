"""Fakes shipped with outdial for tests, ours and users': a fake clock, throwaway stores,
signed request headers and account fixtures."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from outdial.client import sign
from outdial.clock import Clock
from outdial.service.accounts import AccountService, NewAccount
from outdial.store.repo import Store


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def temp_sqlite_store(directory: str | Path | None = None) -> Store:
    """A migrated SQLite store in a new temporary file (removed with its directory)."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="outdial-"))
    return Store.open(f"sqlite:///{folder / 'outdial.db'}")


@dataclass(frozen=True, slots=True)
class TestAccount:
    """An account made for a test, with its first app and key."""

    __test__ = False  # not a pytest test class

    account_id: int
    app_id: str
    api_key: str
    api_secret: str

    def headers(self, clock: Clock, **extra: str) -> dict[str, str]:
        """Signed LAAFFIC headers for a request made at the clock's time."""
        ts = str(int(clock.now().timestamp()))
        return {
            "Api-Key": self.api_key,
            "Timestamp": ts,
            "Sign": sign(self.api_key, self.api_secret, ts),
            "Content-Type": "application/json;charset=UTF-8",
            **extra,
        }


def make_account(store: Store, clock: Clock, name: str = "test", **options: object) -> TestAccount:
    """Create an account (default rates, UTC, generous limits) and return its credentials."""
    values: dict[str, object] = {
        "name": name,
        "timezone": "UTC",
        "lines": 10,
        "max_tasks": 100,
        "balance": "100",
    }
    values.update(options)
    out = AccountService(store, clock).create_account(NewAccount(**values))  # type: ignore[arg-type]
    return TestAccount(out["accountId"], out["appId"], out["apiKey"], out["apiSecret"])

"""Paging (a checked ``current``/``size`` request, one page of results) and the account time
zone listings are rendered in: shared by every paged service. ``api.laaffic.page_json``
writes LAAFFIC's page shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from outdial.errors import AuthError, ValidationError
from outdial.store.repo import Tx

MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class Page:
    """A checked page request."""

    current: int
    size: int

    @property
    def offset(self) -> int:
        return (self.current - 1) * self.size


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    """One page of results: the page asked for, how many there are in all, this page's."""

    page: Page
    total: int
    items: list[T]


def page(current: int, size: int) -> Page:
    """Check a page request (-21 out of range)."""
    if not 1 <= current <= MAX_PAGE:
        raise ValidationError(f"current must be 1-{MAX_PAGE}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValidationError(f"size must be 1-{MAX_PAGE_SIZE}")
    return Page(current, size)


def account_timezone(tx: Tx, account_id: int) -> str:
    """The caller's account zone (the account was just authenticated, so it exists)."""
    acc = tx.account(account_id)
    if acc is None:
        raise AuthError("account vanished")
    return acc.timezone

"""Accounts, apps, API keys, rate tables and do-not-call lists (the operator's console)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from ipaddress import ip_network
from typing import Any

from outdial.clock import Clock, epoch_ms
from outdial.domain.money import format_units, to_units
from outdial.domain.rates import CURRENCY, Rate
from outdial.domain.task import zone
from outdial.domain.text import check_text, check_texts
from outdial.errors import DataCaps, NotFound, ValidationError
from outdial.notify.ssrf import PushTargets
from outdial.service.ids import token
from outdial.service.paging import Page, Paged
from outdial.service.rates_csv import parse_rates_csv
from outdial.store.repo import Store, Tx

APP_ID_LENGTH = 8
API_KEY_LENGTH = 32
API_SECRET_LENGTH = 32
PUSH_SECRET_LENGTH = 32


def default_rates() -> list[Rate]:
    """The rate card a new account starts with (package data ``default_rates.csv``)."""
    text = resources.files("outdial").joinpath("data/default_rates.csv").read_text("utf-8")
    return parse_rates_csv(text)


MAX_DNC_PER_REQUEST = 10_000


def _dnc_numbers(numbers: Sequence[str]) -> list[str]:
    if len(numbers) > MAX_DNC_PER_REQUEST:
        raise DataCaps(f"at most {MAX_DNC_PER_REQUEST} numbers per request")
    clean = []
    for i, n in enumerate(numbers):
        if isinstance(n, str):
            check_text(n, f"numbers[{i}]")
        digits = n.strip().lstrip("+") if isinstance(n, str) else ""
        if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 18):
            raise ValidationError(f"{n!r} is not a phone number (6-18 digits)")
        clean.append(digits)
    return clean


def _check_cidrs(cidrs: Sequence[str]) -> list[str]:
    out = []
    for i, c in enumerate(cidrs):
        check_text(c, f"ip-allow[{i}]")
        try:
            out.append(str(ip_network(c.strip(), strict=False)))
        except ValueError as exc:
            raise ValidationError(f"{c!r} is not an IP address or CIDR block") from exc
    return out


@dataclass(frozen=True, slots=True)
class DncEntry:
    """One number on an account's do-not-call list; ``created_at`` in epoch ms."""

    number: str
    reason: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class NewAccount:
    name: str
    timezone: str
    lines: int
    max_tasks: int
    balance: str = "0"
    credit: str = "0"
    gift: str = "0"
    currency: str = "USD"
    ip_allow: tuple[str, ...] = ()
    push_url: str | None = None
    with_default_rates: bool = True


class AccountService:
    """Creates and reads accounts and what belongs to them."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        push_targets: PushTargets | None = None,
        actor: str = "operator",
    ) -> None:
        self.store = store
        self.clock = clock
        # Secure by default: callers that allow private push targets say so (the CLI from
        # OUTDIAL_PUSH_ALLOW_PRIVATE, the shipped test helpers for their local receivers).
        self.push_targets = push_targets or PushTargets()
        self.actor = actor

    def _now(self) -> int:
        return epoch_ms(self.clock.now())

    def create_account(self, new: NewAccount) -> dict[str, Any]:
        check_texts({"name": new.name, "timezone": new.timezone, "currency": new.currency})
        name = new.name.strip()
        if not 1 <= len(name) <= 128:
            raise ValidationError("name must be 1-128 characters")
        zone(new.timezone)
        if not CURRENCY.fullmatch(new.currency):
            raise ValidationError(f"currency {new.currency!r} must be a three-letter ISO code")
        if new.lines < 1 or new.max_tasks < 1:
            raise ValidationError("lines and max-tasks must be at least 1")
        try:
            balance, credit, gift = (to_units(v) for v in (new.balance, new.credit, new.gift))
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if credit < 0 or gift < 0:
            raise ValidationError("credit and gift must not be negative")
        cidrs = _check_cidrs(new.ip_allow)
        now = self._now()
        with self.store.write() as tx:
            account_id = tx.insert_account(
                name=name,
                timezone=new.timezone,
                lines=new.lines,
                max_tasks=new.max_tasks,
                balance=balance,
                gift=gift,
                credit=credit,
                currency=new.currency,
                created_at=now,
            )
            app_id, push_secret = self._new_app(tx, account_id, new.push_url, now)
            api_key, api_secret = self._new_key(tx, account_id, cidrs, now)
            if new.with_default_rates:
                tx.replace_rates(account_id, default_rates())
            self._audit(tx, now, "account.create", account_id, str(account_id), name=name)
            self._audit(tx, now, "key.create", account_id, api_key)
        return {
            "accountId": account_id,
            "appId": app_id,
            "apiKey": api_key,
            "apiSecret": api_secret,
            "pushSecret": push_secret,
        }

    def _new_app(self, tx: Tx, account_id: int, push_url: str | None, now: int) -> tuple[str, str]:
        if push_url is not None and not check_text(push_url, "push URL").startswith(
            ("http://", "https://")
        ):
            raise ValidationError("push URL must start with http:// or https://")
        if push_url is not None:
            self.push_targets.check(push_url)
        app_id = token(APP_ID_LENGTH)
        push_secret = token(PUSH_SECRET_LENGTH)
        tx.insert_app(account_id, app_id, push_url, push_secret, now)
        return app_id, push_secret

    def _audit(
        self, tx: Tx, now: int, action: str, account_id: int, subject: str, **detail: Any
    ) -> None:
        # Identifiers only (account, appId, apiKey): never a secret.
        tx.insert_audit(
            at=now,
            actor=self.actor[:64],
            action=action,
            account_id=account_id,
            subject=subject,
            detail=detail,
        )

    def _new_key(self, tx: Tx, account_id: int, cidrs: Sequence[str], now: int) -> tuple[str, str]:
        api_key, api_secret = token(API_KEY_LENGTH), token(API_SECRET_LENGTH)
        tx.insert_key(account_id, api_key, api_secret, cidrs, now)
        return api_key, api_secret

    def _require(self, tx: Tx, account_id: int) -> None:
        if tx.account(account_id) is None:
            raise NotFound(f"account {account_id} does not exist")

    def create_app(self, account_id: int, push_url: str | None) -> dict[str, Any]:
        with self.store.write() as tx:
            self._require(tx, account_id)
            now = self._now()
            app_id, push_secret = self._new_app(tx, account_id, push_url, now)
            self._audit(tx, now, "app.create", account_id, app_id, pushUrl=push_url is not None)
        return {"accountId": account_id, "appId": app_id, "pushSecret": push_secret}

    def create_key(self, account_id: int, ip_allow: Sequence[str] = ()) -> dict[str, Any]:
        cidrs = _check_cidrs(ip_allow)
        with self.store.write() as tx:
            self._require(tx, account_id)
            now = self._now()
            api_key, api_secret = self._new_key(tx, account_id, cidrs, now)
            self._audit(tx, now, "key.create", account_id, api_key, ipAllow=cidrs)
        return {"accountId": account_id, "apiKey": api_key, "apiSecret": api_secret}

    def show(self, account_id: int) -> dict[str, Any]:
        with self.store.read() as tx:
            acc = tx.account(account_id)
            if acc is None:
                raise NotFound(f"account {account_id} does not exist")
            apps = tx.apps_of(account_id)
            keys = tx.keys_of(account_id)
            rates = tx.rates_of(account_id)
            unfinished = tx.count_unfinished(account_id)
        return {
            "accountId": acc.id,
            "name": acc.name,
            "timezone": acc.timezone,
            "lines": acc.lines,
            "maxTasks": acc.max_tasks,
            "sipTrunk": acc.sip_trunk,
            "unfinishedTasks": unfinished,
            "balance": format_units(acc.balance),
            "gift": format_units(acc.gift),
            "credit": format_units(acc.credit),
            "currency": acc.currency,
            "apps": [{"appId": a.app_id, "pushUrl": a.push_url} for a in apps],
            # Secrets are shown once, at creation; never again.
            "apiKeys": [{"apiKey": k.api_key, "ipAllow": list(k.ip_allow)} for k in keys],
            "rates": len(rates),
        }

    def import_rates(self, account_id: int, csv_text: str, *, replace: bool) -> dict[str, Any]:
        rates = parse_rates_csv(csv_text)
        with self.store.write() as tx:
            self._require(tx, account_id)
            if replace:
                count = tx.replace_rates(account_id, rates)
            else:
                count = tx.upsert_rates(account_id, rates)
            total = len(tx.rates_of(account_id))
        return {"accountId": account_id, "imported": count, "rates": total}

    def add_dnc(self, account_id: int, numbers: Sequence[str], reason: str | None) -> int:
        """Block ``numbers`` for the account; return how many were not listed before."""
        clean = _dnc_numbers(numbers)
        if reason is not None:
            check_text(reason, "reason")
        if reason is not None and len(reason) > 64:
            raise ValidationError("reason must be at most 64 characters")
        with self.store.write() as tx:
            self._require(tx, account_id)
            added = tx.add_dnc(account_id, clean, reason, self._now())
        return added

    def remove_dnc(self, account_id: int, numbers: Sequence[str]) -> int:
        """Unblock ``numbers``; return how many were listed."""
        clean = _dnc_numbers(numbers)
        with self.store.write() as tx:
            self._require(tx, account_id)
            removed = tx.remove_dnc(account_id, clean)
        return removed

    def dnc_page(self, account_id: int, number: str | None, wanted: Page) -> Paged[DncEntry]:
        """The account's do-not-call list, or only ``number``'s entry; ``wanted`` is a
        checked page (``paging.page``)."""
        if number is not None:
            check_text(number, "number")
        with self.store.read() as tx:
            total, rows = tx.dnc_page(account_id, number, wanted.offset, wanted.size)
        return Paged(wanted, total, [DncEntry(n, r, at) for n, r, at in rows])

"""How every ``outdial`` command finds its database, and refusing a missing or empty one.

The rule, in order: ``--database URL`` on the command line, ``OUTDIAL_DATABASE_URL`` in the
environment, the same key in ``./.env``, else ``sqlite:///./outdial.db``. Only the commands
that create things (``db upgrade``, ``account create``, ``serve``, ``worker``, ``demo``) may
create a new database; the others stop with an error naming the database they looked for,
so a command run from the wrong folder never answers from a new empty file.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from outdial.config import Settings
from outdial.store.db import upgrade
from outdial.store.repo import Store
from outdial.store.secrets import SecretBox, SecretKeyError

_override: dict[str, str] = {}


class DatabaseUnavailable(Exception):
    """The database the rule points to is missing, has no outdial schema, or cannot be
    opened (no server, keys that do not fit)."""


def set_database(url: str | None) -> None:
    """Remember ``--database`` for this process (the top of the rule)."""
    _override.clear()
    if url:
        _override["database_url"] = url


def settings() -> Settings:
    return Settings(**_override)  # type: ignore[arg-type]


def describe(url: str) -> str:
    """The database for messages: a SQLite file as its absolute path, others without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database or "").resolve())
    return parsed.render_as_string(hide_password=True)


def open_store(s: Settings, *, create: bool) -> Store:
    """Open the database; unless ``create``, refuse one that is missing or has no schema."""
    url = make_url(s.database_url)
    if not create and url.get_backend_name() == "sqlite":
        name = url.database or ""
        if name not in ("", ":memory:") and not Path(name).is_file():
            raise DatabaseUnavailable(
                f"no database at {describe(s.database_url)}; set OUTDIAL_DATABASE_URL or "
                "--database, or create one with `outdial db upgrade`"
            )
    try:
        box = SecretBox(s.secret_key_list())
    except SecretKeyError as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    try:
        store = Store.open(s.database_url, migrate=False, secrets=box)
        if not create and not inspect(store.engine).has_table("alembic_version"):
            store.close()
            raise DatabaseUnavailable(
                f"the database {describe(s.database_url)} holds no outdial schema; "
                "create it with `outdial db upgrade`"
            )
        if s.auto_migrate:
            upgrade(store.engine)
        _check_keys(store)
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(
            f"cannot open the database {describe(s.database_url)}: {type(exc).__name__}"
        ) from exc
    return store


def _check_keys(store: Store) -> None:
    """Stop at start, not on the first signed request, when the keys cannot open the secrets."""
    if not inspect(store.engine).has_table("api_keys"):
        return
    with store.read() as tx:
        sealed = tx.a_sealed_secret()
    if sealed is None:
        return
    try:
        store.secrets.open(sealed)
    except SecretKeyError as exc:
        store.close()
        raise DatabaseUnavailable(str(exc)) from exc

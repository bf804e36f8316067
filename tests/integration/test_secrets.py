"""API and push secrets sealed at rest with OUTDIAL_SECRET_KEYS, and their rotation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from outdial.api.app import create_app
from outdial.cli.main import app
from outdial.config import Settings
from outdial.store import schema
from outdial.store.repo import Store
from outdial.store.secrets import SecretBox, SecretKeyError, new_key
from outdial.testing import FakeClock, TestAccount


def _cli(url: str, *args: str, keys: str | None = None, ok: bool = True) -> dict[str, Any]:
    env = {"OUTDIAL_DATABASE_URL": url}
    if keys is not None:
        env["OUTDIAL_SECRET_KEYS"] = keys
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == (0 if ok else 1), (result.stdout, result.stderr)
    out: dict[str, Any] = json.loads((result.stdout if ok else result.stderr).splitlines()[-1])
    return out


def _stored(url: str) -> list[str]:
    store = Store.open(url)
    with store.read() as tx:
        keys = tx.conn.execute(select(schema.api_keys.c.api_secret)).scalars().all()
        apps = tx.conn.execute(select(schema.apps.c.push_secret)).scalars().all()
    store.close()
    return [*keys, *apps]


def _signed_ok(url: str, keys: list[str], created: dict[str, Any]) -> str:
    store = Store.open(url, secrets=SecretBox(keys))
    clock = FakeClock()
    account = TestAccount(
        created["accountId"], created["appId"], created["apiKey"], created["apiSecret"]
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings, store, clock)) as api:
        resp = api.get("/v3/getBalance", headers=account.headers(clock))
    store.close()
    body = resp.json()
    return str(body.get("status", body.get("code")))


def test_secrets_are_sealed_and_still_sign(fresh_db_url: str) -> None:
    key = new_key()
    created = _cli(fresh_db_url, "account", "create", "--name", "sealed", keys=key)
    stored = _stored(fresh_db_url)
    assert all(v.startswith("enc:v1:") for v in stored)
    assert created["apiSecret"] not in " ".join(stored)
    assert created["pushSecret"] not in " ".join(stored)
    assert _signed_ok(fresh_db_url, [key], created) == "0"
    box = SecretBox([key])
    assert sorted(box.open(v) for v in stored) == sorted(
        [created["apiSecret"], created["pushSecret"]]
    )
    with pytest.raises(SecretKeyError):
        SecretBox([new_key()]).open(stored[0])
    with pytest.raises(SecretKeyError):
        SecretBox().open(stored[0])


def test_rotation_seals_plain_secrets_and_moves_to_the_first_key(fresh_db_url: str) -> None:
    old, new = new_key(), new_key()
    plain = _cli(fresh_db_url, "account", "create", "--name", "plain")
    assert plain["apiSecret"] in _stored(fresh_db_url)  # no key: stored as given
    assert _cli(fresh_db_url, "secrets", "rotate", ok=False)["code"] == -21
    sealed = _cli(fresh_db_url, "account", "create", "--name", "old key", keys=old)
    out = _cli(fresh_db_url, "secrets", "rotate", keys=f"{new},{old}")
    assert out == {"apiSecrets": 2, "pushSecrets": 2}
    stored = _stored(fresh_db_url)
    assert all(v.startswith("enc:v1:") for v in stored)
    only_new = SecretBox([new])
    assert {only_new.open(v) for v in stored} >= {plain["apiSecret"], sealed["apiSecret"]}
    assert _signed_ok(fresh_db_url, [new], plain) == "0"
    assert _signed_ok(fresh_db_url, [new], sealed) == "0"
    entry = _cli(fresh_db_url, "audit", keys=new)["records"][0]
    assert entry["action"] == "secrets.rotate" and entry["detail"] == {"keys": 2, "apps": 2}
    bad = _cli(fresh_db_url, "account", "list", keys="not-a-key", ok=False)
    assert "Fernet" in bad["error"]
    # Sealed secrets without the key: a JSON error, not a traceback.
    acc = str(plain["accountId"])
    assert "OUTDIAL_SECRET_KEYS" in _cli(fresh_db_url, "account", "show", acc, ok=False)["error"]
    # Keys that do not open them stop every command (serve and worker too) at start.
    wrong = _cli(fresh_db_url, "account", "list", keys=old, ok=False)
    assert wrong["error"] == "a stored secret does not open with OUTDIAL_SECRET_KEYS"

"""``outdial user add``: admins and account users, with documented errors."""

from __future__ import annotations

import secrets
from typing import Any


def test_user_add_admin_and_account_user(cli: Any) -> None:
    acc = cli("account", "create", "--name", "cli-console")
    tag = secrets.token_hex(3)
    admin = cli("user", "add", f"boss-{tag}", "--admin", "--password", "a long password")
    assert admin["role"] == "admin" and admin["accountId"] is None
    user = cli(
        "user", "add", f"agent-{tag}", "--account", str(acc["accountId"]),
        "--password", "a long password",
    )  # fmt: skip
    assert user["role"] == "account" and user["accountId"] == acc["accountId"]
    again = cli("user", "add", f"boss-{tag}", "--admin", "--password", "a long password", ok=False)
    assert "already exists" in again["error"]
    short = cli("user", "add", f"x-{tag}", "--admin", "--password", "short", ok=False)
    assert "at least" in short["error"]
    lonely = cli("user", "add", f"y-{tag}", "--password", "a long password", ok=False)
    assert "needs the account" in lonely["error"]
    changed = cli("user", "passwd", f"agent-{tag}", "--password", "another long one")
    assert changed == {"username": f"agent-{tag}", "password": "changed"}

"""The operator CLI: one JSON object on success, a JSON error and exit 1 on failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EXAMPLES


def test_account_lifecycle(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = cli(
        "account",
        "create",
        "--name",
        "Clinic",
        "--timezone",
        "Asia/Manila",
        "--ip-allow",
        "10.0.0.0/8",
        "--lines",
        "4",
        "--max-tasks",
        "3",
        "--balance",
        "50",
        "--credit",
        "10",
    )
    assert set(created) == {"accountId", "appId", "apiKey", "apiSecret", "pushSecret"}
    assert len(created["apiKey"]) == 32 and len(created["apiSecret"]) == 32
    acc = str(created["accountId"])
    shown = cli("account", "show", acc)
    assert shown["timezone"] == "Asia/Manila" and shown["lines"] == 4 and shown["maxTasks"] == 3
    assert shown["balance"] == "50.0000" and shown["credit"] == "10.0000"
    assert shown["apiKeys"] == [{"apiKey": created["apiKey"], "ipAllow": ["10.0.0.0/8"]}]
    assert created["apiSecret"] not in json.dumps(shown)
    assert shown["rates"] > 5  # the default rate card
    # Push URLs into this machine's network are refused unless the operator allows them.
    local = "http://127.0.0.1:9/push"
    refused = cli("app", "create", "--account", acc, "--push-url", local, ok=False)
    assert refused["code"] == -21 and "OUTDIAL_PUSH_ALLOW_PRIVATE" in refused["error"]
    for url in ("http://169.254.169.254/latest", "http://[::ffff:10.0.0.1]/", "http://[::1]:8/"):
        assert cli("app", "create", "--account", acc, "--push-url", url, ok=False)["code"] == -21
    monkeypatch.setenv("OUTDIAL_PUSH_ALLOW_PRIVATE", "true")
    app2 = cli("app", "create", "--account", acc, "--push-url", local)
    assert app2["appId"] != created["appId"]
    key2 = cli("key", "create", "--account", acc)
    assert key2["apiKey"] != created["apiKey"]
    assert len(cli("account", "show", acc)["apps"]) == 2


def test_rates_import(cli: Any, tmp_path: Path) -> None:
    acc = str(cli("account", "create", "--name", "r", "--no-default-rates")["accountId"])
    assert cli("account", "show", acc)["rates"] == 0
    out = cli("rates", "import", str(EXAMPLES / "rates.csv"), "--account", acc)
    assert out["imported"] == 7 and out["rates"] == 7
    bad = tmp_path / "bad.csv"
    bad.write_text("prefix,price_per_minute,bill_period,currency\n44,0.1,60,USD\n")
    err = cli("rates", "import", str(bad), "--account", acc, ok=False)
    assert err["line"] == 2 and "60+60" in err["error"]
    one = tmp_path / "one.csv"
    one.write_text("1,0.5,30+6,usd\n")
    assert cli("rates", "import", str(one), "--account", acc, "--replace")["rates"] == 1


def test_script_import(cli: Any, tmp_path: Path) -> None:
    acc = str(cli("account", "create", "--name", "s")["accountId"])
    for name in ("simple-notice.yaml", "appointment-reminder.yaml"):
        out = cli("script", "import", str(EXAMPLES / "templates" / name), "--account", acc)
        assert isinstance(out["scriptId"], int)
    reminder = cli(
        "script",
        "import",
        str(EXAMPLES / "templates" / "appointment-reminder.yaml"),
        "--account",
        acc,
    )
    assert reminder["variables"] == ["text1", "text2"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: b\nlanguage: en\nstart: nowhere\nnodes:\n  a:\n    say: Hi ${text11}\n"
    )
    err = cli("script", "import", str(broken), "--account", acc, ok=False)
    paths = {p["path"] for p in err["problems"]}
    assert paths == {"start", "nodes.a.say"}
    err = cli("script", "import", str(tmp_path / "missing.yaml"), "--account", acc, ok=False)
    assert "cannot read" in err["error"]
    err = cli(
        "script",
        "import",
        str(EXAMPLES / "templates" / "simple-notice.yaml"),
        "--account",
        "999999",
        ok=False,
    )
    assert err["code"] == -24


def test_dnc_and_errors(cli: Any) -> None:
    acc = str(cli("account", "create", "--name", "d")["accountId"])
    assert cli("dnc", "add", "8613242926514", "+8613242926515", "--account", acc)["added"] == 2
    assert cli("dnc", "add", "8613242926514", "--account", acc)["added"] == 0
    assert cli("dnc", "add", "12ab", "--account", acc, ok=False)["code"] == -21
    assert (
        cli("account", "create", "--name", "x", "--timezone", "Nowhere/City", ok=False)["code"]
        == -21
    )
    assert (
        cli("account", "create", "--name", "x", "--ip-allow", "300.1.1.1", ok=False)["code"] == -21
    )
    assert cli("account", "show", "424242", ok=False)["code"] == -24


def test_db_upgrade_is_idempotent(cli: Any) -> None:
    assert cli("db", "upgrade")["schema"] == "head"
    assert cli("db", "upgrade")["schema"] == "head"

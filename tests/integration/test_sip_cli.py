"""Trunks and account trunk choice through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any


def test_trunk_add_list_replace_remove(cli: Any) -> None:
    out = cli("trunk", "add", "carrier-a", "--host", "sip.example.net", "--username", "u",
              "--password", "s3cret", "--cps", "20", "--max-calls", "100")  # fmt: skip
    trunk = out["trunk"]
    assert trunk["name"] == "carrier-a" and trunk["port"] == 5060 and trunk["transport"] == "udp"
    assert trunk["password"] == "***" and "s3cret" not in str(out)
    assert trunk["max_cps"] == 20 and trunk["max_calls"] == 100
    # Adding the same name again replaces its settings (it stays one trunk).
    cli("trunk", "add", "carrier-a", "--host", "sip2.example.net", "--port", "5080")
    listed = cli("trunk", "list")["trunks"]
    mine = [t for t in listed if t["name"] == "carrier-a"]
    assert len(mine) == 1 and mine[0]["host"] == "sip2.example.net" and mine[0]["port"] == 5080
    assert all(t["password"] in (None, "***") for t in listed)
    assert cli("trunk", "remove", "carrier-a") == {"removed": "carrier-a"}
    assert not [t for t in cli("trunk", "list")["trunks"] if t["name"] == "carrier-a"]
    err = cli("trunk", "remove", "carrier-a", ok=False)
    assert "no trunk named" in err["error"]


def test_trunk_add_refuses_bad_values(cli: Any) -> None:
    err = cli("trunk", "add", "t", "--host", "h", "--transport", "tls", ok=False)
    assert "use udp or tcp" in err["error"] and err["code"] == -21
    assert (
        cli("trunk", "add", "t", "--host", "h", "--transport", "TCP")["trunk"]["transport"] == "tcp"
    )
    cli("trunk", "remove", "t")
    err = cli("trunk", "add", "t", "--host", "h", "--port", "70000", ok=False)
    assert "out of range" in err["error"]
    err = cli("trunk", "add", "t", "--host", "h", "--cps", "0", ok=False)
    assert "positive" in err["error"]


def test_account_picks_its_trunk(cli: Any) -> None:
    acc = cli("account", "create", "--name", "trunky")["accountId"]
    cli("trunk", "add", "carrier-b", "--host", "10.0.0.1")
    assert cli("account", "set-trunk", str(acc), "carrier-b")["sipTrunk"] == "carrier-b"
    assert cli("account", "show", str(acc))["sipTrunk"] == "carrier-b"
    # A trunk in use cannot be removed; an unknown trunk cannot be chosen.
    err = cli("trunk", "remove", "carrier-b", ok=False)
    assert f"used by account {acc}" in err["error"]
    err = cli("account", "set-trunk", str(acc), "nope", ok=False)
    assert "no trunk named 'nope'" in err["error"]
    assert cli("account", "set-trunk", str(acc))["sipTrunk"] is None
    assert cli("trunk", "remove", "carrier-b") == {"removed": "carrier-b"}


def test_trunk_add_register_options(cli: Any) -> None:
    out = cli("trunk", "add", "reg-a", "--host", "h", "--username", "u", "--password", "p",
              "--register", "--register-expires", "600")["trunk"]  # fmt: skip
    assert out["register"] is True and out["register_expires"] == 600
    assert out["registration"] is None  # no worker has registered it yet
    err = cli("trunk", "add", "reg-b", "--host", "h", "--register", ok=False)
    assert "--register needs --username" in err["error"] and err["code"] == -21
    err = cli("trunk", "add", "reg-b", "--host", "h", "--register-expires", "5", ok=False)
    assert "60-86400" in err["error"]
    assert cli("trunk", "remove", "reg-a") == {"removed": "reg-a"}


def test_trunk_add_transfer_mode(cli: Any) -> None:
    assert cli("trunk", "add", "tr-a", "--host", "h")["trunk"]["transfer"] == "refer"
    out = cli("trunk", "add", "tr-a", "--host", "h", "--transfer", "Bridge")["trunk"]
    assert out["transfer"] == "bridge"
    listed = [t for t in cli("trunk", "list")["trunks"] if t["name"] == "tr-a"]
    assert listed[0]["transfer"] == "bridge"
    err = cli("trunk", "add", "tr-b", "--host", "h", "--transfer", "attended", ok=False)
    assert "use refer or bridge" in err["error"] and err["code"] == -21
    assert cli("trunk", "remove", "tr-a") == {"removed": "tr-a"}

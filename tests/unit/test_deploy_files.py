"""The deployment files (Dockerfile, compose.yaml, systemd units) are configuration for users and
are not run here; these checks keep them true to the code: commands and options that exist,
settings that validate, workers with ids of their own and stop timeouts past the drain."""

from __future__ import annotations

import configparser
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from outdial.cli.main import app
from outdial.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "OUTDIAL_"


def _check_command(args: list[str]) -> None:
    """Parse ``outdial ARGS`` the way the CLI would, without running it."""
    group = typer.main.get_command(app)
    name, *rest = args
    command = getattr(group, "commands", {}).get(name)
    assert command is not None, f"outdial has no command {name!r}"
    command.make_context(name, list(rest))


def _check_settings(env: dict[str, Any]) -> Settings:
    fields = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(PREFIX):
            continue
        field = key[len(PREFIX) :].lower()
        assert field in fields, f"{key} is not a setting"
        values[field] = value
    return Settings.model_validate(values)


def _seconds(value: str) -> float:
    value = str(value)
    return float(value[:-1]) if value.endswith("s") else float(value)


def test_compose_runs_postgres_an_api_and_two_workers() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert {"db", "api", "worker-1", "worker-2"} <= set(services)
    worker_ids = set()
    for name in ("api", "worker-1", "worker-2"):
        service = services[name]
        _check_command(service["command"])
        settings = _check_settings(service["environment"])
        assert settings.database_url.startswith("postgresql+psycopg://")
        assert "db" in service["depends_on"]
        assert _seconds(service["stop_grace_period"]) > settings.drain_seconds
        for volume in service["volumes"]:
            assert volume.split(":")[0] in doc["volumes"]
        if name.startswith("worker"):
            assert service["command"][0] == "worker"
            worker_ids.add(settings.worker_id)
            assert str(settings.metrics_port) in " ".join(service["healthcheck"]["test"])
    assert services["api"]["command"][:2] == ["serve", "--no-worker"]
    assert len(worker_ids) == 2 and None not in worker_ids


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, continuation lines joined."""
    joined = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, arg = line.partition(" ")
            out.append((word.upper(), arg.strip()))
    return out


def test_dockerfile_installs_real_extras_and_runs_real_commands() -> None:
    steps = _dockerfile()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installs = [a for w, a in steps if w == "RUN" and "pip install" in a]
    assert installs
    wanted = installs[0].split('".[', 1)[1].split("]", 1)[0].split(",")
    assert set(wanted) <= set(extras) and "postgres" in wanted
    env: dict[str, str] = {}
    for word, arg in steps:
        if word == "ENV":
            for pair in shlex.split(arg):
                key, _, value = pair.partition("=")
                env[key] = value
    settings = _check_settings(env)
    assert settings.host == "0.0.0.0"
    entry = next(yaml.safe_load(a) for w, a in steps if w == "ENTRYPOINT")
    cmd = next(yaml.safe_load(a) for w, a in steps if w == "CMD")
    assert entry == ["outdial"]
    _check_command(cmd)
    assert any(w == "HEALTHCHECK" and "/readyz" in a for w, a in steps)


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["outdial-api.service", "outdial-worker@.service"])
def test_systemd_units_start_real_commands(name: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    binary, *args = shlex.split(unit["Service"]["ExecStart"])
    assert binary.endswith("/outdial")
    _check_command(args)
    env = dict(pair.split("=", 1) for pair in shlex.split(unit["Service"].get("Environment", "")))
    settings = _check_settings({k: v.replace("%i", "1") for k, v in env.items()})
    if "worker" in name:
        assert args[0] == "worker"
        assert settings.worker_id == "worker-1"
        assert float(unit["Service"]["TimeoutStopSec"]) > settings.drain_seconds
    assert unit["Service"]["EnvironmentFile"] == "/etc/outdial/outdial.env"


def test_the_example_environment_file_validates() -> None:
    env = {}
    for line in (ROOT / "deploy" / "outdial.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert _check_settings(env).database_url.startswith("postgresql")

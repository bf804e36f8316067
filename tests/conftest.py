"""Shared fixtures: every store-backed test runs on SQLite and on PostgreSQL.

PostgreSQL comes from OUTDIAL_TEST_PG_URL (default: postgres on 127.0.0.1:5432). When it cannot
be reached its tests are skipped, and with OUTDIAL_REQUIRE_ALL=1 (as CI sets) any skipped test
fails the run.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.store.repo import Store
from outdial.testing import FakeClock, TestAccount, make_account

PG_URL = os.environ.get(
    "OUTDIAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_ALL = os.environ.get("OUTDIAL_REQUIRE_ALL") == "1"


@pytest.fixture(autouse=True)
def _no_outdial_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the defaults, whatever the shell that runs pytest exported:
    ``OUTDIAL_*`` is removed for the test (and the processes it starts), then restored. The
    two test-run switches above are read once at import, before this runs."""
    for name in [k for k in os.environ if k.startswith("OUTDIAL_")]:
        monkeypatch.delenv(name)


def _pg_database() -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]')")
    admin = make_url(PG_URL)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"outdial_test_{secrets.token_hex(4)}"
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {admin.host}:{admin.port}: {exc}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database URL per engine for the whole session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "outdial.db"
        yield f"sqlite:///{path}"
    else:
        yield from _pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new empty database for one test (for workers that must see only its tasks)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield from _pg_database()


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A new empty PostgreSQL database for one test."""
    yield from _pg_database()


@pytest.fixture(scope="session")
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def _engine(make: Any) -> Any:
    from outdial.speech.errors import SpeechUnavailable

    try:
        return make()
    except (SpeechUnavailable, ImportError) as exc:
        pytest.skip(f"speech engine unavailable (.ci/run installs it): {exc}")


@pytest.fixture(scope="session")
def flite() -> Any:
    """The flite TTS engine (kal voice); skipped where flite is not installed."""
    return _engine(lambda: __import__("outdial.speech.tts", fromlist=["x"]).FliteTts())


@pytest.fixture(scope="session")
def espeak() -> Any:
    """The espeak-ng TTS engine; skipped where espeak-ng is not installed."""
    return _engine(lambda: __import__("outdial.speech.tts", fromlist=["x"]).EspeakTts())


@pytest.fixture(scope="session")
def sphinx() -> Iterator[Any]:
    """The PocketSphinx recogniser; skipped without the speech extra."""
    engine = _engine(lambda: __import__("outdial.speech.asr", fromlist=["x"]).PocketSphinxAsr())
    yield engine
    engine.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def make_client(store: Store, clock: FakeClock, settings: Settings) -> Any:
    """Build a TestClient over ``store`` with settings overrides and a peer address."""
    clients: list[TestClient] = []

    def build(peer: str = "127.0.0.1", **overrides: Any) -> TestClient:
        s = settings.model_copy(update=overrides) if overrides else settings
        client = TestClient(create_app(s, store, clock), client=(peer, 50000))
        clients.append(client)
        return client

    yield build
    for c in clients:
        c.close()


@pytest.fixture
def api(make_client: Any) -> TestClient:
    client: TestClient = make_client()
    return client


@pytest.fixture
def account(store: Store, clock: FakeClock) -> TestAccount:
    return make_account(store, clock)


@pytest.fixture
def cli(db_url: str, store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run an ``outdial`` command on the session database (created by ``store``: commands
    that only read or change refuse a missing one); return its one JSON object (its JSON
    error with ``ok=False``, which also expects exit status 1)."""
    from typer.testing import CliRunner

    from outdial.cli.main import app

    monkeypatch.setenv("OUTDIAL_DATABASE_URL", db_url)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> dict[str, Any]:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr)
            lines = result.stdout.strip().splitlines()
            assert len(lines) == 1, result.stdout
            out: dict[str, Any] = json.loads(lines[0])
            return out
        assert result.exit_code == 1, (result.stdout, result.stderr)
        err: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
        return err

    return run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not REQUIRE_ALL:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(
            f"OUTDIAL_REQUIRE_ALL=1: {len(skipped)} test(s) were skipped; every test is required",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

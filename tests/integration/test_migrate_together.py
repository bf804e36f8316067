"""Processes started together on a new PostgreSQL database (compose, systemd) all migrate it."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from outdial.store.db import make_engine

_CLI = [sys.executable, "-m", "outdial", "db", "upgrade"]


def test_concurrent_upgrades_of_a_new_database_all_succeed(fresh_pg_url: str) -> None:
    # Processes, not threads: Alembic's migration context is one global per process.
    env = {**os.environ, "OUTDIAL_DATABASE_URL": fresh_pg_url}
    procs = [
        subprocess.Popen(_CLI, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert all(rc == 0 for rc, _ in outcomes), outcomes
    engine = make_engine(fresh_pg_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        engine.dispose()

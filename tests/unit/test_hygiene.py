"""The suite does not depend on the shell that runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_outdial_variable_reaches_a_test() -> None:
    assert [k for k in os.environ if k.startswith("OUTDIAL_")] == []


def test_a_hostile_shell_changes_no_result() -> None:
    """Exported settings that change the answers (a TTS without English, a higher minimum
    balance, another database) used to fail the tests that expect the defaults."""
    env = {
        **os.environ,
        "OUTDIAL_TTS_LANGUAGES": "fr",
        "OUTDIAL_MIN_BALANCE": "1000000",
        "OUTDIAL_DATABASE_URL": "sqlite:////nonexistent/outdial.db",
        "OUTDIAL_LOG_FORMAT": "json",
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/contract/test_send_ai_codes.py::test_0_success_with_the_published_example",
            "tests/integration/test_cli.py", "-k", "sqlite",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

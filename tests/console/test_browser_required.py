"""In CI (OUTDIAL_REQUIRE_ALL=1) the browser tests fail, not skip, when there is no browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_browser_fails_the_browser_tests_in_ci() -> None:
    env = {
        **os.environ,
        "OUTDIAL_REQUIRE_ALL": "1",
        "OUTDIAL_TEST_CHROMIUM": "/nonexistent/chromium",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
         "tests/console/test_browser.py::test_an_account_user_is_refused_another_accounts_pages"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode != 0, run.stdout
    assert "browser tests need /nonexistent/chromium" in run.stdout
    assert "1 failed" in run.stdout or "1 error" in run.stdout

""".ci/audit.py fails on a known vulnerability and passes, saying so, when nothing could be
checked (no network)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_vulnerable_dependency_fails() -> None:
    report = {
        "dependencies": [
            {"name": "a", "version": "1.0", "vulns": [{"id": "PYSEC-1", "fix_versions": ["1.1"]}]},
            {"name": "b", "version": "2.0", "vulns": []},
        ]
    }
    lines, code = _audit().summarize(report)
    assert code == 1 and lines[0] == "pip-audit: a 1.0: PYSEC-1"
    assert lines[-1].startswith("pip-audit: 2 packages audited, 1 vulnerable, 0 not audited")


def test_offline_passes_and_says_nothing_was_audited() -> None:
    report = {"dependencies": [{"name": "a", "skip_reason": "Dependency not found on PyPI"}]}
    lines, code = _audit().summarize(report)
    assert code == 0 and lines == [
        "pip-audit: 0 packages audited, 0 vulnerable, 1 not audited "
        "(no vulnerability data reachable for them)"
    ]

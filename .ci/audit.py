"""Audit the installed dependencies with pip-audit; fail only on a known vulnerability.

Without the vulnerability service (no network, or an index that is not PyPI) pip-audit cannot
audit a package and says so per package; this script then prints how many it could not check
and passes, so CI does not fail for being offline, and never claims "no vulnerabilities" when
nothing was checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def summarize(report: dict[str, Any]) -> tuple[list[str], int]:
    """The lines to print and the exit status for a pip-audit JSON report."""
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    lines = [
        f"pip-audit: {d['name']} {d['version']}: {', '.join(v['id'] for v in d['vulns'])}"
        for d in vulnerable
    ]
    lines.append(
        f"pip-audit: {audited} packages audited, {len(vulnerable)} vulnerable, "
        f"{len(skipped)} not audited (no vulnerability data reachable for them)"
    )
    return lines, 1 if vulnerable else 0


def main() -> int:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    cmd = [str(pip_audit), "--local", "--skip-editable", "--progress-spinner", "off", "-f", "json"]
    try:
        # The command is fixed: pip-audit beside this interpreter.
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"pip-audit: not run ({type(exc).__name__}); dependencies NOT audited")
        return 0
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit: could not audit ({last}); dependencies NOT audited")
        return 0
    lines, code = summarize(report)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())

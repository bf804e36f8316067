"""`outdial demo --once`: the whole system end to end, run once and exited (as CI runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_calls_a_task_to_the_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "outdial", "demo", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sendAi"] == {"status": "0", "reason": "success", "data": 1}
    tasks = {t["taskId"]: t for t in out["taskList"]}
    # The published example waits for its 18:28-19:28 window (or dials, inside it).
    assert tasks[1]["taskType"] == 2 and tasks[1]["status"] in (0, 1, 2)
    assert tasks[2]["status"] == 2 and tasks[2]["rate"] == "100"
    assert len(out["calls"]) == tasks[2]["numCnt"] == 15
    outcomes = {c["outcome"] for c in out["calls"]}
    assert "connected" in outcomes
    connected = [c for c in out["calls"] if c["outcome"] == "connected"]
    assert all(c["terminationCode"] == "200" and c["callDuration"] > 0 for c in connected)

"""`talon-stream demo --events N` runs the whole stack and exits 0 once N events have an outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_exits_zero_after_the_requested_outcomes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "talon_stream.cli", "demo", "--events", "300", "--rate", "400"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(r"demo finished: (\d+) events produced, (\d+) outcomes", result.stdout)
    assert summary, result.stdout[-3000:]
    assert int(summary.group(2)) >= 300
    assert "updateCustomerSessionV2" in result.stdout

"""`talon-stream demo --events N` runs the whole stack and exits 0 once N events have an outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from talon_stream.demo._broker import Broker, EmbeddedBroker
from talon_stream.demo._kafka import KafkaBroker


def test_demo_exits_zero_after_the_requested_outcomes(broker: Broker) -> None:
    # The demo starts its own broker: the same kind as the tests' (auto beside a container).
    env = {**os.environ, "COLUMNS": "120"}
    same_kind = isinstance(broker, KafkaBroker | EmbeddedBroker)
    if same_kind:
        env["TALON_STREAM_BROKER"] = "kafka" if isinstance(broker, KafkaBroker) else "embedded"
    result = subprocess.run(
        [sys.executable, "-m", "talon_stream.cli", "demo", "--events", "300", "--rate", "400"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    first_line = result.stdout.partition("\n")[0]
    assert first_line.startswith("broker: "), result.stdout[:300]
    if same_kind:
        assert first_line == f"broker: {broker.description}"
    summary = re.search(r"demo finished: (\d+) events produced, (\d+) outcomes", result.stdout)
    assert summary, result.stdout[-3000:]
    assert int(summary.group(2)) >= 300
    assert "updateCustomerSessionV2" in result.stdout

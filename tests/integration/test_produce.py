"""`talon-stream produce`: a generated shop stream into an existing Kafka's input topics."""

from __future__ import annotations

import os
import subprocess
import sys

from talon_stream.config._settings import DEFAULT_INPUT_TOPICS
from talon_stream.core._events import decode_event
from talon_stream.demo._broker import Broker
from tests.conftest import read_all


def input_records(bootstrap: str) -> list[bytes]:
    """Every record value on the input topics."""
    return read_all(bootstrap, DEFAULT_INPUT_TOPICS, quiet_s=2.0)


def test_produce_feeds_valid_events_into_the_input_topics(broker: Broker) -> None:
    bootstrap = broker.bootstrap_servers
    broker.create_topics(dict.fromkeys(DEFAULT_INPUT_TOPICS, 2))
    before = set(input_records(bootstrap))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "talon_stream.cli",
            "produce",
            "--events",
            "60",
            "--rate",
            "600",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TALON_STREAM_BOOTSTRAP_SERVERS": bootstrap},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "60 events produced" in result.stderr
    added = [value for value in input_records(bootstrap) if value not in before]
    assert len(added) == 60
    # They are events the worker accepts (the generator's poison is off by default): the
    # first steps of shopper journeys.
    decoded = [decode_event(value) for value in added]
    assert len({event.event_id for event in decoded}) == 60
    assert "cart.updated" in {event.type for event in decoded}

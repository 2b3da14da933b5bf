"""`talon-stream produce`: a generated shop stream into an existing Kafka's input topics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer

from workers.broker import Broker
from workers.config import DEFAULT_INPUT_TOPICS
from workers.events import decode_event


def input_records(bootstrap: str) -> list[bytes]:
    """Every record value on the input topics, read until nothing new arrives for 2 s."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"produce-check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
        }
    )
    consumer.subscribe(list(DEFAULT_INPUT_TOPICS))
    values: list[bytes] = []
    quiet_since = time.monotonic() + 8  # the group join comes first
    try:
        while time.monotonic() - quiet_since < 2:
            messages = consumer.consume(1000, 0.3)
            if messages:
                quiet_since = time.monotonic()
                values.extend(m.value() for m in messages if m.error() is None)
    finally:
        consumer.close()
    return values


def test_produce_feeds_valid_events_into_the_input_topics(broker: Broker) -> None:
    bootstrap = broker.bootstrap_servers
    broker.create_topics(dict.fromkeys(DEFAULT_INPUT_TOPICS, 2))
    before = set(input_records(bootstrap))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
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

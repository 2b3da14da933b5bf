"""`talon-stream run` as users run it: SIGTERM mid-stream drains, commits and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, TopicPartition

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from tests.conftest import produce, shop_records
from tests.integration.conftest import create_topics, worker_settings


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in offsets)


def test_sigterm_drains_commits_and_exits_zero(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    topic = create_topics(broker, settings, partitions=3)
    records = shop_records(400, seed=9, customers=100)
    produce(broker.bootstrap_servers, topic, records)
    env = {
        **os.environ,
        "TALON_STREAM_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TALON_STREAM_GROUP_ID": settings.group_id,
        "TALON_STREAM_INPUT_TOPICS": topic,
        "TALON_STREAM_EFFECTS_TOPIC": settings.effects_topic,
        "TALON_STREAM_DLQ_TOPIC": settings.dlq_topic,
        "TALON_STREAM_TALON_BASE_URL": emulator.base_url,
        "TALON_STREAM_TALON_API_KEY": settings.talon_api_key.get_secret_value(),
        "TALON_STREAM_SESSION_TIMEOUT_MS": "3000",
        "TALON_STREAM_HEARTBEAT_INTERVAL_MS": "300",
        "TALON_STREAM_DRAIN_TIMEOUT_S": "10",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "talon_stream.cli", "run", "--log-level", "info"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(emulator.state.request_log) < 50:  # mid-stream
            assert time.monotonic() < deadline, "the worker made no calls"
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.02)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
    log = worker.stderr.read() if worker.stderr else ""
    assert code == 0, log
    assert stopped_in < 15, f"took {stopped_in:.1f}s to stop"
    assert "stopped cleanly" in log
    # What it finished is committed: a restarted worker resumes there.
    committed = committed_total(settings.bootstrap_servers, settings.group_id, topic, 3)
    assert committed > 0
    assert committed <= len(emulator.state.request_log)  # never past a record without a call

"""`talon-stream run` with its API key in a mounted Secret: Talon.One revokes the key mid-stream,
the worker halts (nothing dead-lettered), the Secret is updated the way the kubelet does it, and
the same worker process resumes on the new key — every record's outcome published, none in the
DLQ."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.demo._generator import ShopSimulator
from talon_stream.demo._subprocesses import free_port
from tests.conftest import produce, read_all, read_topic
from tests.integration.conftest import API_KEY, create_topics, worker_settings

NEW_KEY = "rotated-integration-key"


def journeys(shop: ShopSimulator, count: int) -> list[tuple[bytes | None, bytes | None]]:
    """At least ``count`` records of the shop's next shoppers' whole journeys."""
    records: list[tuple[bytes | None, bytes | None]] = []
    while len(records) < count:
        records.extend((record.key, record.value) for record in shop.journey())
    return records


def mount_secret(folder: Path, key: str) -> Path:
    """A Secret volume as the kubelet lays it out (``api-key`` → ``..data/api-key``)."""
    folder.mkdir()
    (folder / "..2026_12_01").mkdir()
    (folder / "..2026_12_01" / "api-key").write_text(key + "\n")
    (folder / "..data").symlink_to("..2026_12_01")
    (folder / "api-key").symlink_to("..data/api-key")
    return folder / "api-key"


def update_secret(folder: Path, key: str) -> None:
    """The kubelet's atomic update: a new timestamped directory, then ``..data`` renamed over."""
    (folder / "..2026_12_06").mkdir()
    (folder / "..2026_12_06" / "api-key").write_text(key + "\n")
    (folder / "..data_tmp").symlink_to("..2026_12_06")
    os.replace(folder / "..data_tmp", folder / "..data")


def accept_only(emulator: EmulatorServer, key: str) -> None:
    """Talon.One revokes every other key."""
    request = urllib.request.Request(
        f"{emulator.base_url}/__emulator/api-keys",
        data=json.dumps({"keys": [key]}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


def wait_until(condition: object, what: str, worker: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    assert callable(condition)
    while not condition():
        assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
        )
        time.sleep(0.05)


@pytest.mark.parametrize(
    "poll_s",
    [
        pytest.param("0.5", id="watched"),
        pytest.param("3600", id="re-read-on-401"),  # only a refusal makes it look again
    ],
)
def test_a_rotated_key_file_resumes_the_same_worker_without_a_dead_letter(
    broker: Broker, emulator: EmulatorServer, unique: str, tmp_path: Path, poll_s: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    topic = create_topics(broker, settings, partitions=3)
    shop = ShopSimulator(seed=17, customers=60, poison_rate=0.0)
    first, second = journeys(shop, 300), journeys(shop, 300)  # the second: new shoppers
    produce(broker.bootstrap_servers, topic, first)
    secret = tmp_path / "talon-api-key"
    key_file = mount_secret(secret, API_KEY)
    health_port = free_port()
    env = {
        **os.environ,
        "TALON_STREAM_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "TALON_STREAM_GROUP_ID": settings.group_id,
        "TALON_STREAM_INPUT_TOPICS": topic,
        "TALON_STREAM_EFFECTS_TOPIC": settings.effects_topic,
        "TALON_STREAM_EFFECT_ROUTES": "{}",
        "TALON_STREAM_DLQ_TOPIC": settings.dlq_topic,
        "TALON_STREAM_ERASURES_TOPIC": settings.erasures_topic,
        "TALON_STREAM_TALON_BASE_URL": emulator.base_url,
        "TALON_STREAM_TALON_API_KEY_FILE": str(key_file),
        "TALON_STREAM_TALON_API_KEY_POLL_S": poll_s,
        "TALON_STREAM_HALT_PROBE_INITIAL_S": "0.2",
        "TALON_STREAM_HALT_PROBE_MAX_S": "1",
        "TALON_STREAM_HEALTH_PORT": str(health_port),
        "TALON_STREAM_HEALTH_HOST": "127.0.0.1",
        "TALON_STREAM_COMMIT_INTERVAL_S": "0.2",
        "TALON_STREAM_SESSION_TIMEOUT_MS": "3000",
        "TALON_STREAM_HEARTBEAT_INTERVAL_MS": "300",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "talon_stream.cli", "run", "--log-level", "info"],
            env=env,
            stderr=stderr,
            text=True,
        )
    pid = worker.pid
    try:
        calls = emulator.state.request_log
        wait_until(lambda: len(calls) >= 50, "calls mid-stream", worker, log)

        accept_only(emulator, NEW_KEY)  # the old key is revoked in Talon.One
        wait_until(lambda: health(health_port)[0] == 503, "the halt", worker, log)
        _, halted = health(health_port)
        assert halted["status"] == "halted"
        assert "HTTP 401" in str(halted["reason"])
        assert "TALON_STREAM_TALON_API_KEY_FILE" in str(halted["reason"])
        assert API_KEY not in str(halted["reason"])
        produce(broker.bootstrap_servers, topic, second)  # records keep arriving while halted
        time.sleep(1.0)
        assert health(health_port)[0] == 503  # still halted: the file holds the old key

        update_secret(secret, NEW_KEY)
        total = len(first) + len(second)
        read_topic(broker.bootstrap_servers, settings.effects_topic, total, timeout_s=90)
        wait_until(lambda: health(health_port)[0] == 200, "the resume", worker, log)
        assert worker.poll() is None
        assert worker.pid == pid
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert text.count("starting (pid") == 1  # one process, never restarted
    assert "holds a new API key" in text
    assert "resumed after" in text

    envelopes = [
        orjson.loads(value) for value in read_all(broker.bootstrap_servers, settings.effects_topic)
    ]
    sources = {(e["source"]["partition"], e["source"]["offset"]) for e in envelopes}
    assert len(sources) == total  # every record's outcome published
    assert read_all(broker.bootstrap_servers, settings.dlq_topic, quiet_s=1.0) == []
    statuses = [entry["status"] for entry in emulator.state.request_log]
    refused = statuses.index(401)
    assert 200 in statuses[refused:]  # accepted again after the refusals, on the new key

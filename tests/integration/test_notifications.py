"""Talon.One → the receiver → Kafka, end to end: the emulator sends its notifications (the
strikethrough prices of catalog syncs, the loyalty points of closed sessions) to two receiver
processes behind one address — a round-robin TCP balancer here, as a Kubernetes Service would
spread them — while it duplicates some deliveries on purpose (a lost 2xx) and one receiver is
killed with SIGKILL mid-stream. Every notification must be on its topic exactly once, with its
key, and every delivery must end delivered."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import orjson
import pytest

from talon_one_emulator import (
    EmulatorConfig,
    EmulatorServer,
    NotificationSettings,
    NotificationWebhook,
)
from talon_stream.demo._broker import Broker
from talon_stream.notifications import parse_notifications
from tests.conftest import _reader
from tests.integration.conftest import API_KEY

pytestmark = pytest.mark.integration

SECRET = "integration-notification-secret"
HEADER = "X-Talon-Stream-Token"
_UUID = re.compile(rb"X-UUID: ([0-9a-f-]+)", re.I)


def read_records(
    broker: Broker, topics: list[str], quiet_s: float = 2.0
) -> list[tuple[str, bytes, bytes]]:
    """Every (topic, key, value) on ``topics``: read until nothing new comes for ``quiet_s``."""
    consumer = _reader(broker.bootstrap_servers, topics)
    records: list[tuple[str, bytes, bytes]] = []
    last = time.monotonic() + 10  # the group join
    try:
        while time.monotonic() - last < quiet_s:
            messages = consumer.consume(1000, 0.3)
            if messages:
                last = time.monotonic()
            records += [(m.topic(), m.key(), m.value()) for m in messages if m.error() is None]
    finally:
        consumer.close()
    return records


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Balancer:
    """Round-robin TCP proxy on loopback: each connection goes to the next backend; one that
    does not accept gets the client's connection closed (the sender sees no answer). Records
    which backends each X-UUID reached."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.reached: dict[str, set[int]] = {}
        self._turn = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> Balancer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        backend = self.backends[self._turn % len(self.backends)]
        self._turn += 1
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            client_w.close()
            return

        async def pipe(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: bool
        ) -> None:
            with contextlib.suppress(OSError):
                while chunk := await reader.read(65536):
                    if watch and (found := _UUID.search(chunk)):
                        self.reached.setdefault(found[1].decode(), set()).add(backend)
                    writer.write(chunk)
                    await writer.drain()
            with contextlib.suppress(OSError):
                writer.close()

        await asyncio.gather(pipe(client_r, upstream_w, True), pipe(upstream_r, client_w, False))


def start_receiver(broker: Broker, unique: str, port: int, health: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "TALON_STREAM_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TALON_STREAM_NOTIFICATIONS_HOST": "127.0.0.1",
        "TALON_STREAM_NOTIFICATIONS_PORT": str(port),
        "TALON_STREAM_NOTIFICATIONS_HEALTH_PORT": str(health),
        "TALON_STREAM_NOTIFICATIONS_AUTH_HEADER": HEADER,
        "TALON_STREAM_NOTIFICATIONS_AUTH_TOKEN": SECRET,
        **{
            f"TALON_STREAM_NOTIFICATIONS_{category.upper()}_TOPIC": f"{category}-{unique}"
            for category in ("pricing", "loyalty", "coupons", "campaigns")
        },
    }
    return subprocess.Popen(
        [sys.executable, "-m", "talon_stream.cli", "notifications", "--log-level", "info"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], health: int, timeout_s: float = 45.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("the receiver did not become ready")


@pytest.fixture
def receivers(
    broker: Broker, unique: str
) -> Iterator[list[tuple[subprocess.Popen[str], int, int]]]:
    broker.create_topics(
        {f"{c}-{unique}": 3 for c in ("pricing", "loyalty", "coupons", "campaigns")}
    )
    started = []
    for _ in range(2):
        port, health = free_port(), free_port()
        started.append((start_receiver(broker, unique, port, health), port, health))
    try:
        for process, _port, health in started:
            wait_ready(process, health)
        yield started
    finally:
        for process, _port, _health in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()


def test_each_notification_once_on_its_topic_despite_retries_and_a_killed_replica(
    broker: Broker, unique: str, receivers: list[tuple[subprocess.Popen[str], int, int]]
) -> None:
    (victim, port_a, _health_a), (survivor, port_b, health_b) = receivers
    with Balancer([port_a, port_b]) as balancer:
        settings = NotificationSettings(
            webhooks=(
                NotificationWebhook(
                    url=f"http://127.0.0.1:{balancer.port}/notifications",
                    headers={HEADER: SECRET},
                    kinds=("strikethrough", "loyalty"),
                ),
            ),
            initial_backoff_s=0.4,
            max_backoff_s=1.0,
            retry_for_s=60.0,
            timeout_s=5.0,
            batch_size=5,
            duplicate_rate=0.3,
            seed=17,
        )
        config = EmulatorConfig(api_keys=[API_KEY], notifications=settings)
        with (
            EmulatorServer(config) as emulator,
            httpx.Client(
                base_url=emulator.base_url, headers={"Authorization": f"ApiKey-v1 {API_KEY}"}
            ) as talon,
        ):
            sender = emulator.notifications
            assert sender is not None

            def sync(batch: int) -> None:
                actions = [
                    {"type": "ADD", "payload": {"sku": f"sku-{batch}-{n}", "price": 5 + n}}
                    for n in range(10)
                ]
                answer = talon.put("/v1/catalogs/1/sync", json={"actions": actions})
                assert answer.status_code == 200, answer.text

            def order(customer: int) -> None:
                session = {
                    "profileId": f"customer-{customer}",
                    "state": "closed",
                    "cartItems": [{"sku": "rsb002", "quantity": 1, "price": 10 + customer}],
                }
                answer = talon.put(
                    f"/v2/customer_sessions/order-{customer}",
                    json={"customerSession": session},
                )
                assert answer.status_code == 200, answer.text

            for step in range(12):
                sync(step) if step % 3 == 0 else order(step)
            deadline = time.monotonic() + 30
            while sum(d.outcome == "delivered" for d in sender.deliveries) < 6:
                assert time.monotonic() < deadline, "nothing delivered"
                time.sleep(0.02)
            victim.kill()  # SIGKILL mid-stream: no cleanup runs
            victim.wait()
            for step in range(12, 24):
                sync(step) if step % 3 == 0 else order(step)
            deadline = time.monotonic() + 60
            while sender.outstanding:
                assert time.monotonic() < deadline, f"{sender.outstanding} deliveries pending"
                time.sleep(0.05)
            deliveries = list(sender.deliveries)
        metrics = httpx.get(f"http://127.0.0.1:{health_b}/metrics", timeout=5).text

    assert [d.outcome for d in deliveries] == ["delivered"] * len(deliveries)
    assert any(d.duplicated for d in deliveries), "no delivery was duplicated"
    assert any(0 in d.attempts for d in deliveries), "no delivery hit the killed replica"
    assert any(len(ends) == 2 for ends in balancer.reached.values()), "no retry changed replica"
    assert survivor.poll() is None
    duplicates = re.search(r"^talon_stream_notifications_duplicates_total (\S+)$", metrics, re.M)
    assert duplicates is not None
    assert float(duplicates[1]) > 0

    expected = {
        n.id: (n.category, n.key)
        for d in deliveries
        for n in parse_notifications(d.body, d.message_id)
    }
    categories = Counter(category for category, _key in expected.values())
    assert categories == {"pricing": 80, "loyalty": 16}
    found: Counter[str] = Counter()
    for topic, key, value in read_records(
        broker, [f"{c}-{unique}" for c in ("pricing", "loyalty")]
    ):
        record = orjson.loads(value)
        found[record["id"]] += 1
        assert expected[record["id"]] == (topic.split("-")[0], key.decode())
        assert record["key"] == key.decode()
    assert set(found) == set(expected)
    assert [count for count in found.values() if count != 1] == []

    # SIGTERM: the survivor drains, flushes and exits cleanly.
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(30) == 0
    log = survivor.stderr.read() if survivor.stderr else ""
    assert "stopped cleanly" in log

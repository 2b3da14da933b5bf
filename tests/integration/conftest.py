"""Integration fixtures: the emulator on loopback and a worker running in this event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_stream.config._settings import Settings
from talon_stream.demo._broker import LOCAL_CONSUMER_SETTINGS, Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce

API_KEY = "integration-test-key"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[API_KEY])) as server:
        yield server


def worker_settings(
    broker: Broker, emulator: EmulatorServer, unique: str, **overrides: Any
) -> Settings:
    fields: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "group_id": f"group-{unique}",
        "input_topics": (f"in-{unique}",),
        "effects_topic": f"effects-{unique}",
        "dlq_topic": f"dlq-{unique}",
        "erasures_topic": f"erasures-{unique}",
        "talon_base_url": emulator.base_url,
        "talon_api_key": API_KEY,
        "commit_interval_s": 0.2,
        **LOCAL_CONSUMER_SETTINGS,
    }
    fields.update(overrides)
    return Settings(**fields)


def create_topics(broker: Broker, settings: Settings, partitions: int) -> str:
    """Create the worker's input and effects topics (and a one-partition DLQ); returns the input."""
    topic = settings.input_topics[0]
    broker.create_topics(
        {topic: partitions, settings.effects_topic: partitions, settings.dlq_topic: 1}
    )
    return topic


async def drain(
    broker: Broker,
    settings: Settings,
    records: list[tuple[bytes | None, bytes | None]],
    partitions: int = 4,
) -> Worker:
    """Produce ``records`` (key, value) to the worker's input topic, created with its effects
    topic and DLQ; run a worker until each record has an outcome, then stop it. The worker, for
    what it counted."""
    topic = create_topics(broker, settings, partitions)
    produce(broker.bootstrap_servers, topic, records)
    worker = Worker(settings)
    async with running(worker):
        await wait_for(
            lambda: worker.stats.outcomes >= len(records), timeout_s=120, what="outcomes"
        )
    return worker


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run ``worker`` in the background; stop it cleanly (and surface its errors) on exit."""
    task = asyncio.get_running_loop().create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=60)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f}s waiting for {what or condition}"
            )
        await asyncio.sleep(0.05)

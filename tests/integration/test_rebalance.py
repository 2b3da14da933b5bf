"""Workers joining and leaving one group: nothing lost, and calls for one customer never overlap,
not even while partitions move between workers."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Iterator

import orjson
import pytest

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_stream.core._envelopes import envelope_id
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all, read_topic, shop_records
from tests.integration.conftest import API_KEY, create_topics, wait_for, worker_settings


@pytest.fixture
def slow_emulator() -> Iterator[EmulatorServer]:
    # 20 ms per call: enough for calls to be in flight when partitions move.
    with EmulatorServer(EmulatorConfig(api_keys=[API_KEY], latency_ms=20)) as server:
        yield server


def needs_group_protocol(broker: Broker, protocol: str) -> None:
    """KIP-848's protocol needs Apache Kafka 4 (Tansu speaks only the classic one)."""
    if protocol == "consumer" and broker.kind == "tansu":
        pytest.skip("Tansu has no KIP-848 consumer group protocol: tested on Apache Kafka")


def overlapping_calls(entries: list[dict[str, object]]) -> int:
    """Calls that started before the previous call for the same session or profile ended."""
    by_id: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in entries:
        for field in ("sessionId", "profileId"):
            value = entry.get(field)
            if value:
                by_id[f"{field}:{value}"].append((float(entry["started"]), float(entry["ended"])))  # type: ignore[arg-type]
    overlaps = 0
    for intervals in by_id.values():
        intervals.sort()
        for (_, previous_end), (start, _) in itertools.pairwise(intervals):
            if start < previous_end:
                overlaps += 1
    return overlaps


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
async def test_joining_and_leaving_workers_lose_nothing_and_never_overlap(
    broker: Broker, slow_emulator: EmulatorServer, unique: str, protocol: str
) -> None:
    needs_group_protocol(broker, protocol)
    # A few calls in flight at 20 ms each: slow enough that partitions move mid-stream.
    settings = worker_settings(
        broker, slow_emulator, unique, max_in_flight=8, group_protocol=protocol
    )
    topic = create_topics(broker, settings, partitions=6)
    records = shop_records(3000, seed=5, customers=150)
    produce(broker.bootstrap_servers, topic, records)

    first, second = Worker(settings), Worker(settings)
    first_task = asyncio.get_running_loop().create_task(first.run())
    await wait_for(lambda: first.stats.outcomes >= 200, what="the first worker to get going")
    second_task = asyncio.get_running_loop().create_task(second.run())
    await wait_for(lambda: bool(second.assigned), what="the second worker to get partitions")
    await wait_for(lambda: second.stats.outcomes >= 50, what="the second worker to process")
    first.stop()  # leaves the group: its partitions move to the second worker
    await asyncio.wait_for(first_task, timeout=60)
    expected = {
        envelope_id(topic, message.partition(), message.offset())  # type: ignore[attr-defined]
        for message in await asyncio.to_thread(
            read_topic, broker.bootstrap_servers, topic, len(records)
        )
    }
    # Every input record gets an outcome (a replay after the move may add a duplicate, not a gap).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    missing = expected
    while missing and loop.time() < deadline:
        await asyncio.sleep(1)
        outcomes = await asyncio.to_thread(read_outcomes, broker, settings.effects_topic)
        missing = expected - outcomes
    second.stop()
    await asyncio.wait_for(second_task, timeout=60)
    assert not missing, f"{len(missing)} of {len(expected)} records have no outcome"
    entries = slow_emulator.state.request_log.entries()
    assert overlapping_calls(entries) == 0  # type: ignore[arg-type]
    assert not [e for e in entries if e["status"] == 409]
    assert first.stats.dead_lettered + second.stats.dead_lettered == 0


def read_outcomes(broker: Broker, effects: str) -> set[str]:
    """Every envelope id on the effects topic."""
    return {
        orjson.loads(value)["envelopeId"] for value in read_all(broker.bootstrap_servers, effects)
    }

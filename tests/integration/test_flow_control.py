"""Flow control against the emulator: the request-rate cap holds at Talon.One's door, and a 429
storm shrinks the calls in flight, loses nothing and dead-letters nothing."""

from __future__ import annotations

import itertools

from talon_one_emulator import EmulatorServer, FaultSettings
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, shop_records
from tests.integration.conftest import create_topics, running, wait_for, worker_settings


async def test_the_request_rate_cap_holds_at_talon_ones_door(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    rate, burst = 40.0, 4
    settings = worker_settings(broker, emulator, unique, max_requests_per_s=rate, rate_burst=burst)
    topic = create_topics(broker, settings, partitions=3)
    records = shop_records(120, seed=11, customers=60)
    produce(broker.bootstrap_servers, topic, records)

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= len(records), what="every outcome")

    starts = sorted(entry["started"] for entry in emulator.state.request_log)
    assert len(starts) >= len(records)
    # In any one-second window at most burst + rate calls arrive (one more for clock jitter).
    busiest = max(
        sum(1 for other in starts[i:] if other < start + 1.0) for i, start in enumerate(starts)
    )
    assert busiest <= burst + rate + 1
    # Without the cap these calls take a fraction of a second; with it, at least (n - burst)/rate.
    assert starts[-1] - starts[0] >= (len(starts) - burst) / rate - 0.05
    assert worker.rate is not None
    assert worker.rate.delayed > 0
    assert worker.stats.dead_lettered == 0


async def test_a_429_storm_shrinks_the_calls_in_flight_and_loses_nothing(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique, max_in_flight=64)
    topic = create_topics(broker, settings, partitions=3)
    records = shop_records(300, seed=12, customers=150)
    produce(broker.bootstrap_servers, topic, records)
    emulator.faults.apply(FaultSettings(error_rates={429: 0.4}, retry_after_s=1))

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.statuses[429] >= 20, what="a storm of 429s")
        assert worker.concurrency is not None
        shrunk = worker.concurrency.limit
        emulator.faults.apply(FaultSettings())  # the storm passes
        await wait_for(lambda: worker.stats.outcomes >= len(records), what="every outcome")

    assert shrunk < 64
    assert worker.concurrency.decreases >= 1
    assert worker.stats.dead_lettered == 0
    assert worker.stats.effects_published == len(records)
    # Retry-After was honoured: no record was sent again sooner than 1 s after its 429 answer.
    by_key: dict[str, list[tuple[float, float, int]]] = {}
    for entry in emulator.state.request_log:
        if entry["idempotencyKey"]:
            by_key.setdefault(entry["idempotencyKey"], []).append(
                (entry["started"], entry["ended"], entry["status"])
            )
    retried = 0
    for calls in by_key.values():
        calls.sort()
        for (_, answered, status), (again, _, _) in itertools.pairwise(calls):
            if status == 429:
                retried += 1
                assert again - answered >= 1.0 - 0.01
    assert retried >= 20

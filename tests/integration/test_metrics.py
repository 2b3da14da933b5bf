"""``/metrics`` of a running worker: the counters a platform team watches, with real values."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, shop_records
from tests.integration.conftest import create_topics, running, wait_for, worker_settings

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(port: int) -> Samples:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await answer.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(key) == wanted for key, wanted in labels.items())
    )


async def test_metrics_show_the_workers_traffic(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(
        broker, emulator, unique, health_port=0, health_host="127.0.0.1", commit_interval_s=0.2
    )
    topic = create_topics(broker, settings, partitions=3)
    records = shop_records(150, seed=5, customers=40)
    bad = [(b"broken", b"{not json")]
    produce(broker.bootstrap_servers, topic, records + bad)

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= len(records) + 1, what="every outcome")
        await wait_for(lambda: sum(worker.committed.values()) == len(records) + 1, what="commits")
        assert worker.health_port is not None
        samples = await scrape(worker.health_port)

    prefix = "talon_stream_"
    assert total(samples, prefix + "records_consumed_total") == len(records) + 1
    assert {labels["topic"] for labels, _ in samples[prefix + "records_consumed_total"]} == {topic}
    assert total(samples, prefix + "calls_total") == worker.stats.calls.total()
    assert (
        total(samples, prefix + "calls_total", operation="updateCustomerSessionV2", status="200")
        > 0
    )
    assert total(samples, prefix + "call_duration_seconds_count") == worker.stats.calls.total()
    assert total(samples, prefix + "call_duration_seconds_sum") > 0
    # Every record ran through every stage once (the broken one too: its outcome is the DLQ).
    for stage in ("fetch", "decode", "key_wait", "slot_wait", "call", "produce", "commit"):
        assert total(samples, prefix + "stage_seconds_count", stage=stage) == len(records) + 1
    assert total(samples, prefix + "stage_seconds_sum", stage="call") > 0
    assert total(samples, prefix + "dlq_records_total", reason="DecodeError") == 1
    assert total(samples, prefix + "effects_envelopes_total") == len(records)
    assert total(samples, prefix + "effects_total", effect_type="setDiscount") > 0
    assert total(samples, prefix + "committed_offset") == len(records) + 1
    assert total(samples, prefix + "consumer_lag") == 0
    assert len(samples[prefix + "consumer_lag"]) == 3  # one per partition
    assert total(samples, prefix + "halted") == 0
    assert total(samples, prefix + "in_flight_limit") == settings.max_in_flight
    assert prefix + "buffered_records" in samples
    assert prefix + "paused_partitions" in samples

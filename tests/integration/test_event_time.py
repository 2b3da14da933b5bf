"""One customer, several topics: carts on one topic, orders on another, the cart service lagging.

Shopper journeys are split by event type over co-partitioned topics, as shops publish them from
different services, each record stamped with the time its event happened; the carts topic gets
its records up to 2 s late. The worker must call Talon.One for every customer in event-time
order (the emulator's request log), with no DLQ record and no 409.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from talon_one_emulator import EmulatorServer
from talon_stream.core._envelopes import envelope_id
from talon_stream.demo import ShopSimulator
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import read_all
from tests.integration.conftest import running, wait_for, worker_settings

pytestmark = pytest.mark.integration

PARTITIONS = 4
LAG_MS = 2000


def topic_of(event_type: str, topics: dict[str, str]) -> str:
    family = event_type.split(".", 1)[0]
    return topics.get(family, topics["event"])


def timetable(topics: dict[str, str], seed: int) -> list[dict[str, Any]]:
    """Whole journeys of 40 shoppers, interleaved, 8 ms apart in event time; each record with
    the moment (ms from the start) its topic's producer writes it: at once, except carts, up
    to LAG_MS late and in order."""
    simulator = ShopSimulator(seed=seed, customers=25, poison_rate=0.0, anonymous_rate=0.0)
    rng = random.Random(seed)
    active = [simulator.journey() for _ in range(40)]
    out: list[dict[str, Any]] = []
    written: dict[str, float] = defaultdict(float)
    at = 0
    while active:
        journey = rng.choice(active)
        generated = journey.pop(0)
        if not journey:
            active.remove(journey)
        at += 8
        event = orjson.loads(generated.value)
        topic = topic_of(event["type"], topics)
        lag = rng.uniform(0, LAG_MS) if topic == topics["cart"] else 0.0
        written[topic] = max(written[topic], at + lag)  # a producer writes in order
        out.append(
            {
                "topic": topic,
                "key": generated.key,
                "value": generated.value,
                "event_ms": at,
                "write_ms": written[topic],
            }
        )
    return out


def produce_on_schedule(bootstrap: str, records: list[dict[str, Any]], start_ms: int) -> None:
    """Write each record at its moment, stamped with its event time; note where it landed."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    started = time.monotonic()

    def landed(record: dict[str, Any]) -> Any:
        def report(error: Any, message: Any) -> None:
            assert error is None, error
            record["partition"], record["offset"] = message.partition(), message.offset()

        return report

    for record in sorted(records, key=lambda r: r["write_ms"]):
        delay = record["write_ms"] / 1000 - (time.monotonic() - started)
        if delay > 0:
            time.sleep(delay)
        producer.produce(
            record["topic"],
            key=record["key"],
            value=record["value"],
            timestamp=start_ms + record["event_ms"],
            on_delivery=landed(record),
        )
        producer.poll(0)
    assert producer.flush(15) == 0


async def test_a_customers_calls_follow_event_time_across_topics_with_a_lagging_cart_topic(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    topics = {family: f"shop.{family}s-{unique}" for family in ("cart", "order", "customer")}
    topics["event"] = f"shop.events-{unique}"
    names = list(topics.values())
    settings = worker_settings(
        broker, emulator, unique, input_topics=tuple(names), max_idle_ms=LAG_MS + 1000
    )
    broker.create_topics(
        {
            **dict.fromkeys(names, PARTITIONS),
            settings.effects_topic: PARTITIONS,
            settings.dlq_topic: 1,
        }
    )
    records = timetable(topics, seed=23)
    worker = Worker(settings)
    async with running(worker):
        await worker.wait_until_assigned()
        start_ms = int(time.time() * 1000)
        feeder = threading.Thread(
            target=produce_on_schedule, args=(broker.bootstrap_servers, records, start_ms)
        )
        feeder.start()
        await wait_for(
            lambda: (
                not feeder.is_alive()
                and worker.stats.effects_published + worker.stats.dead_lettered >= len(records)
            ),
            timeout_s=90,
        )
        feeder.join()

    # Every call reached Talon.One once and was accepted: no 409, no state refused.
    by_id = {envelope_id(r["topic"], r["partition"], r["offset"]): r for r in records}
    calls = [entry for entry in emulator.state.request_log if entry["operation"]]
    assert {entry["status"] for entry in calls} == {200}
    started: dict[str, float] = {}
    for entry in calls:
        started.setdefault(entry["idempotencyKey"], entry["started"])
    assert set(started) == set(by_id)
    # For every customer, the calls started in the order their events happened.
    by_customer: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    for key, record in by_id.items():
        by_customer[record["key"]].append({**record, "started": started[key]})
    crossed = 0
    for customer, own in by_customer.items():
        in_event_order = [r["started"] for r in sorted(own, key=lambda r: r["event_ms"])]
        assert in_event_order == sorted(in_event_order), f"{customer!r} out of event-time order"
        crossed += len({r["topic"] for r in own}) > 1
    assert crossed >= 20  # most customers' events spanned several topics
    # The cart topic did lag: some carts were written after a later order of their customer.
    assert any(
        cart["write_ms"] > order["write_ms"] and cart["event_ms"] < order["event_ms"]
        for own in by_customer.values()
        for cart in own
        if cart["topic"] == topics["cart"]
        for order in own
        if order["topic"] == topics["order"]
    )
    assert read_all(broker.bootstrap_servers, settings.dlq_topic, quiet_s=1.0) == []
    assert worker.stats.dead_lettered == 0

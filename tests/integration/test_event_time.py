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

from talon_one_emulator import EmulatorServer, FaultSettings, FixedLatency
from talon_stream.config._settings import Settings
from talon_stream.core._envelopes import envelope_id
from talon_stream.demo import ShopSimulator
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all, read_topic
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


def shop_event(event_id: str, event_type: str, occurred_at: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {"eventId": event_id, "type": event_type, "occurredAt": occurred_at, **fields}
    )


def one_partition(
    broker: Broker, emulator: EmulatorServer, unique: str, **overrides: Any
) -> tuple[Settings, str, dict[str, str]]:
    """Settings of a worker reading one single-partition topic, the topic, and a shopper."""
    settings = worker_settings(broker, emulator, unique, **overrides)
    topic = settings.input_topics[0]
    broker.create_topics({topic: 1, settings.effects_topic: 1, settings.dlq_topic: 1})
    return settings, topic, {"profileId": "ada", "sessionId": f"ada-{unique}"}


def envelopes_by_event(broker: Broker, settings: Settings, count: int) -> dict[str, Any]:
    """The first ``count`` envelopes of the effects topic, by their source event id."""
    messages = read_topic(broker.bootstrap_servers, settings.effects_topic, count)
    envelopes = [orjson.loads(m.value()) for m in messages]  # type: ignore[attr-defined]
    return {e["source"]["eventId"]: e for e in envelopes}


def cart(*skus: str) -> dict[str, Any]:
    return {
        "cartItems": [
            {"sku": sku, "name": sku, "price": 10.0, "quantity": 1, "category": "demo"}
            for sku in skus
        ]
    }


async def test_a_cart_that_happened_before_the_sessions_newest_event_is_superseded_not_sent(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings, topic, ada = one_partition(broker, emulator, unique)
    bob = {"profileId": "bob", "sessionId": f"bob-{unique}"}
    records = [
        # Ada's order arrives before the cart update that preceded it (published late).
        shop_event("a1", "order.placed", "2026-12-05T10:00:05Z", **ada, payload=cart("A", "B")),
        shop_event("a0", "cart.updated", "2026-12-05T10:00:01Z", **ada, payload=cart("A")),
        # Bob's newer cart arrives first; the older one after it must not overwrite it.
        shop_event("b2", "cart.updated", "2026-12-05T10:00:09Z", **bob, payload=cart("X", "Y")),
        shop_event("b1", "cart.updated", "2026-12-05T10:00:08Z", **bob, payload=cart("X")),
    ]
    produce(broker.bootstrap_servers, topic, [(b"ada", records[0]), (b"ada", records[1])])
    produce(broker.bootstrap_servers, topic, [(b"bob", records[2]), (b"bob", records[3])])
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.effects_published >= 4, timeout_s=30)
    envelopes = envelopes_by_event(broker, settings, 4)
    late = envelopes["a0"]
    assert late["status"] == 0
    assert late["effects"] == []
    assert late["superseded"]["eventId"] == "a1"
    assert late["superseded"]["type"] == "order.placed"
    assert late["superseded"]["sessionState"] == "closed"
    assert late["superseded"]["envelopeId"] == envelopes["a1"]["envelopeId"]
    assert late["superseded"]["reason"] == (
        "happened before order.placed a1 (2026-12-05T10:00:05+00:00), already applied to the "
        "session (session closed)"
    )
    assert envelopes["b1"]["superseded"]["eventId"] == "b2"
    assert "superseded" not in envelopes["a1"]
    assert "superseded" not in envelopes["b2"]
    # Talon.One got one call per session: the order, and Bob's newer cart.
    calls = [entry for entry in emulator.state.request_log if entry["operation"]]
    assert sorted((c["sessionId"], c["status"]) for c in calls) == sorted(
        [(ada["sessionId"], 200), (bob["sessionId"], 200)]
    )
    bob_session = emulator.state.sessions[bob["sessionId"]]
    assert [item.sku for item in bob_session.items] == ["X", "Y"]
    assert worker.stats.superseded == 2
    assert worker.stats.dead_lettered == 0


async def test_cart_updates_piled_up_behind_a_call_are_sent_as_one_and_each_gets_its_outcome(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    emulator.faults.apply(FaultSettings(latency=FixedLatency(ms=300)))
    settings, topic, ada = one_partition(broker, emulator, unique, coalesce_cart_updates=True)
    carts = [
        shop_event(
            f"c{n}",
            "cart.updated",
            f"2026-12-05T10:00:{n:02d}Z",
            **ada,
            payload={
                **cart(*[f"SKU-{k}" for k in range(n + 1)]),
                # Two declared session attributes, set by different records.
                "attributes": {"channel": f"web-{n}"} if n % 2 else {"redeemPoints": n > 10},
            },
        )
        for n in range(20)
    ]
    order = shop_event("o", "order.placed", "2026-12-05T10:00:30Z", **ada, payload=cart("SKU-0"))
    produce(broker.bootstrap_servers, topic, [(b"ada", value) for value in [*carts, order]])
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 21, timeout_s=60)
    by_event = envelopes_by_event(broker, settings, 21)
    envelopes = list(by_event.values())
    assert sorted(by_event) == sorted([f"c{n}" for n in range(20)] + ["o"])  # one outcome each
    calls = [entry for entry in emulator.state.request_log if entry["operation"]]
    # The first cart went alone; the 19 behind it piled up while it was in flight.
    assert len(calls) <= 4
    assert {entry["status"] for entry in calls} == {200}
    coalesced = [e for e in envelopes if "coalescedInto" in e]
    assert len(coalesced) == worker.stats.calls_saved >= 15
    for envelope in coalesced:
        owner = envelope["coalescedInto"]
        assert by_event[owner["eventId"]]["envelopeId"] == owner["envelopeId"]
        assert "coalescedInto" not in by_event[owner["eventId"]]
        assert envelope["effects"] == by_event[owner["eventId"]]["effects"]
    # The merged call carried the latest cart and every attribute; the order was not joined.
    last_cart_call = calls[-2]["body"]["customerSession"]
    assert len(last_cart_call["cartItems"]) == 20
    assert last_cart_call["attributes"] == {"channel": "web-19", "redeemPoints": True}
    assert calls[-1]["body"]["customerSession"]["state"] == "closed"
    assert emulator.state.sessions[ada["sessionId"]].state == "closed"
    assert worker.stats.dead_lettered == 0


async def test_a_coalesced_call_talon_one_refuses_is_made_again_record_by_record(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    emulator.faults.apply(FaultSettings(latency=FixedLatency(ms=300)))
    settings, topic, ada = one_partition(broker, emulator, unique, coalesce_cart_updates=True)

    def cart_event(n: int, **attributes: Any) -> bytes:
        payload = {**cart(f"SKU-{n}"), "attributes": attributes}
        return shop_event(
            f"c{n}", "cart.updated", f"2026-12-05T10:00:{n:02d}Z", **ada, payload=payload
        )

    # c3 sets an attribute the Application does not declare: Talon.One refuses it.
    values = [cart_event(n, channel="web") for n in range(3)]
    values += [cart_event(3, undeclared=1), *[cart_event(n, channel="app") for n in range(4, 6)]]
    produce(broker.bootstrap_servers, topic, [(b"ada", value) for value in values])
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 6, timeout_s=60)
    assert worker.stats.dead_lettered == 1
    [dead] = read_all(broker.bootstrap_servers, settings.dlq_topic, quiet_s=1.0)
    assert orjson.loads(dead)["eventId"] == "c3"
    assert sorted(envelopes_by_event(broker, settings, 5)) == ["c0", "c1", "c2", "c4", "c5"]
    statuses = [entry["status"] for entry in emulator.state.request_log if entry["operation"]]
    assert statuses.count(400) >= 2  # the merged call, then c3 alone; never a key reused
    assert emulator.state.sessions[ada["sessionId"]].items[0].sku == "SKU-5"


async def test_coalescing_goes_on_only_where_the_broker_keeps_the_commits_that_list_the_calls(
    broker: Broker, emulator: EmulatorServer, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A coalesced call is committed before it starts, so that a replay makes it again. On a
    broker that drops commit metadata (Tansu) the worker reads its first such commit back and
    stops coalescing; on Apache Kafka the list is there and coalescing goes on."""
    emulator.faults.apply(FaultSettings(latency=FixedLatency(ms=300)))
    settings, topic, ada = one_partition(broker, emulator, unique, coalesce_cart_updates=True)

    def wave(first: int) -> list[tuple[bytes, bytes]]:
        return [
            (
                b"ada",
                shop_event(
                    f"c{n}",
                    "cart.updated",
                    f"2026-12-05T10:00:{n:02d}Z",
                    **ada,
                    payload=cart(f"SKU-{n}"),
                ),
            )
            for n in range(first, first + 10)
        ]

    worker = Worker(settings)
    with caplog.at_level("WARNING", logger="talon_stream"):
        async with running(worker):
            produce(broker.bootstrap_servers, topic, wave(0))
            await wait_for(lambda: worker.stats.outcomes >= 10, timeout_s=60)
            calls_before = sum(1 for entry in emulator.state.request_log if entry["operation"])
            produce(broker.bootstrap_servers, topic, wave(10))
            await wait_for(lambda: worker.stats.outcomes >= 20, timeout_s=60)
    calls = sum(1 for entry in emulator.state.request_log if entry["operation"])
    second_wave = calls - calls_before
    dropped = "keeps no offset commit metadata" in caplog.text
    assert worker.stats.dead_lettered == 0
    if broker.kind == "tansu":
        assert dropped
        assert second_wave == 10  # one call per record from then on
    else:
        assert not dropped
        assert second_wave <= 3  # the first alone, the nine behind it in one or two
    assert emulator.state.sessions[ada["sessionId"]].items[0].sku == "SKU-19"


async def test_a_late_cart_for_a_session_closed_before_the_worker_started_is_superseded(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings, topic, ada = one_partition(broker, emulator, unique)
    order = shop_event("o", "order.placed", "2026-12-05T10:00:05Z", **ada, payload=cart("A"))
    produce(broker.bootstrap_servers, topic, [(b"ada", order)])
    first = Worker(settings)
    async with running(first):
        await wait_for(lambda: first.stats.outcomes >= 1, timeout_s=30)
    # The cart published late reaches a worker that never saw the order: Talon.One refuses
    # the update (the session is closed), and the worker reads the session to tell why.
    late = shop_event("c", "cart.updated", "2026-12-05T10:00:01Z", **ada, payload=cart("A", "B"))
    produce(broker.bootstrap_servers, topic, [(b"ada", late)])
    second = Worker(settings)
    async with running(second):
        await wait_for(lambda: second.stats.outcomes >= 1, timeout_s=30)
    assert second.stats.superseded == 1
    assert second.stats.dead_lettered == 0
    envelopes = envelopes_by_event(broker, settings, 2)
    superseded = envelopes["c"]["superseded"]
    assert superseded["sessionState"] == "closed"
    assert superseded["eventId"] is None
    assert "is closed in Talon.One" in superseded["reason"]
    operations = [(e["operation"], e["status"]) for e in emulator.state.request_log]
    assert operations[-2:] == [("updateCustomerSessionV2", 400), ("getCustomerSession", 200)]
    assert [item.sku for item in emulator.state.sessions[ada["sessionId"]].items] == ["A"]

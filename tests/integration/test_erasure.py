"""Erasure end to end: a customer's events before and after ``customer.erased``, on two
co-partitioned topics. The erasure must be the customer's last call in Talon.One (the emulator's
request log), the records after it in the DLQ with the reason, and a worker started later must
refuse the customer too (it reads the erasures topic back). The customer's integration ID must
appear in no log line and on no record of the erasures topic.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import read_all
from tests.integration.conftest import running, wait_for, worker_settings

pytestmark = pytest.mark.integration

PARTITIONS = 2


def event(event_id: str, at_s: int, profile: str, kind: str, **more: Any) -> dict[str, Any]:
    moment = datetime.fromtimestamp(1_795_000_000 + at_s, tz=UTC).isoformat()
    return {"eventId": event_id, "type": kind, "occurredAt": moment, "profileId": profile, **more}


def cart(event_id: str, at_s: int, profile: str, session: str, kind: str = "cart.updated") -> Any:
    items = [{"sku": "SKU-1", "quantity": 1, "price": 20.0}]
    return event(event_id, at_s, profile, kind, sessionId=session, payload={"cartItems": items})


def produce(bootstrap: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Each (topic, event), keyed by the customer and stamped with when it happened."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, document in records:
        at = datetime.fromisoformat(document["occurredAt"])
        producer.produce(
            topic,
            key=document["profileId"].encode(),
            value=orjson.dumps(document),
            timestamp=int(at.timestamp() * 1000),
        )
    assert producer.flush(10) == 0


async def test_an_erasure_is_the_customers_last_call_and_later_records_are_refused(
    broker: Broker, emulator: EmulatorServer, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    carts, customers = f"shop.carts-{unique}", f"shop.customers-{unique}"
    settings = worker_settings(broker, emulator, unique, input_topics=(carts, customers))
    broker.create_topics(
        {
            carts: PARTITIONS,
            customers: PARTITIONS,
            settings.effects_topic: PARTITIONS,
            settings.dlq_topic: 1,
        }
    )
    broker.create_topics({settings.erasures_topic: 1}, {"cleanup.policy": "compact"})
    erin, other = f"erin.{unique}@example.com", f"olaf-{unique}"
    # The customer's cart service and customer service write to their own topics; the later
    # records of each topic are written before the erasure reaches the other one.
    produce(
        broker.bootstrap_servers,
        [
            (carts, cart("c1", 0, erin, f"s1-{unique}")),
            (carts, cart("c2", 20, erin, f"s1-{unique}", kind="order.placed")),
            (carts, cart("c3", 40, erin, f"s2-{unique}")),  # after the erasure
            (carts, cart("o1", 5, other, f"s3-{unique}")),
            (carts, cart("o2", 45, other, f"s3-{unique}")),
            (
                customers,
                event("u1", 10, erin, "customer.updated", payload={"attributes": {"Name": "E"}}),
            ),
            (customers, event("x1", 30, erin, "customer.erased")),
            (
                customers,
                event("u2", 50, erin, "customer.event", payload={"eventType": "review"}),
            ),
        ],
    )
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 8, timeout_s=60, what="8 outcomes")

    calls = [e for e in emulator.state.request_log.entries() if e["operation"]]
    erins = [e["operation"] for e in calls if erin in e["path"] or e["profileId"] == erin]
    assert erins == [
        "updateCustomerSessionV2",
        "updateCustomerProfileV2",
        "updateCustomerSessionV2",
        "deleteCustomerData",
    ]
    assert [e["status"] for e in calls if e["operation"] == "deleteCustomerData"] == [204]
    dead = [orjson.loads(value) for value in read_all(broker.bootstrap_servers, settings.dlq_topic)]
    assert sorted(d["eventId"] for d in dead) == ["c3", "u2"]
    assert worker.stats.dlq_reasons == {"ErasedCustomerError": 2}
    assert worker.stats.customers_erased == 1
    # The other customer's records all went through.
    assert [e["sessionId"] for e in calls if e["profileId"] == other] == [f"s3-{unique}"] * 2

    # A worker started later (the same group, nothing to resume but what is new) reads the
    # erasure back and refuses the customer's next record.
    produce(broker.bootstrap_servers, [(customers, event("u3", 60, erin, "customer.updated"))])
    later = Worker(settings)
    async with running(later):
        await wait_for(lambda: later.stats.outcomes >= 1, timeout_s=60, what="1 outcome")
    assert later.stats.dlq_reasons == {"ErasedCustomerError": 1}
    assert [e for e in emulator.state.request_log.entries() if e["seq"] > calls[-1]["seq"]] == []

    # Nothing of the erased customer's ID on the erasures topic or in the logs.
    marks = read_all(broker.bootstrap_servers, settings.erasures_topic, quiet_s=1.0)
    assert len(marks) == 1
    assert erin.encode() not in marks[0]
    for line in caplog.records:  # the message, and the record fields JSON lines carry
        assert erin not in line.getMessage()
        assert erin not in str(getattr(line, "profileId", ""))
    assert any(str(getattr(line, "profileId", "")).startswith("~") for line in caplog.records)

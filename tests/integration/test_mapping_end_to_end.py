"""A shop's own documents on their own topics → mapping file → Talon.One → effects, end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import yaml

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_topic
from tests.integration.conftest import running, wait_for, worker_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "mappings"
FIXTURES = ROOT / "tests" / "fixtures" / "mapping"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def mapping_file(directory: Path, topics: dict[str, str]) -> Path:
    """Both shipped examples in one file, each on this test's own topic (``topics``: mapping
    name → topic)."""
    combined = [
        {**mapping, "topics": [topics[mapping["name"]]]}
        for example in ("shopify-carts.yaml", "commercetools-orders.yaml")
        for mapping in yaml.safe_load((EXAMPLES / example).read_text())["mappings"]
    ]
    path = directory / "mappings.yaml"
    path.write_text(yaml.safe_dump({"mappings": combined}, allow_unicode=True, sort_keys=False))
    return path


async def test_mapped_documents_become_calls_and_effects_and_an_unmappable_one_is_dead_lettered(
    broker: Broker, emulator: EmulatorServer, unique: str, tmp_path: Path
) -> None:
    shopify_topic, orders_topic = f"shopify-{unique}", f"ct-orders-{unique}"
    path = mapping_file(
        tmp_path, {"shopify-carts": shopify_topic, "commercetools-orders": orders_topic}
    )
    settings = worker_settings(
        broker, emulator, unique, input_topics=(shopify_topic, orders_topic), mapping_file=path
    )
    broker.create_topics(
        {shopify_topic: 2, orders_topic: 2, settings.effects_topic: 2, settings.dlq_topic: 1}
    )

    cart = fixture("shopify-cart-update")
    tokenless = {
        key: value for key, value in fixture("shopify-cart-guest").items() if key != "token"
    }
    created = fixture("commercetools-order-created")
    cancelled = fixture("commercetools-order-state-changed")
    order_id = created["resource"]["id"]
    produce(
        broker.bootstrap_servers,
        shopify_topic,
        [(cart["token"].encode(), orjson.dumps(cart)), (b"guest", orjson.dumps(tokenless))],
    )
    produce(
        broker.bootstrap_servers,
        orders_topic,
        [(order_id.encode(), orjson.dumps(created)), (order_id.encode(), orjson.dumps(cancelled))],
    )

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 4, what="4 outcomes")

    # Talon.One got the calls the canonical events stand for.
    log = [entry for entry in emulator.state.request_log if entry["operation"]]
    by_path: dict[str, list[Any]] = {}
    for entry in log:
        by_path.setdefault(entry["path"], []).append(entry)
    assert set(by_path) == {
        f"/v2/customer_sessions/{cart['token']}",
        f"/v2/customer_sessions/{order_id}",
    }
    [cart_call] = by_path[f"/v2/customer_sessions/{cart['token']}"]
    assert (cart_call["method"], cart_call["status"]) == ("PUT", 200)
    session = cart_call["body"]["customerSession"]
    assert session["state"] == "open"
    assert session["profileId"] == "7012345678901"
    assert [(i["sku"], i["quantity"], i["price"]) for i in session["cartItems"]] == [
        ("rsb002", 2, 49.0),
        ("44321098765499", 1, 15.0),
    ]
    assert session["attributes"] == {"channel": "shopify"}

    placed, cancel = by_path[f"/v2/customer_sessions/{order_id}"]  # in offset order
    assert (placed["method"], placed["status"], cancel["status"]) == ("PUT", 200, 200)
    order = placed["body"]["customerSession"]
    assert order["state"] == "closed"
    assert order["profileId"] == created["order"]["customerId"]
    assert [(i["sku"], i["quantity"], i["price"]) for i in order["cartItems"]] == [
        ("rsb002", 1, 49.0),
        ("dtr003", 2, 74.0),
    ]
    assert order["cartItems"][0]["attributes"] == {"color": "red"}
    assert order["additionalCosts"] == {"shipping": {"price": 4.95}}
    assert cancel["body"]["customerSession"]["state"] == "cancelled"

    # One effects envelope per mapped document, carrying the event id the mapping built.
    envelopes = [
        orjson.loads(m.value())  # type: ignore[attr-defined]
        for m in read_topic(broker.bootstrap_servers, settings.effects_topic, 3)
    ]
    assert sorted(e["source"]["eventId"] for e in envelopes) == sorted(
        [f"{cart['token']}@{cart['updated_at']}", created["id"], cancelled["id"]]
    )
    by_event = {e["source"]["eventId"]: e for e in envelopes}
    assert by_event[created["id"]]["session"]["state"] == "closed"
    assert by_event[cancelled["id"]]["session"]["state"] == "cancelled"
    assert by_event[created["id"]]["effects"], "the 10-off-150 campaign answers the order"

    # The document without a token: in the DLQ, unchanged, saying which field is missing.
    [dead] = read_topic(broker.bootstrap_servers, settings.dlq_topic, 1)
    headers = dict(dead.headers())  # type: ignore[attr-defined]
    assert dead.value() == orjson.dumps(tokenless)  # type: ignore[attr-defined]
    assert headers["talon-stream.error.class"] == b"MappingError"
    assert (
        headers["talon-stream.error.message"]
        == (
            'mapping "shopify-carts", rule "cart-updated" → sessionId: expression "token" gave '
            "nothing"
        ).encode()
    )
    assert headers["talon-stream.source.topic"] == shopify_topic.encode()
    assert worker.stats.dead_lettered == 1

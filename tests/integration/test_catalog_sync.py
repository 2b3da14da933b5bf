"""Catalog sync end to end: 10,000 product events for 3,000 SKUs, through a real broker, to the
emulator's catalog. At most 12 sync calls of at most 1,000 actions each, one outcome per record,
and the catalog holds each SKU's last state."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from tests.integration.conftest import drain, worker_settings

pytestmark = pytest.mark.integration

EVENTS = 10_000
SKUS = 3_000
CATALOG = 1  # the emulator's default campaign file declares it


def product_events(seed: int) -> tuple[list[tuple[bytes | None, bytes | None]], dict[str, Any]]:
    """The records, and what the catalog must hold after them (sku → price, attributes,
    product), computed here on its own."""
    rng = random.Random(seed)
    expected: dict[str, dict[str, Any]] = {}
    records: list[tuple[bytes | None, bytes | None]] = []
    for index in range(EVENTS):
        sku = f"sku-{rng.randrange(SKUS):05d}"
        roll = rng.random()
        event: dict[str, Any] = {
            "eventId": f"p-{index}",
            "occurredAt": "2026-11-22T10:00:00Z",
        }
        if roll >= 0.6 and sku not in expected:
            roll = 0.0  # a shop updates and deletes what it sells: a new SKU is upserted
        if roll < 0.6:
            price = float(rng.randrange(1, 500))
            colour = rng.choice(["red", "blue", "green"])
            event |= {
                "type": "product.upserted",
                "payload": {
                    "sku": sku,
                    "price": price,
                    "attributes": {"color": colour},
                    "product": {"name": f"Product {sku[-2:]}"},
                },
            }
            expected[sku] = {
                "price": price,
                "attributes": {"color": colour},
                "product": event["payload"]["product"]["name"],
            }
        elif roll < 0.85:
            size = rng.randrange(36, 46)
            event |= {
                "type": "product.updated",
                "payload": {"sku": sku, "attributes": {"shoeSize": size}},
            }
            item = expected.setdefault(sku, {"price": None, "attributes": {}, "product": None})
            item["attributes"] = {**item["attributes"], "shoeSize": size}
        else:
            event |= {"type": "product.deleted", "payload": {"sku": sku}}
            expected.pop(sku, None)
        records.append((sku.encode(), orjson.dumps(event)))
    return records, expected


async def test_ten_thousand_product_events_sync_the_catalog_in_a_dozen_calls(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(
        broker, emulator, unique, input_topics=(f"shop.products-{unique}",), catalog_id=CATALOG
    )
    records, expected = product_events(seed=11)
    worker = await drain(broker, settings, records)
    assert worker.stats.outcomes == EVENTS
    assert worker.stats.dead_lettered == 0

    syncs = [e for e in emulator.state.request_log.entries() if e["operation"] == "syncCatalog"]
    sizes = [(e["body"]["actions"][0]["type"], len(e["body"]["actions"])) for e in syncs]
    assert 1 <= len(syncs) <= 12, sizes
    for entry in syncs:
        actions = entry["body"]["actions"]
        assert len(actions) <= 1000
        assert len({action["type"] for action in actions}) == 1
        assert len({action["payload"]["sku"] for action in actions}) == len(actions)
    items = emulator.state.catalogs.catalogs[CATALOG].items
    held = {
        sku: {"price": item.price, "attributes": item.attributes, "product": item.product}
        for sku, item in items.items()
        if sku.startswith("sku-")
    }
    assert held == expected

"""Bulk profile sync end to end: profile updates without rules through a real broker, gathered
into update multiple customer profiles calls. One outcome per record, each profile as its last
update left it, and a customer's later cart update never overtakes their profile update."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from tests.conftest import read_all
from tests.integration.conftest import drain, worker_settings

pytestmark = pytest.mark.integration

EVENTS = 10_000
PROFILES = 3_000


def profile_updates(seed: int) -> tuple[list[tuple[bytes | None, bytes | None]], dict[str, Any]]:
    """The records, and each profile's attributes after them (computed here on its own)."""
    rng = random.Random(seed)
    expected: dict[str, dict[str, Any]] = {}
    records: list[tuple[bytes | None, bytes | None]] = []
    for index in range(EVENTS):
        profile = f"bulk-{rng.randrange(PROFILES):05d}"
        attributes: dict[str, Any] = {}
        if rng.random() < 0.7:
            attributes["Name"] = f"name-{index}"
        if rng.random() < 0.5:
            attributes["tier"] = rng.choice(["silver", "gold"])
        if rng.random() < 0.3 or not attributes:
            attributes["newsletter"] = rng.random() < 0.5
        event = {
            "eventId": f"u-{index}",
            "type": "customer.updated",
            "occurredAt": "2026-11-22T10:00:00Z",
            "profileId": profile,
            "payload": {"attributes": attributes, "runRuleEngine": False},
        }
        expected.setdefault(profile, {}).update(attributes)
        records.append((profile.encode(), orjson.dumps(event)))
    return records, expected


async def test_ten_thousand_profile_updates_go_in_a_few_bulk_calls(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    records, expected = profile_updates(seed=17)
    worker = await drain(broker, settings, records)
    assert worker.stats.outcomes == EVENTS
    assert worker.stats.dead_lettered == 0

    log = emulator.state.request_log.entries()
    bulk = [e for e in log if e["operation"] == "updateCustomerProfilesV2"]
    sizes = [len(e["body"]["customerProfiles"]) for e in bulk]
    assert 1 <= len(bulk) <= 11, sizes
    assert [e for e in log if e["operation"] == "updateCustomerProfileV2"] == []
    for entry in bulk:
        profiles = [p["integrationId"] for p in entry["body"]["customerProfiles"]]
        assert len(profiles) <= 1000
        assert len(set(profiles)) == len(profiles)
        assert entry["query"] == {"silent": "yes"}
    held = {
        profile_id: profile.attributes
        for profile_id, profile in emulator.state.profiles.items()
        if profile_id.startswith("bulk-")
    }
    assert held == expected

    envelopes = [
        orjson.loads(v) for v in read_all(broker.bootstrap_servers, settings.effects_topic)
    ]
    assert sorted(e["source"]["eventId"] for e in envelopes) == sorted(
        f"u-{index}" for index in range(EVENTS)
    )
    assert {(e["operation"], e["status"]) for e in envelopes} == {("updateCustomerProfilesV2", 204)}


async def test_a_cart_update_waits_for_its_customers_bulk_profile_update(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    # Each customer: a profile update (bulk), a cart update (own call) and another profile
    # update (bulk again). The cart update must reach Talon.One after the first bulk call
    # that carries the customer, and before the one that carries the second update.
    settings = worker_settings(broker, emulator, unique, bulk_profiles_linger_ms=200)
    customers = [f"mix-{n:03d}" for n in range(60)]
    records: list[tuple[bytes | None, bytes | None]] = []
    for step, (kind, payload) in enumerate(
        [
            ("customer.updated", {"attributes": {"tier": "silver"}, "runRuleEngine": False}),
            ("cart.updated", {"cartItems": [{"sku": "A", "quantity": 1, "price": 5}]}),
            ("customer.updated", {"attributes": {"tier": "gold"}, "runRuleEngine": False}),
        ]
    ):
        for customer in customers:
            event = {
                "eventId": f"{customer}-{step}",
                "type": kind,
                "occurredAt": "2026-11-22T10:00:00Z",
                "profileId": customer,
                "payload": payload,
            }
            if kind == "cart.updated":
                event["sessionId"] = f"{customer}-s"
            records.append((customer.encode(), orjson.dumps(event)))
    worker = await drain(broker, settings, records, partitions=2)
    assert worker.stats.dead_lettered == 0

    # Per customer, the position in the request log of each of their calls.
    seen: dict[str, list[str]] = {customer: [] for customer in customers}
    for entry in emulator.state.request_log.entries():
        if entry["operation"] == "updateCustomerProfilesV2":
            for profile in entry["body"]["customerProfiles"]:
                seen[profile["integrationId"]].append(profile["attributes"]["tier"])
        elif entry["operation"] == "updateCustomerSessionV2":
            seen[entry["body"]["customerSession"]["profileId"]].append("cart")
    assert seen == {customer: ["silver", "cart", "gold"] for customer in customers}
    assert {p.attributes["tier"] for k, p in emulator.state.profiles.items() if k in seen} == {
        "gold"
    }

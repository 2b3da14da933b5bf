"""Effect routing end to end: the pricing and notification topics get their share of each
envelope, the effects topic gets it whole."""

from __future__ import annotations

from typing import Any

import orjson

from talon_one_emulator import EmulatorServer
from talon_stream.core._routing import DEFAULT_EFFECT_ROUTES
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all
from tests.integration.conftest import create_topics, running, wait_for, worker_settings
from tests.integration.test_end_to_end import TUTORIAL_CART as CART
from tests.integration.test_end_to_end import event


async def test_routed_topics_get_the_effects_of_their_types(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    pricing, notifications = f"pricing-{unique}", f"notifications-{unique}"
    routes = {
        pricing: DEFAULT_EFFECT_ROUTES["talon.effects.pricing"],
        notifications: DEFAULT_EFFECT_ROUTES["talon.effects.notifications"],
    }
    settings = worker_settings(broker, emulator, unique, effect_routes=routes)
    topic = create_topics(broker, settings, partitions=1)
    broker.create_topics({pricing: 1, notifications: 1})
    who = {"profileId": "grace", "sessionId": "grace-s1"}
    produce(
        broker.bootstrap_servers,
        topic,
        [
            (
                b"grace",
                event(
                    1, "cart.updated", **who, payload={"cartItems": CART, "couponCodes": ["xmas20"]}
                ),
            ),
            (b"grace", event(2, "order.placed", **who, payload={"cartItems": CART})),
            (b"grace", event(3, "order.cancelled", **who)),
        ],
    )
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.effects_published == 3, what="three envelopes")

    whole = [orjson.loads(v) for v in read_all(broker.bootstrap_servers, settings.effects_topic)]
    priced = [orjson.loads(v) for v in read_all(broker.bootstrap_servers, pricing)]
    told = [orjson.loads(v) for v in read_all(broker.bootstrap_servers, notifications)]

    def kinds(envelope: dict[str, Any]) -> list[str]:
        return [effect["effectType"] for effect in envelope["effects"]]

    assert len(whole) == 3
    assert "setDiscount" in kinds(priced[0])
    assert "acceptCoupon" in kinds(priced[0])
    assert priced[0]["envelopeId"] == whole[0]["envelopeId"]  # the same envelope, narrowed
    assert {k for e in priced for k in kinds(e)} <= {
        "setDiscount",
        "acceptCoupon",
        "rollbackDiscount",
        "rollbackCoupon",
        "rollbackAddedLoyaltyPoints",
    }
    assert any(k.startswith("rollback") for e in priced for k in kinds(e))  # the cancel
    pricing_types = (
        "setDiscount",
        "addFreeItem",
        "acceptCoupon",
        "rejectCoupon",
        "acceptReferral",
        "rejectReferral",
    )
    for envelope in told:
        assert kinds(envelope)  # never an empty routed envelope
        assert not any(k.startswith(pricing_types) for k in kinds(envelope))
    # Every effect of the whole envelopes went to each topic its type is routed to.
    for envelope in whole:
        for effect in envelope["effects"]:
            kind = effect["effectType"]
            if kind.startswith(("setDiscount", "acceptCoupon", "rollback")):
                assert any(effect in e["effects"] for e in priced), kind
            if kind in ("addLoyaltyPoints", "couponCreated") or kind.startswith("rollback"):
                assert any(effect in e["effects"] for e in told), kind

"""The event envelope: what decodes, and what a bad record is told."""

from __future__ import annotations

import orjson
import pytest

from talon_stream._exceptions import DecodeError
from talon_stream.core._events import (
    CartUpdated,
    CustomerEvent,
    CustomerUpdated,
    OrderItemsReturned,
    OrderPlaced,
    decode_event,
)

BASE = {"eventId": "e-1", "occurredAt": "2026-11-22T10:00:00Z"}


def encode(**fields: object) -> bytes:
    return orjson.dumps({**BASE, **fields})


def test_cart_updated_decodes_every_documented_field() -> None:
    event = decode_event(
        encode(
            type="cart.updated",
            profileId="c-1",
            sessionId="s-1",
            payload={
                "cartItems": [
                    {
                        "sku": "SKU1",
                        "name": "Red Spring Blouse",
                        "quantity": 2,
                        "price": 49,
                        "category": "shirts",
                        "attributes": {"color": "red"},
                    }
                ],
                "couponCodes": ["xmas20"],
                "referralCode": "REF-1",
                "loyaltyCards": ["card-1"],
                "additionalCosts": {"shipping": {"price": 5}},
                "identifiers": ["device-1"],
                "storeIntegrationId": "store-1",
                "attributes": {"channel": "web"},
            },
        )
    )
    assert isinstance(event, CartUpdated)
    assert event.payload.cart_items is not None
    assert event.payload.cart_items[0].quantity == 2
    assert event.payload.coupon_codes == ["xmas20"]
    assert event.payload.additional_costs is not None
    assert event.payload.additional_costs["shipping"].price == 5


def test_an_order_without_payload_is_a_state_change_only() -> None:
    event = decode_event(encode(type="order.placed", sessionId="s-1"))
    assert isinstance(event, OrderPlaced)
    assert event.payload.cart_items is None


def test_customer_events_decode() -> None:
    updated = decode_event(
        encode(type="customer.updated", profileId="c-1", payload={"attributes": {"tier": "gold"}})
    )
    assert isinstance(updated, CustomerUpdated)
    tracked = decode_event(
        encode(
            type="customer.event",
            profileId="c-1",
            payload={"eventType": "review_submitted", "attributes": {"rating": 5}},
        )
    )
    assert isinstance(tracked, CustomerEvent)
    assert tracked.payload.event_type == "review_submitted"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "has no value"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (
            orjson.dumps({**BASE, "type": "wishlist.updated"}),
            "unknown event type 'wishlist.updated'",
        ),
        (orjson.dumps(BASE), "no 'type' field"),
        (encode(type="cart.updated", profileId="c-1"), "needs a sessionId"),
        (encode(type="customer.updated", sessionId="s-1"), "needs a profileId"),
        (encode(type="customer.event", profileId="c-1", payload={}), "eventType: Field required"),
        (
            encode(
                type="cart.updated",
                sessionId="s",
                payload={"cartItems": [{"sku": "a", "quantity": 0}]},
            ),
            "quantity: Input should be greater than or equal to 1",
        ),
        (
            encode(type="cart.updated", sessionId="s", payload={"couponCode": ["x"]}),
            "couponCode: Extra inputs are not permitted",
        ),
        (
            orjson.dumps(
                {
                    "type": "order.placed",
                    "eventId": "e",
                    "occurredAt": "2026-01-01T00:00:00",
                    "sessionId": "s",
                }
            ),
            "timezone",
        ),
        (
            encode(
                type="order.items_returned", sessionId="s", payload={"items": [{"quantity": 1}]}
            ),
            "needs a position or a sku",
        ),
        (
            encode(type="cart.updated", sessionId="s", payload={"identifiers": list("abcdef")}),
            "identifiers",
        ),
        (
            encode(
                type="cart.updated",
                sessionId="s",
                payload={"cartItems": [{"sku": "a", "quantity": 10_001}]},
            ),
            "limit of 10000",
        ),
    ],
)
def test_bad_records_say_what_is_wrong(value: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(value)
    assert reason in str(caught.value)


def test_returned_items_by_position_or_sku() -> None:
    event = decode_event(
        encode(
            type="order.items_returned",
            sessionId="s",
            payload={"items": [{"position": 0, "quantity": 1}, {"sku": "SKU2", "quantity": 2}]},
        )
    )
    assert isinstance(event, OrderItemsReturned)
    assert [item.position for item in event.payload.items] == [0, None]

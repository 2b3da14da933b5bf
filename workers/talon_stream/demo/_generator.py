"""A realistic shop stream for the demo: shoppers browse, fill carts, try good and bad coupons,
check out, cancel, return items, reopen orders, update their profiles and write reviews.

Pure and seeded: :class:`ShopSimulator` yields ``(topic, key, value)`` records and the pacing
(when each shopper acts next) is left to the caller. A few records are deliberately broken so the
DLQ has something to show.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["CART_TOPIC", "CATALOG", "TOPIC_FOR_TYPE", "GeneratedRecord", "ShopSimulator"]

#: The cart service's topic.
CART_TOPIC = "shop.carts"

#: Which demo topic carries which event type: each service its own, as shops publish them (the
#: worker reads the four co-partitioned topics in event-time order).
TOPIC_FOR_TYPE = {
    "cart.updated": CART_TOPIC,
    "order.placed": "shop.orders",
    "order.cancelled": "shop.orders",
    "order.items_returned": "shop.orders",
    "order.reopened": "shop.orders",
    "customer.updated": "shop.customers",
    "customer.event": "shop.events",
}

#: (sku, name, price, category, color)
CATALOG: tuple[tuple[str, str, float, str, str], ...] = (
    ("SKU-BLOUSE-RS", "Red Spring Blouse", 49.0, "shirts", "red"),
    ("SKU-TROUSERS-DN", "Denim Trousers", 74.0, "trousers", "blue"),
    ("SKU-TEE-WH", "White Tee", 19.0, "shirts", "white"),
    ("SKU-SNEAKER-01", "Canvas Sneakers", 59.0, "shoes", "white"),
    ("SKU-BOOT-CH", "Chelsea Boots", 129.0, "shoes", "brown"),
    ("SKU-JACKET-RN", "Rain Jacket", 89.0, "outerwear", "yellow"),
    ("SKU-SCARF-WL", "Wool Scarf", 25.0, "accessories", "grey"),
    ("SKU-CAP-BB", "Baseball Cap", 15.0, "accessories", "black"),
    ("SKU-DRESS-SM", "Summer Dress", 65.0, "dresses", "green"),
    ("SKU-SOCKS-3P", "Socks 3-pack", 9.5, "accessories", "black"),
)
GOOD_COUPON = "xmas20"
BAD_COUPONS = ("SPRING99", "FREESHIP-OLD", "WELCOME5X")
CHANNELS = ("web", "app", "store")


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    topic: str
    key: bytes
    value: bytes
    event_type: str  # "poison" for deliberately broken records


@dataclass
class _Shopper:
    number: int
    profile_id: str | None
    session_id: str
    script: list[GeneratedRecord] = field(default_factory=list)


class ShopSimulator:
    """Generates whole shopper journeys, one record at a time.

    ``customers`` bounds the number of distinct profiles (returning customers reuse theirs);
    ``poison_rate`` is the share of journeys that also emit one broken record, and
    ``anonymous_rate`` the share of shoppers without a profile (keyed by their session).
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        customers: int = 2000,
        poison_rate: float = 0.01,
        session_prefix: str = "session",
        anonymous_rate: float = 0.15,
    ) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self._customers = customers
        self._poison_rate = poison_rate
        self._shoppers = 0
        self._events = 0
        self._session_prefix = session_prefix
        self._anonymous_rate = anonymous_rate

    def journeys(self) -> Iterator[list[GeneratedRecord]]:
        """An endless supply of journeys; each is the ordered records of one shopper."""
        while True:
            yield self.journey()

    def journey(self) -> list[GeneratedRecord]:
        rng = self._rng
        self._shoppers += 1
        number = self._shoppers
        anonymous = rng.random() < self._anonymous_rate
        profile_id = None if anonymous else f"customer-{rng.randrange(self._customers):05d}"
        shopper = _Shopper(number, profile_id, f"{self._session_prefix}-{number:07d}")

        if profile_id and rng.random() < 0.2:
            self._customer_updated(shopper)
        cart = self._browse(shopper)
        outcome = rng.random()
        if outcome < 0.72:
            self._emit(shopper, "order.placed", {"cartItems": cart})
            after = rng.random()
            if after < 0.06:
                position = rng.randrange(len(cart))
                self._emit(
                    shopper,
                    "order.items_returned",
                    {"items": [{"position": position, "quantity": 1}]},
                )
            elif after < 0.10:
                self._emit(shopper, "order.cancelled", {"reason": "payment failed"})
            elif after < 0.12:
                self._emit(shopper, "order.reopened", {})
                cart = [*cart, self._item()]
                self._emit(shopper, "cart.updated", {"cartItems": cart})
                self._emit(shopper, "order.placed", {"cartItems": cart})
            if profile_id and rng.random() < 0.15:
                rating = rng.randint(1, 5)
                self._emit(
                    shopper,
                    "customer.event",
                    {"eventType": "review_submitted", "attributes": {"rating": rating}},
                )
        elif outcome < 0.82:
            self._emit(shopper, "order.cancelled", {"reason": "cart abandoned"})
        # else: the cart is simply left open.
        if rng.random() < self._poison_rate:
            self._poison(shopper)
        return shopper.script

    def _browse(self, shopper: _Shopper) -> list[dict[str, Any]]:
        rng = self._rng
        cart: list[dict[str, Any]] = []
        channel = rng.choice(CHANNELS)
        for step in range(rng.randint(1, 3)):
            if cart and rng.random() < 0.3:
                cart[0] = {**cart[0], "quantity": cart[0]["quantity"] + 1}
            else:
                cart.append(self._item())
            payload: dict[str, Any] = {"cartItems": list(cart)}
            if step == 0:
                payload["attributes"] = {"channel": channel}
            coupon = rng.random()
            if coupon < 0.10:
                payload["couponCodes"] = [GOOD_COUPON]
            elif coupon < 0.14:
                payload["couponCodes"] = [rng.choice(BAD_COUPONS)]
            self._emit(shopper, "cart.updated", payload)
        return cart

    def _item(self) -> dict[str, Any]:
        sku, name, price, category, color = self._rng.choice(CATALOG)
        return {
            "sku": sku,
            "name": name,
            "price": price,
            "quantity": 1,
            "category": category,
            "attributes": {"color": color},
        }

    def _customer_updated(self, shopper: _Shopper) -> None:
        rng = self._rng
        attributes = {
            "Name": f"Customer {shopper.profile_id}",
            "tier": rng.choice(("bronze", "silver", "gold")),
            "newsletter": rng.random() < 0.5,
        }
        self._emit(shopper, "customer.updated", {"attributes": attributes})

    def _emit(self, shopper: _Shopper, event_type: str, payload: dict[str, Any]) -> None:
        self._events += 1
        envelope: dict[str, Any] = {
            "eventId": f"{self._session_prefix}-evt-{self._events:09d}",
            "type": event_type,
            "occurredAt": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
            "sessionId": shopper.session_id,
            "payload": payload,
        }
        if shopper.profile_id is not None:
            envelope["profileId"] = shopper.profile_id
        shopper.script.append(
            GeneratedRecord(
                topic=TOPIC_FOR_TYPE[event_type],
                key=_key(shopper),
                value=orjson.dumps(envelope),
                event_type=event_type,
            )
        )

    def _poison(self, shopper: _Shopper) -> None:
        broken = self._rng.choice(
            (
                b'{"type": "cart.updated", "eventId": ',  # truncated JSON
                orjson.dumps({"type": "wishlist.updated", "eventId": "x", "occurredAt": "now"}),
                orjson.dumps(
                    {
                        "type": "cart.updated",
                        "eventId": f"evt-bad-{shopper.number}",
                        "occurredAt": datetime.now(tz=UTC).isoformat(),
                        "sessionId": shopper.session_id,
                        "payload": {"cartItems": [{"sku": "SKU-TEE-WH", "quantity": "two"}]},
                    }
                ),
            )
        )
        shopper.script.append(
            GeneratedRecord(
                topic="shop.carts", key=_key(shopper), value=broken, event_type="poison"
            )
        )


def _key(shopper: _Shopper) -> bytes:
    # Records are keyed by the customer: the profile, or the session for an anonymous cart.
    return (shopper.profile_id or shopper.session_id).encode()

"""The records the store keeps: sessions with their cart items and returns, and profiles.

Plain mutable dataclasses, held by :class:`~talon_one_emulator.store.state.EmulatorState` and
changed by the operations in :mod:`talon_one_emulator.api`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from talon_one_emulator.rules.facts import CartLine

__all__ = ["CartItemRecord", "Clock", "ProfileRecord", "ReturnRecord", "SessionRecord"]

Clock = Callable[[], datetime]


@dataclass(slots=True)
class CartItemRecord:
    """A stored cart item: what the client sent, plus how much of it was returned."""

    data: dict[str, Any]
    sku: str
    price: float
    quantity: int
    category: str | None
    returned: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.returned


@dataclass(slots=True)
class ProfileRecord:
    id: int
    integration_id: str
    created: str
    last_activity: str
    attributes: dict[str, Any] = field(default_factory=dict)
    closed_sessions: int = 0
    total_sales: float = 0.0
    sessions_created: int = 0
    points: dict[int, float] = field(default_factory=dict)
    """Net loyalty points per profile-based program ID (added minus deducted and rolled back,
    whatever their status); the ledgers are in
    :class:`~talon_one_emulator.store.loyalty.LoyaltyStore`."""


@dataclass(slots=True)
class ReturnRecord:
    id: int
    created: str
    event_id: int
    items: list[dict[str, Any]]
    """``{position, quantity, sku}`` per returned line."""


@dataclass(slots=True)
class SessionRecord:
    id: int
    integration_id: str
    created: str
    updated: str
    profile_id: str | None
    first_session: bool
    state: str = "open"
    store_integration_id: str | None = None
    coupon_codes: list[str] = field(default_factory=list)
    referral_code: str | None = None
    loyalty_cards: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    items: list[CartItemRecord] = field(default_factory=list)
    """Set with :meth:`set_cart`, which keeps ``lines`` and ``cart_item_total`` in step."""
    lines: tuple[CartLine, ...] = ()
    """The cart as the rule engine sees it, built once per cart rather than per evaluation."""
    cart_item_total: float = 0.0
    additional_costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    update_count: int = 1
    effects: list[dict[str, Any]] = field(default_factory=list)
    """The net effects a GET returns: those of the last evaluation, [] once rolled back."""
    closing_effects: list[dict[str, Any]] = field(default_factory=list)
    """The effects at close: what a cancel, return or reopen rolls back."""
    rolled_back: list[float] = field(default_factory=list)
    """Per closing effect, the amount rolled back so far by returns."""
    returns: list[ReturnRecord] = field(default_factory=list)
    closed_for: int = 0
    """The internal ID of its profile when it closed: a profile forgotten since, and maybe
    created anew under the same integration ID (with another internal ID), is no longer the
    customer whose counters a cancel, return or reopen reverts."""

    def set_cart(self, items: list[CartItemRecord]) -> None:
        """Replace the cart items (a cart is only ever replaced whole)."""
        self.items = items
        self.lines = tuple(
            [
                CartLine(position, item.sku, item.price, item.quantity, item.category)
                for position, item in enumerate(items)
            ]
        )
        self.cart_item_total = sum([item.price * item.quantity for item in items])

    @property
    def additional_cost_total(self) -> float:
        return sum(float(cost["price"]) for cost in self.additional_costs.values())

    @property
    def total(self) -> float:
        return self.cart_item_total + self.additional_cost_total

    @property
    def returned_value(self) -> float:
        return sum(item.price * item.returned for item in self.items)

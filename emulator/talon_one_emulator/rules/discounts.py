"""What is left to discount while one session is evaluated: cascading and flattened discounts.

Talon.One applies a session's discounts one after the other, in campaign and rule order:

* the **session total** left shrinks with every discount, and no discount may exceed it, so the
  total never goes below zero;
* an **item's price** left (Talon.One's *discounted price of item*) shrinks with per-item
  discounts, the **additional costs** left with per-additional-cost discounts;
* with *cascading discounts* (the default) a percentage applies to what is left, otherwise to
  the original price; the caps above hold either way.

With *cart item flattening* a cart item of quantity N is N units of one price each, addressed by
``position`` and ``subPosition``; without it the cart item is one unit worth price times quantity.
"""

from __future__ import annotations

from typing import Literal

from talon_one_emulator.money import round_money
from talon_one_emulator.rules.facts import CartLine, SessionFacts

__all__ = ["CartBudget", "Scope"]

Scope = Literal["sessionTotal", "cartItems", "additionalCosts"]


class CartBudget:
    """The amounts left to discount in one evaluation of a session.

    Args:
        session: the evaluated session.
        cascade: percentages apply to what is left (else to the original prices).
        flatten: per-item amounts are per unit (else per cart item).
    """

    __slots__ = (
        "_costs",
        "_costs_scope_taken",
        "_items_scope_taken",
        "_session",
        "_units",
        "cascade",
        "flatten",
        "session_left",
    )

    def __init__(self, session: SessionFacts, *, cascade: bool, flatten: bool) -> None:
        self._session = session
        self.cascade = cascade
        self.flatten = flatten
        self.session_left = session.total
        # Built on first use: most evaluations only give session discounts.
        self._units: dict[int, list[float]] | None = None
        self._costs: dict[str, float] | None = None
        self._items_scope_taken = 0.0
        self._costs_scope_taken = 0.0

    # --- the session -----------------------------------------------------------------------------

    def session_base(self, scope: Scope) -> float:
        """What a percentage of the session (in ``scope``) is taken of."""
        session = self._session
        if scope == "cartItems":
            if not self.cascade:
                return session.cart_item_total
            return max(0.0, self._items_left() - self._items_scope_taken)
        if scope == "additionalCosts":
            if not self.cascade:
                return session.total - session.cart_item_total
            return max(0.0, self._costs_left() - self._costs_scope_taken)
        return self.session_left if self.cascade else session.total

    def take_session(self, wanted: float, scope: Scope) -> float:
        """Discount up to ``wanted`` of the session (in ``scope``); returns the amount given."""
        cap = self.session_left
        if scope == "cartItems":
            cap = min(cap, self._items_left() - self._items_scope_taken)
        elif scope == "additionalCosts":
            cap = min(cap, self._costs_left() - self._costs_scope_taken)
        value = round_money(min(wanted, cap))
        if value <= 0:
            return 0.0
        self.session_left -= value
        if scope == "cartItems":
            self._items_scope_taken += value
        elif scope == "additionalCosts":
            self._costs_scope_taken += value
        return value

    # --- cart items ------------------------------------------------------------------------------

    def units(self, line: CartLine) -> int:
        """How many units the line has: its quantity when flattened, else 1."""
        return line.quantity if self.flatten else 1

    def unit_base(self, line: CartLine, unit: int) -> float:
        """What a percentage of one unit of ``line`` is taken of."""
        if self.cascade:
            return max(0.0, self._line(line)[unit])
        return line.price if self.flatten else line.total

    def take_unit(self, line: CartLine, unit: int, wanted: float) -> float:
        """Discount up to ``wanted`` of one unit of ``line``; returns the amount given."""
        left = self._line(line)
        value = round_money(min(wanted, left[unit], self.session_left))
        if value <= 0:
            return 0.0
        left[unit] -= value
        self.session_left -= value
        return value

    # --- additional costs ------------------------------------------------------------------------

    def cost_base(self, name: str) -> float | None:
        """What a percentage of the additional cost is taken of (``None``: the session has none)."""
        costs = self._cost_map()
        if name not in costs:
            return None
        if self.cascade:
            return max(0.0, costs[name])
        return dict(self._session.additional_costs)[name]

    def take_cost(self, name: str, wanted: float) -> float:
        """Discount up to ``wanted`` of an additional cost; returns the amount given."""
        costs = self._cost_map()
        value = round_money(min(wanted, costs.get(name, 0.0), self.session_left))
        if value <= 0:
            return 0.0
        costs[name] -= value
        self.session_left -= value
        return value

    # --- helpers ---------------------------------------------------------------------------------

    def _line(self, line: CartLine) -> list[float]:
        if self._units is None:
            self._units = {}
        left = self._units.get(line.position)
        if left is None:
            left = [line.price] * line.quantity if self.flatten else [line.total]
            self._units[line.position] = left
        return left

    def _items_left(self) -> float:
        units = self._units or {}
        return sum(
            sum(units[line.position]) if line.position in units else line.total
            for line in self._session.lines
        )

    def _cost_map(self) -> dict[str, float]:
        if self._costs is None:
            self._costs = dict(self._session.additional_costs)
        return self._costs

    def _costs_left(self) -> float:
        session = self._session
        named = sum(price for _, price in session.additional_costs)
        # Costs the facts do not itemise still count towards the session's additional costs.
        unnamed = max(0.0, session.total - session.cart_item_total - named)
        return sum(self._cost_map().values()) + unnamed

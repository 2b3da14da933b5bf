"""The mutable context of one evaluation, handed to the compiled effects of
:mod:`talon_one_emulator.rules.effects` and :mod:`talon_one_emulator.rules.loyalty`."""

from __future__ import annotations

from typing import Any

from talon_one_emulator.campaigns.declarations import ApplicationSettings
from talon_one_emulator.money import round_money
from talon_one_emulator.rules.discounts import CartBudget
from talon_one_emulator.rules.facts import Facts, Ledger, Outcome, ReferralInfo

__all__ = ["Run"]

Effect = dict[str, Any]


class Run:
    """The mutable context of one evaluation, handed to the compiled effects.

    Attributes:
        coupon_id: the coupon of the rule being applied (``triggeredByCoupon``).
        referral: the accepted referral of the campaign being evaluated.
        discount_left: what is left of the campaign's discount budget (``None``: unlimited).
    """

    __slots__ = (
        "_budget",
        "_giveaways",
        "_new_codes",
        "coupon_id",
        "discount_left",
        "facts",
        "ledger",
        "outcome",
        "referral",
        "settings",
    )

    def __init__(
        self, facts: Facts, outcome: Outcome, ledger: Ledger, settings: ApplicationSettings
    ) -> None:
        self.facts = facts
        self.outcome = outcome
        self.ledger = ledger
        self.settings = settings
        self.coupon_id: int | None = None
        self.referral: ReferralInfo | None = None
        self.discount_left: float | None = None
        self._budget: CartBudget | None = None
        # Created on first use: most evaluations hand out no giveaway and create no code.
        self._giveaways: dict[int, int] | None = None
        self._new_codes: dict[tuple[str, int], int] | None = None

    @property
    def budget(self) -> CartBudget | None:
        """What is left to discount of the session (``None`` outside session evaluations)."""
        if self._budget is None and self.facts.session is not None:
            settings = self.settings
            self._budget = CartBudget(
                self.facts.session,
                cascade=settings.cascading_discounts,
                flatten=settings.cart_item_flattening,
            )
        return self._budget

    def emit(self, base: Effect, effect_type: str, props: dict[str, Any]) -> None:
        effect = {**base, "effectType": effect_type, "props": props}
        if self.coupon_id is not None:
            effect["triggeredByCoupon"] = self.coupon_id
        self.outcome.effects.append(effect)

    def allow(self, wanted: float) -> float:
        """``wanted`` capped by the campaign's discount budget."""
        left = self.discount_left
        if left is None:
            return wanted
        return max(0.0, min(wanted, round_money(left)))

    def spend(self, value: float) -> None:
        if self.discount_left is not None:
            self.discount_left -= value

    def next_giveaway(self, pool_id: int) -> tuple[int, str] | None:
        """The next unused giveaway of a pool, not handed out earlier in this evaluation."""
        if self._giveaways is None:
            self._giveaways = {}
        taken = self._giveaways.get(pool_id, 0)
        found = self.ledger.giveaway(pool_id, taken)
        if found is not None:
            self._giveaways[pool_id] = taken + 1
        return found

    def count_new(self, kind: str, campaign_id: int) -> int:
        """How many coupons or referrals this evaluation created so far; counts one more."""
        if self._new_codes is None:
            self._new_codes = {}
        key = (kind, campaign_id)
        count = self._new_codes.get(key, 0)
        self._new_codes[key] = count + 1
        return count

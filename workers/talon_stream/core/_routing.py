"""Effect routing: which downstream topics get which effects, beside the full envelope.

Every envelope goes to the effects topic whole. With routes configured, the same envelope also
goes to each route's topic with ``effects`` narrowed to the types the route names — only when
at least one effect matches — so a pricing service reads discounts without filtering, and a
notification service reads coupons created and points earned. Types are matched as shell
patterns (``setDiscount*``, ``rollback*``); an effect may go to several topics.

The defaults (``TALON_STREAM_EFFECT_ROUTES``; ``{}`` turns routing off):

* ``talon.effects.pricing``: discounts (``setDiscount*``), free items, coupon and referral
  acceptance and rejection — what changes a price;
* ``talon.effects.notifications``: notifications, created coupons and referrals, loyalty points,
  giveaways, custom effects, attribute updates — what a customer may be told;
* rollbacks (``rollback*``) go to both, so each side can undo what it applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["DEFAULT_EFFECT_ROUTES", "EffectRouter"]

DEFAULT_EFFECT_ROUTES: dict[str, list[str]] = {
    "talon.effects.pricing": [
        "setDiscount*",
        "addFreeItem",
        "acceptCoupon",
        "rejectCoupon",
        "acceptReferral",
        "rejectReferral",
        "rollback*",
    ],
    "talon.effects.notifications": [
        "showNotification",
        "couponCreated",
        "referralCreated",
        "addLoyaltyPoints",
        "deductLoyaltyPoints",
        "willAwardGiveaway",
        "awardGiveaway",
        "customEffect",
        "updateAttribute",
        "rollback*",
    ],
}


class EffectRouter:
    """Splits an envelope's effects over the configured topics."""

    def __init__(self, routes: Mapping[str, Sequence[str]]) -> None:
        self._routes = {topic: tuple(patterns) for topic, patterns in routes.items() if patterns}
        self._topics_of: dict[str, tuple[str, ...]] = {}  # effect type → its topics, learnt

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic a route may publish to."""
        return tuple(self._routes)

    def topics_of(self, effect_type: str) -> tuple[str, ...]:
        """The topics an effect of this type goes to (besides the effects topic)."""
        found = self._topics_of.get(effect_type)
        if found is None:
            found = tuple(
                topic
                for topic, patterns in self._routes.items()
                if any(fnmatchcase(effect_type, pattern) for pattern in patterns)
            )
            if len(self._topics_of) < 1000:  # effect types are few; never grow without bound
                self._topics_of[effect_type] = found
        return found

    def route(self, effects: Sequence[Any]) -> dict[str, list[Any]]:
        """The effects each topic gets, in their original order (topics without any left out)."""
        if not self._routes:
            return {}
        out: dict[str, list[Any]] = {}
        for effect in effects:
            kind = effect.get("effectType") if isinstance(effect, dict) else None
            if not isinstance(kind, str):
                continue
            for topic in self.topics_of(kind):
                out.setdefault(topic, []).append(effect)
        return out

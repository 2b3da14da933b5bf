"""Rollback effects for cancelled, returned and reopened sessions.

When a session closes, its effects are kept. A later cancel or reopen rolls back what is left of
them; a return rolls back the returned share:

* ``setDiscount`` → ``rollbackDiscount``, by the share of the cart value returned;
* ``setDiscountPerItem`` → ``rollbackDiscount`` with ``cartItemPosition``, by the share of that
  line's units returned; with cart item flattening (``subPosition``) per returned unit, with
  ``cartItemSubPosition`` (units are returned from ``subPosition`` 0 up);
* ``setDiscountPerAdditionalCost`` → ``rollbackDiscount`` with ``additionalCostId`` and
  ``additionalCost``, on cancel and reopen only;
* ``addLoyaltyPoints`` → ``rollbackAddedLoyaltyPoints``, by the share of the cart value returned;
  points given per cart item (``cartItemPosition``) by the share of that line's units returned,
  per returned unit for flattened items;
* ``deductLoyaltyPoints`` → ``rollbackDeductedLoyaltyPoints``, on cancel and reopen only;
* ``acceptCoupon`` → ``rollbackCoupon`` and ``acceptReferral`` → ``rollbackReferral``, on cancel
  and reopen only.

Nothing else is rolled back: created coupons and referrals, awarded giveaways, free items,
custom effects and attribute updates stay.

What was already rolled back is tracked per closing effect, so several partial returns followed by
a cancel add up exactly to the original amounts (no cent lost to rounding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from talon_one_emulator.money import json_number, round_money

__all__ = ["plan_rollback"]

Effect = dict[str, Any]

# Redeemed codes, rolled back as a whole by cancel and reopen.
_CODE_ROLLBACKS = {"acceptCoupon": "rollbackCoupon", "acceptReferral": "rollbackReferral"}


def _rollback(effect: Effect, effect_type: str, props: dict[str, Any]) -> Effect:
    return {
        "campaignId": effect["campaignId"],
        "rulesetId": effect["rulesetId"],
        "ruleIndex": effect["ruleIndex"],
        "ruleName": effect["ruleName"],
        "effectType": effect_type,
        "props": props,
    }


_POINTS_ROLLBACKS = {
    "addLoyaltyPoints": "rollbackAddedLoyaltyPoints",
    "deductLoyaltyPoints": "rollbackDeductedLoyaltyPoints",
}


def _points_rollback(effect: Effect, value: float, recipient: str) -> Effect:
    props = effect["props"]
    rollback_props: dict[str, Any] = {
        "programId": props["programId"],
        "subLedgerId": props["subLedgerId"],
        "value": json_number(value),
        "recipientIntegrationId": props.get("recipientIntegrationId", recipient),
        "transactionUUID": props["transactionUUID"],
    }
    for key in ("cartItemPosition", "cartItemSubPosition", "cardIdentifier"):
        if key in props:
            rollback_props[key] = props[key]
    return _rollback(effect, _POINTS_ROLLBACKS[effect["effectType"]], rollback_props)


def _item_share(
    props: Mapping[str, Any],
    position_key: str,
    sub_position_key: str,
    shares: Mapping[int, float],
    units: Mapping[int, int],
) -> float:
    """The returned share of an effect on one cart item: the share of its line's units, or, for
    a unit of a flattened item (units are returned from sub-position 0 up), all or nothing."""
    position = int(props[position_key])
    if sub_position_key in props:
        return 1.0 if int(props[sub_position_key]) < units.get(position, 0) else 0.0
    return shares.get(position, 0.0)


def plan_rollback(
    closing_effects: Sequence[Effect],
    rolled_back: Sequence[float],
    *,
    full: bool,
    session_share: float = 1.0,
    item_share: Mapping[int, float] | None = None,
    item_units: Mapping[int, int] | None = None,
    recipient: str = "",
) -> tuple[list[Effect], list[float]]:
    """The rollback effects to emit and the new rolled-back amounts; changes nothing.

    Args:
        closing_effects: the session's effects at close.
        rolled_back: per closing effect, the amount rolled back so far.
        full: roll back everything left, coupons included (cancel, reopen).
        session_share: for returns, the share of the cart value returned in total (0..1).
        item_share: for returns, per cart position the share of units returned in total (0..1).
        item_units: for returns, per cart position the units returned in total (for per-unit
            effects of flattened cart items).
        recipient: the session's profile integration ID (``recipientIntegrationId`` of
            ``rollbackDeductedLoyaltyPoints``).
    """
    shares = item_share or {}
    units = item_units or {}
    effects: list[Effect] = []
    amounts = list(rolled_back) or [0.0] * len(closing_effects)
    for index, effect in enumerate(closing_effects):
        effect_type = effect["effectType"]
        props = effect["props"]
        if effect_type in _CODE_ROLLBACKS:
            if full and amounts[index] == 0:
                rollback_type = _CODE_ROLLBACKS[effect_type]
                effects.append(_rollback(effect, rollback_type, {"value": props["value"]}))
                amounts[index] = 1.0
            continue
        if effect_type == "setDiscount":
            share = session_share
        elif effect_type == "setDiscountPerItem":
            share = _item_share(props, "position", "subPosition", shares, units)
        elif effect_type == "setDiscountPerAdditionalCost":
            share = 0.0
        elif effect_type == "addLoyaltyPoints":
            if "cartItemPosition" in props:
                share = _item_share(props, "cartItemPosition", "cartItemSubPosition", shares, units)
            else:
                share = session_share
        elif effect_type == "deductLoyaltyPoints":
            share = 0.0  # spent points only come back with a cancel or reopen
        else:
            continue
        value = float(props["value"])
        target = value if full or share >= 1 else round_money(value * share)
        delta = round_money(target - amounts[index])
        if delta <= 0:
            continue
        amounts[index] = target
        if effect_type in _POINTS_ROLLBACKS:
            effects.append(_points_rollback(effect, delta, recipient))
            continue
        rollback_props = {"name": props["name"], "value": json_number(delta)}
        if effect_type == "setDiscountPerItem":
            rollback_props["cartItemPosition"] = props["position"]
            if "subPosition" in props:
                rollback_props["cartItemSubPosition"] = props["subPosition"]
        elif effect_type == "setDiscountPerAdditionalCost":
            rollback_props["additionalCostId"] = props["additionalCostId"]
            rollback_props["additionalCost"] = props["additionalCost"]
        elif "scope" in props:
            rollback_props["scope"] = props["scope"]
        effects.append(_rollback(effect, "rollbackDiscount", rollback_props))
    return effects, amounts

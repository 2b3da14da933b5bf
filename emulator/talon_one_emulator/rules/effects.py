"""Rule effects of the campaign file, compiled once into functions that emit Talon.One effects.

Every emitted effect carries the campaign's ``campaignId`` and ``rulesetId`` and the rule's
``ruleIndex`` and ``ruleName`` (the ``base`` of the rule), plus ``triggeredByCoupon`` when a
coupon rule emits it. Discounts go through the session's
:class:`~talon_one_emulator.rules.discounts.CartBudget`
(cascading, flattening, never below zero) and the campaign's discount budget, which caps them
(``desiredValue`` then says what the rule wanted).

Codes of created coupons and referrals are derived from the evaluated entity, the campaign, the
rule and the effect, so evaluating the same session again names the same coupon instead of
creating another one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from talon_one_emulator.campaigns.file import CampaignSet, CampaignSpec
from talon_one_emulator.campaigns.loyalty import (
    AddLoyaltyPoints,
    DeductLoyaltyPoints,
    LoyaltyProgramSpec,
)
from talon_one_emulator.campaigns.rules import (
    AddFreeItem,
    AwardGiveaway,
    CreateCoupon,
    CreateCouponSpec,
    CreateReferral,
    CreateReferralSpec,
    CustomEffect,
    EffectSpec,
    SetDiscount,
    SetDiscountPerAdditionalCost,
    SetDiscountPerAdditionalCostSpec,
    SetDiscountPerItem,
    SetDiscountPerItemSpec,
    SetDiscountSpec,
    ShowNotification,
    UpdateAttribute,
)
from talon_one_emulator.money import json_number, round_money
from talon_one_emulator.rules.facts import (
    CouponDraft,
    GiveawayAward,
    ReferralDraft,
)
from talon_one_emulator.rules.loyalty import add_loyalty_points, deduct_loyalty_points
from talon_one_emulator.rules.run import Run

__all__ = ["DISCOUNT_EFFECTS", "Apply", "Run", "compile_effect", "generated_code"]

Effect = dict[str, Any]

DISCOUNT_EFFECTS = (SetDiscount, SetDiscountPerItem, SetDiscountPerAdditionalCost)

# Seeds the codes of created coupons and referrals.
_CODES_NAMESPACE = uuid.UUID("0f6c2d4e-3b1a-4c8e-9d7f-6a5b4c3d2e1f")
# No 0/O or 1/I: the codes are read by people.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CODE_LENGTH = 10


@lru_cache(maxsize=65_536)
def generated_code(prefix: str, seed: str) -> str:
    """A code of ``prefix`` and ten characters, always the same for the same seed."""
    number = uuid.uuid5(_CODES_NAMESPACE, seed).int
    chars = []
    for _ in range(_CODE_LENGTH):
        number, digit = divmod(number, len(_CODE_ALPHABET))
        chars.append(_CODE_ALPHABET[digit])
    return prefix + "".join(chars)


Apply = Callable[[Run], None]


def _discount_props(name: str, value: float, wanted: float, allowed: float) -> dict[str, Any]:
    props: dict[str, Any] = {"name": name, "value": json_number(value)}
    if allowed < wanted:
        props["desiredValue"] = json_number(wanted)
    return props


def _set_discount(spec: SetDiscountSpec, base: Effect) -> Apply:
    scope = spec.scope or "sessionTotal"

    def apply(run: Run) -> None:
        budget = run.budget
        if budget is None:
            return
        if spec.percentage is not None:
            wanted = round_money(budget.session_base(scope) * spec.percentage / 100)
        else:
            wanted = spec.amount or 0.0
        allowed = run.allow(wanted)
        value = budget.take_session(allowed, scope)
        if value > 0:
            props = _discount_props(spec.name, value, wanted, allowed)
            if spec.scope is not None:
                props["scope"] = spec.scope
            run.spend(value)
            run.emit(base, "setDiscount", props)

    return apply


def _set_discount_per_item(spec: SetDiscountPerItemSpec, base: Effect) -> Apply:
    skus = frozenset(spec.skus) if spec.skus is not None else None
    categories = frozenset(spec.categories) if spec.categories is not None else None

    def apply(run: Run) -> None:
        session, budget = run.facts.session, run.budget
        if session is None or budget is None:
            return
        for line in session.lines:
            if skus is not None and line.sku not in skus:
                continue
            if categories is not None and line.category not in categories:
                continue
            for unit in range(budget.units(line)):
                if spec.percentage is not None:
                    wanted = round_money(budget.unit_base(line, unit) * spec.percentage / 100)
                elif budget.flatten:
                    wanted = spec.amount or 0.0
                else:
                    wanted = round_money((spec.amount or 0.0) * line.quantity)
                allowed = run.allow(wanted)
                value = budget.take_unit(line, unit, allowed)
                if value <= 0:
                    continue
                props = _discount_props(spec.name, value, wanted, allowed)
                props["position"] = line.position
                if budget.flatten:
                    props["subPosition"] = unit
                run.spend(value)
                run.emit(base, "setDiscountPerItem", props)

    return apply


def _set_discount_per_additional_cost(
    spec: SetDiscountPerAdditionalCostSpec, base: Effect, cost_id: int
) -> Apply:
    name = spec.additional_cost

    def apply(run: Run) -> None:
        budget = run.budget
        if budget is None:
            return
        cost = budget.cost_base(name)
        if cost is None:
            return  # the session has no such cost
        if spec.percentage is not None:
            wanted = round_money(cost * spec.percentage / 100)
        else:
            wanted = spec.amount or 0.0
        allowed = run.allow(wanted)
        value = budget.take_cost(name, allowed)
        if value > 0:
            props: dict[str, Any] = {
                "name": spec.name,
                "additionalCostId": cost_id,
                "additionalCost": name,
                "value": json_number(value),
            }
            if allowed < wanted:
                props["desiredValue"] = json_number(wanted)
            run.spend(value)
            run.emit(base, "setDiscountPerAdditionalCost", props)

    return apply


def _create_coupon(
    spec: CreateCouponSpec, base: Effect, effect_index: int, limit: int | None
) -> Apply:
    campaign_id = int(base["campaignId"])
    suffix = f"/coupon/{campaign_id}/{base['ruleIndex']}/{effect_index}"

    def apply(run: Run) -> None:
        facts = run.facts
        referral = run.referral
        if spec.recipient == "profile":
            recipient = facts.profile_id
        else:
            recipient = referral.advocate if referral is not None else None
        if not recipient:
            return  # a created coupon needs a recipient
        code = generated_code(spec.prefix, facts.key + suffix)
        if run.ledger.coupon(code) is None and limit is not None:
            used = run.ledger.campaign_usage(campaign_id).coupons_created
            if used + run.count_new("coupon", campaign_id) >= limit:
                return  # the coupon creation budget is spent
        expiry = None
        if spec.validity_days is not None and facts.now is not None:
            expiry = facts.now + timedelta(days=spec.validity_days)
        referral_id = referral.id if referral is not None else None
        draft = CouponDraft(campaign_id, code, recipient, spec.usage_limit, expiry, referral_id)
        run.outcome.created_coupons.append(draft)
        run.emit(base, "couponCreated", {"value": code, "profileId": recipient})

    return apply


def _create_referral(
    spec: CreateReferralSpec, base: Effect, effect_index: int, target: CampaignSpec
) -> Apply:
    settings = target.referrals
    usage_limit = spec.usage_limit
    if usage_limit is None:
        usage_limit = settings.usage_limit if settings is not None else 0
    validity_days = spec.validity_days or (settings.validity_days if settings else None)
    limit = target.budgets.referral_creations
    suffix = f"/referral/{base['campaignId']}/{base['ruleIndex']}/{effect_index}"

    def apply(run: Run) -> None:
        facts = run.facts
        advocate = facts.profile_id
        if not advocate:
            return  # a referral needs an advocate
        code = generated_code("", facts.key + suffix)
        if run.ledger.referral(code) is None and limit is not None:
            used = run.ledger.campaign_usage(target.id).referrals_created
            if used + run.count_new("referral", target.id) >= limit:
                return  # the referral creation budget is spent
        expiry = None
        if validity_days is not None and facts.now is not None:
            expiry = facts.now + timedelta(days=validity_days)
        draft = ReferralDraft(target.id, code, advocate, usage_limit, expiry)
        run.outcome.created_referrals.append(draft)
        run.emit(base, "referralCreated", {"value": code})

    return apply


def _award_giveaway(pool_id: int, pool_name: str, base: Effect) -> Apply:
    def apply(run: Run) -> None:
        facts = run.facts
        recipient = facts.profile_id
        if not recipient:
            return  # a giveaway needs a recipient
        props: dict[str, Any] = {
            "poolId": pool_id,
            "poolName": pool_name,
            "recipientIntegrationId": recipient,
        }
        if facts.session is not None and facts.session.state != "closed":
            # The code is only handed out when the session closes.
            run.emit(base, "willAwardGiveaway", props)
            return
        found = run.next_giveaway(pool_id)
        if found is None:
            return  # the pool is empty
        giveaway_id, code = found
        run.outcome.awarded_giveaways.append(GiveawayAward(pool_id, giveaway_id, code, recipient))
        run.emit(base, "awardGiveaway", {**props, "giveawayId": giveaway_id, "code": code})

    return apply


def _fixed(base: Effect, effect_type: str, props: dict[str, Any], *, session: bool) -> Apply:
    def apply(run: Run) -> None:
        if session and run.facts.session is None:
            return
        # A fresh dict per response: callers may serialise or change it independently.
        run.emit(base, effect_type, dict(props))

    return apply


def _update_attribute(path: str, value: Any, base: Effect) -> Apply:
    entity, _, name = path.split(".", 2)

    def apply(run: Run) -> None:
        facts = run.facts
        if entity == "Session" and facts.session is None:
            return
        if entity == "Profile" and facts.profile_id is None:
            return
        run.outcome.attribute_updates.append((entity, name, value))
        run.emit(base, "updateAttribute", {"path": path, "value": value})

    return apply


def _programs(campaigns: CampaignSet) -> dict[int, LoyaltyProgramSpec]:
    return {program.id: program for program in campaigns.loyalty_programs}


def compile_effect(
    spec: EffectSpec,
    base: Effect,
    effect_index: int,
    campaigns: CampaignSet,
    campaign: CampaignSpec,
) -> Apply:
    """The function applying one effect of a rule (``base``: the rule's effect envelope)."""
    match spec:
        case SetDiscount(spec=discount):
            return _set_discount(discount, base)
        case SetDiscountPerItem(spec=per_item):
            return _set_discount_per_item(per_item, base)
        case SetDiscountPerAdditionalCost(spec=per_cost):
            cost_id = next(
                cost.id
                for cost in campaigns.additional_costs
                if cost.name == per_cost.additional_cost
            )
            return _set_discount_per_additional_cost(per_cost, base, cost_id)
        case ShowNotification(spec=note):
            props: dict[str, Any] = {
                "notificationType": note.notification_type,
                "title": note.title,
                "body": note.body,
            }
            return _fixed(base, "showNotification", props, session=False)
        case AddLoyaltyPoints(spec=points):
            return add_loyalty_points(points, base, effect_index, _programs(campaigns))
        case DeductLoyaltyPoints(spec=deduct):
            return deduct_loyalty_points(deduct, base, effect_index, _programs(campaigns))
        case CustomEffect(spec=custom):
            payload = {"effectId": custom.effect_id, "name": custom.name, "payload": custom.payload}
            return _fixed(base, "customEffect", payload, session=False)
        case UpdateAttribute(spec=update):
            return _update_attribute(update.path, update.value, base)
        case AddFreeItem(spec=free):
            item: dict[str, Any] = {"sku": free.sku, "name": free.name}
            if free.desired_quantity is not None:
                item["desiredQuantity"] = free.desired_quantity
            return _fixed(base, "addFreeItem", item, session=True)
        case CreateCoupon(spec=coupon):
            return _create_coupon(coupon, base, effect_index, campaign.budgets.coupon_creations)
        case CreateReferral(spec=referral):
            target_id = referral.campaign_id or campaign.id
            target = next(c for c in campaigns.campaigns if c.id == target_id)
            return _create_referral(referral, base, effect_index, target)
        case AwardGiveaway(spec=award):
            pool = next(pool for pool in campaigns.giveaway_pools if pool.id == award.pool_id)
            return _award_giveaway(pool.id, pool.name, base)
    raise AssertionError(f"unhandled effect {spec!r}")  # pragma: no cover

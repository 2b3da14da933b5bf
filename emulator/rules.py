"""Campaign evaluation: facts about a session, profile or event in, Talon.One effects out.

Pure: no clock, no I/O, no stored state. Coupon usage counters live in the store, so the caller
passes a ``coupon_available`` callback.

Semantics follow Talon.One where the first version needs them:

* campaigns are evaluated in file order, rules in campaign order; every rule whose conditions
  all hold contributes its effects;
* a rule with ``couponValid`` only runs when the session carries a usable coupon of its campaign;
  the first such rule that fires emits ``acceptCoupon``; if none fires the coupon gets
  ``rejectCoupon`` (``CouponRejectedByCondition``); codes no campaign knows get ``rejectCoupon``
  with ``CouponNotFound`` (campaign 0, as Talon.One reports it); at most one coupon per campaign;
* discounts never exceed what is left of the session total (and of the item, for per-item ones);
* cart items are not flattened: per-item effects address ``cartItems`` by ``position``.

Every condition and effect of the campaign file is compiled once, when the engine is built, into a
plain function; evaluating a request is then a loop over closures (no ``isinstance`` on pydantic
models, which is slow because their metaclass is an ``ABCMeta``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from emulator.campaigns import (
    AddLoyaltyPoints,
    AddLoyaltyPointsSpec,
    CampaignSet,
    CampaignSpec,
    CartSubtotalAtLeast,
    Condition,
    CouponValid,
    CustomEffect,
    EffectSpec,
    EventTypeIs,
    FirstSession,
    ItemCategoryPresent,
    ItemSkuPresent,
    ProfileAttributeEquals,
    SessionStateIs,
    SetDiscount,
    SetDiscountPerItem,
    SetDiscountPerItemSpec,
    SetDiscountSpec,
    ShowNotification,
    UpdateAttribute,
)
from emulator.money import json_number, round_money

__all__ = [
    "CartLine",
    "CouponInfo",
    "Facts",
    "Outcome",
    "RuleEngine",
    "SessionFacts",
]

Effect = dict[str, Any]

# Seeds the transactionUUID of addLoyaltyPoints, so one evaluation always yields the same UUID.
_POINTS_NAMESPACE = uuid.UUID("5b1f1c0e-8d3f-4f5e-9a53-3c1a7d9e2b10")


@lru_cache(maxsize=65_536)
def _transaction_uuid(seed: str) -> str:
    # Sessions are re-evaluated on every update with the same seed: hashing once is enough.
    return str(uuid.uuid5(_POINTS_NAMESPACE, seed))


@dataclass(frozen=True, slots=True)
class CartLine:
    """One entry of ``cartItems`` as the rules see it."""

    position: int
    sku: str
    price: float
    quantity: int
    category: str | None = None

    @property
    def total(self) -> float:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class SessionFacts:
    integration_id: str
    state: str
    lines: tuple[CartLine, ...]
    coupon_codes: tuple[str, ...]
    first_session: bool
    cart_item_total: float
    total: float


@dataclass(frozen=True, slots=True)
class Facts:
    """What one evaluation sees.

    Attributes:
        event_type: ``talon_session_updated``, ``talon_profile_updated``, a custom event type...
        profile_id: the customer's integration ID (``None`` for anonymous sessions).
        profile_attributes: the profile's attributes, including this request's changes.
        session: the session, for session evaluations only.
        key: a stable identifier of the evaluated entity (seeds transaction UUIDs).
    """

    event_type: str
    profile_id: str | None
    profile_attributes: Mapping[str, Any]
    session: SessionFacts | None = None
    key: str = ""


@dataclass(frozen=True, slots=True)
class CouponInfo:
    id: int
    campaign_id: int
    code: str
    usage_limit: int


@dataclass(slots=True)
class Outcome:
    """The result of one evaluation.

    Attributes:
        effects: the effects, in Talon.One's JSON shape.
        triggered_campaign_ids: campaigns with at least one rule that fired.
        attribute_updates: ``(entity, name, value)`` from updateAttribute effects, entity being
            ``Profile`` or ``Session``.
    """

    effects: list[Effect] = field(default_factory=list)
    triggered_campaign_ids: list[int] = field(default_factory=list)
    attribute_updates: list[tuple[str, str, Any]] = field(default_factory=list)


class _Budget:
    """What is left to discount: the session total and each cart line."""

    __slots__ = ("lines", "total")

    def __init__(self, session: SessionFacts) -> None:
        self.total = session.total
        self.lines = {line.position: line.total for line in session.lines}

    def take(self, wanted: float, position: int | None = None) -> float:
        available = self.total if position is None else min(self.total, self.lines[position])
        value = round_money(min(wanted, available))
        if value <= 0:
            return 0.0
        self.total -= value
        if position is not None:
            self.lines[position] -= value
        return value


class _Run:
    """The mutable context of one evaluation, handed to the compiled effects."""

    __slots__ = ("budget", "coupon_id", "facts", "outcome")

    def __init__(self, facts: Facts, outcome: Outcome) -> None:
        self.facts = facts
        self.outcome = outcome
        self.budget = _Budget(facts.session) if facts.session is not None else None
        self.coupon_id: int | None = None

    def emit(self, base: Effect, effect_type: str, props: dict[str, Any]) -> None:
        effect = {**base, "effectType": effect_type, "props": props}
        if self.coupon_id is not None:
            effect["triggeredByCoupon"] = self.coupon_id
        self.outcome.effects.append(effect)


Predicate = Callable[[Facts], bool]
Apply = Callable[[_Run], None]


# --- conditions -------------------------------------------------------------------------------


def _same(left: Any, right: Any) -> bool:
    # YAML `true` must not match the number 1, nor `1` match `true`.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _always(_facts: Facts) -> bool:
    return True


def _predicate(condition: Condition) -> Predicate:
    match condition:
        case CouponValid():
            return _always  # coupon rules only run when a usable coupon is present

        case CartSubtotalAtLeast(amount=amount):

            def subtotal(facts: Facts) -> bool:
                session = facts.session
                return session is not None and session.cart_item_total >= amount

            return subtotal

        case ItemSkuPresent(skus=skus):
            wanted_skus = frozenset(skus)

            def sku_present(facts: Facts) -> bool:
                session = facts.session
                return session is not None and any(
                    line.sku in wanted_skus for line in session.lines
                )

            return sku_present

        case ItemCategoryPresent(categories=categories):
            wanted_categories = frozenset(categories)

            def category_present(facts: Facts) -> bool:
                session = facts.session
                return session is not None and any(
                    line.category in wanted_categories for line in session.lines
                )

            return category_present

        case EventTypeIs(types=types):
            event_types = frozenset(types)
            return lambda facts: facts.event_type in event_types

        case ProfileAttributeEquals(match=match):
            name, value = match.attribute, match.value

            def attribute_equals(facts: Facts) -> bool:
                attributes = facts.profile_attributes
                return (
                    facts.profile_id is not None
                    and name in attributes
                    and _same(attributes[name], value)
                )

            return attribute_equals

        case FirstSession(first=first):
            return lambda facts: facts.session is not None and facts.session.first_session == first

        case SessionStateIs(states=states):
            session_states = frozenset(states)
            return lambda facts: facts.session is not None and facts.session.state in session_states

    raise AssertionError(f"unhandled condition {condition!r}")  # pragma: no cover


# --- effects ----------------------------------------------------------------------------------


def _set_discount(spec: SetDiscountSpec, base: Effect) -> Apply:
    def apply(run: _Run) -> None:
        session, budget = run.facts.session, run.budget
        if session is None or budget is None:
            return
        if spec.percentage is not None:
            wanted = round_money(session.total * spec.percentage / 100)
        else:
            wanted = spec.amount or 0.0
        value = budget.take(wanted)
        if value > 0:
            run.emit(base, "setDiscount", {"name": spec.name, "value": json_number(value)})

    return apply


def _set_discount_per_item(spec: SetDiscountPerItemSpec, base: Effect) -> Apply:
    skus = frozenset(spec.skus) if spec.skus is not None else None
    categories = frozenset(spec.categories) if spec.categories is not None else None

    def apply(run: _Run) -> None:
        session, budget = run.facts.session, run.budget
        if session is None or budget is None:
            return
        for line in session.lines:
            if skus is not None and line.sku not in skus:
                continue
            if categories is not None and line.category not in categories:
                continue
            value = budget.take(round_money(line.total * spec.percentage / 100), line.position)
            if value > 0:
                props = {"name": spec.name, "value": json_number(value), "position": line.position}
                run.emit(base, "setDiscountPerItem", props)

    return apply


def _add_loyalty_points(spec: AddLoyaltyPointsSpec, base: Effect, effect_index: int) -> Apply:
    name = spec.name or str(base["ruleName"])
    suffix = f"/{base['campaignId']}/{base['ruleIndex']}/{effect_index}"

    def apply(run: _Run) -> None:
        facts = run.facts
        if facts.profile_id is None:
            return  # points need a recipient
        if spec.points is not None:
            value = spec.points
        elif facts.session is not None and spec.points_per_currency_unit is not None:
            value = round_money(facts.session.cart_item_total * spec.points_per_currency_unit)
        else:
            return
        if value <= 0:
            return
        props = {
            "name": name,
            "programId": spec.program_id,
            "subLedgerId": spec.sub_ledger_id,
            "value": json_number(value),
            "recipientIntegrationId": facts.profile_id,
            "transactionUUID": _transaction_uuid(facts.key + suffix),
        }
        run.emit(base, "addLoyaltyPoints", props)

    return apply


def _fixed(base: Effect, effect_type: str, props: dict[str, Any]) -> Apply:
    def apply(run: _Run) -> None:
        # A fresh dict per response: callers may serialise or change it independently.
        run.emit(base, effect_type, dict(props))

    return apply


def _update_attribute(path: str, value: Any, base: Effect) -> Apply:
    entity, _, name = path.split(".", 2)

    def apply(run: _Run) -> None:
        facts = run.facts
        if entity == "Session" and facts.session is None:
            return
        if entity == "Profile" and facts.profile_id is None:
            return
        run.outcome.attribute_updates.append((entity, name, value))
        run.emit(base, "updateAttribute", {"path": path, "value": value})

    return apply


def _applier(spec: EffectSpec, base: Effect, effect_index: int) -> Apply:
    match spec:
        case SetDiscount(spec=discount):
            return _set_discount(discount, base)
        case SetDiscountPerItem(spec=per_item):
            return _set_discount_per_item(per_item, base)
        case ShowNotification(spec=note):
            props: dict[str, Any] = {
                "notificationType": note.notification_type,
                "title": note.title,
                "body": note.body,
            }
            return _fixed(base, "showNotification", props)
        case AddLoyaltyPoints(spec=points):
            return _add_loyalty_points(points, base, effect_index)
        case CustomEffect(spec=custom):
            payload = {"effectId": custom.effect_id, "name": custom.name, "payload": custom.payload}
            return _fixed(base, "customEffect", payload)
        case UpdateAttribute(spec=update):
            return _update_attribute(update.path, update.value, base)
    raise AssertionError(f"unhandled effect {spec!r}")  # pragma: no cover


# --- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RulePlan:
    index: int
    name: str
    base: Effect
    needs_coupon: bool
    predicates: tuple[Predicate, ...]
    effects: tuple[Apply, ...]

    def failing_condition(self, facts: Facts) -> int | None:
        for index, predicate in enumerate(self.predicates):
            if not predicate(facts):
                return index
        return None


@dataclass(frozen=True, slots=True)
class _CampaignPlan:
    campaign: CampaignSpec
    rules: tuple[_RulePlan, ...]
    needs_coupon: bool


def _plan(campaign: CampaignSpec) -> _CampaignPlan:
    rules = []
    for index, rule in enumerate(campaign.rules):
        base: Effect = {
            "campaignId": campaign.id,
            "rulesetId": campaign.ruleset_id,
            "ruleIndex": index,
            "ruleName": rule.name,
        }
        rules.append(
            _RulePlan(
                index=index,
                name=rule.name,
                base=base,
                needs_coupon=rule.needs_coupon,
                predicates=tuple(_predicate(condition) for condition in rule.conditions),
                effects=tuple(_applier(spec, base, i) for i, spec in enumerate(rule.effects)),
            )
        )
    return _CampaignPlan(campaign, tuple(rules), all(rule.needs_coupon for rule in rules))


def _reject(base: Effect, code: str, coupon_id: int, reason: str, **extra: Any) -> Effect:
    return {
        **base,
        "effectType": "rejectCoupon",
        "props": {"value": code, "rejectionReason": reason, **extra},
        "triggeredByCoupon": coupon_id,
    }


def _coupon_not_found(code: str) -> Effect:
    return {
        "campaignId": 0,
        "rulesetId": 0,
        "ruleIndex": 0,
        "ruleName": "",
        "effectType": "rejectCoupon",
        "props": {"value": code, "rejectionReason": "CouponNotFound"},
    }


def _coupon_always_available(_coupon: CouponInfo) -> bool:
    return True


class RuleEngine:
    """Evaluates a :class:`CampaignSet`; build it once, call :meth:`evaluate` per request."""

    def __init__(self, campaigns: CampaignSet) -> None:
        self.campaigns = campaigns
        coupons: dict[str, CouponInfo] = {}
        for campaign in campaigns.campaigns:
            for spec in campaign.coupons:
                info = CouponInfo(len(coupons) + 1, campaign.id, spec.code, spec.usage_limit)
                coupons[spec.code.lower()] = info
        self._coupons = coupons
        self._campaigns_by_id = {campaign.id: campaign for campaign in campaigns.campaigns}
        self._plans = tuple(_plan(campaign) for campaign in campaigns.campaigns)

    @property
    def coupons(self) -> Mapping[str, CouponInfo]:
        """Every coupon of every campaign, keyed by the lower-cased code."""
        return self._coupons

    def coupon(self, code: str) -> CouponInfo | None:
        """The coupon for a code, compared case-insensitively as Talon.One does by default."""
        return self._coupons.get(code.lower())

    def campaign(self, campaign_id: int) -> CampaignSpec | None:
        return self._campaigns_by_id.get(campaign_id)

    def evaluate(
        self,
        facts: Facts,
        coupon_available: Callable[[CouponInfo], bool] = _coupon_always_available,
    ) -> Outcome:
        """Run every campaign against ``facts``."""
        outcome = Outcome()
        run = _Run(facts, outcome)
        by_campaign: dict[int, list[tuple[str, CouponInfo]]] = {}
        unknown: list[str] = []
        if facts.session is not None:
            for code in facts.session.coupon_codes:
                info = self._coupons.get(code.lower())
                if info is None:
                    unknown.append(code)
                else:
                    by_campaign.setdefault(info.campaign_id, []).append((code, info))
        for plan in self._plans:
            codes = by_campaign.get(plan.campaign.id, ())
            if not codes and plan.needs_coupon:
                continue  # every rule needs a coupon of this campaign, and there is none
            if self._evaluate_campaign(plan, run, codes, coupon_available):
                outcome.triggered_campaign_ids.append(plan.campaign.id)
        outcome.effects.extend(_coupon_not_found(code) for code in unknown)
        return outcome

    @staticmethod
    def _evaluate_campaign(
        plan: _CampaignPlan,
        run: _Run,
        codes: Sequence[tuple[str, CouponInfo]],
        coupon_available: Callable[[CouponInfo], bool],
    ) -> bool:
        effects = run.outcome.effects
        first_rule = plan.rules[0]
        active: tuple[str, CouponInfo] | None = None
        for code, info in codes:
            if not coupon_available(info):
                effects.append(_reject(first_rule.base, code, info.id, "CouponLimitReached"))
            elif active is not None:
                details = "one coupon per campaign per session"
                effects.append(
                    _reject(
                        first_rule.base, code, info.id, "EffectCouldNotBeApplied", details=details
                    )
                )
            else:
                active = (code, info)

        fired = accepted = False
        first_failure: tuple[_RulePlan, int] | None = None
        for rule in plan.rules:
            if rule.needs_coupon and active is None:
                continue
            failing = rule.failing_condition(run.facts)
            if failing is not None:
                if rule.needs_coupon and first_failure is None:
                    first_failure = (rule, failing)
                continue
            fired = True
            run.coupon_id = None
            if rule.needs_coupon and active is not None:
                run.coupon_id = active[1].id
                if not accepted:
                    run.emit(rule.base, "acceptCoupon", {"value": active[0]})
                    accepted = True
            for apply in rule.effects:
                apply(run)
        run.coupon_id = None
        if active is not None and not accepted:
            code, info = active
            if first_failure is None:
                reason = "CouponPartOfNotTriggeredCampaign"
                effects.append(_reject(first_rule.base, code, info.id, reason))
            else:
                rule, condition_index = first_failure
                reason = "CouponRejectedByCondition"
                effects.append(
                    _reject(rule.base, code, info.id, reason, conditionIndex=condition_index)
                )
        return fired

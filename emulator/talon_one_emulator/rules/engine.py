"""Campaign evaluation: facts about a session, profile or event in, Talon.One effects out.

Pure: no clock, no I/O, no stored state. What changes over time (coupon and referral usage,
reservations, budgets, giveaway pools) comes through a
:class:`~talon_one_emulator.rules.facts.Ledger`.

Semantics follow Talon.One:

* enabled campaigns are evaluated in file order, rules in campaign order; every rule whose
  conditions all hold contributes its effects;
* a rule with ``couponValid`` only runs when the session carries a usable coupon of its campaign;
  the first such rule that fires emits ``acceptCoupon``. A coupon that cannot be used is rejected
  with ``rejectCoupon`` and Talon.One's reason: ``CouponStartDateInFuture``, ``CouponExpired``,
  ``CouponRecipientDoesNotMatch``, ``ProfileRequired``, ``CouponReservationRequired``,
  ``CouponLimitReached`` (its usage limit), ``CampaignLimitReached`` (the campaign's redemption
  budget), ``ProfileLimitReached`` (the per-profile budget), ``EffectCouldNotBeApplied`` (a second
  coupon of the campaign, or a spent discount budget), ``CouponRejectedByCondition`` (with the
  ``conditionIndex``) or ``CouponPartOfNotRunningCampaign``; codes no campaign knows get
  ``CouponNotFound`` (campaign 0, as Talon.One reports it);
* ``referralValid`` works the same for the session's ``referralCode`` with ``acceptReferral`` and
  ``rejectReferral`` (``ReferralNotFound``, ``ReferralRecipientIdSameAsAdvocate``,
  ``ReferralRecipientDoesNotMatch``, ``ReferralLimitReached``, ``ReferralExpired``, ...);
* discounts cascade and never exceed what is left (:mod:`talon_one_emulator.rules.discounts`).

Every condition and effect of the campaign file is compiled once, when the engine is built, into a
plain function (:mod:`talon_one_emulator.rules.conditions`,
:mod:`talon_one_emulator.rules.effects`);
evaluating a request is
then a loop over closures (no ``isinstance`` on pydantic models, which is slow because their
metaclass is an ``ABCMeta``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from talon_one_emulator.campaigns.file import CampaignSet, CampaignSpec
from talon_one_emulator.campaigns.loyalty import DeductLoyaltyPoints
from talon_one_emulator.campaigns.rules import Condition
from talon_one_emulator.rules.conditions import Predicate, compile_condition, static_verdict
from talon_one_emulator.rules.effects import DISCOUNT_EFFECTS, Apply, Run, compile_effect
from talon_one_emulator.rules.facts import (
    CampaignUsage,
    CartLine,
    CouponInfo,
    Facts,
    Ledger,
    Outcome,
    ProfileUsage,
    ReferralInfo,
    SessionFacts,
    StaticLedger,
)
from talon_one_emulator.rules.loyalty import loyalty_guard
from talon_one_emulator.rules.rejections import (
    NOT_FOUND_BASE,
    coupon_problem,
    referral_problem,
    reject_coupon,
    reject_referral,
)

__all__ = [
    "CartLine",
    "CouponInfo",
    "Facts",
    "Outcome",
    "RuleEngine",
    "SessionFacts",
]

Effect = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _RulePlan:
    index: int
    name: str
    base: Effect
    needs_coupon: bool
    needs_referral: bool
    conditions: tuple[Condition, ...]
    predicates: tuple[Predicate, ...]
    """One per condition, then the loyalty guard if the rule deducts points."""
    effects: tuple[Apply, ...]
    discount_effect: int | None
    """The index of the rule's first discount effect."""
    deduction_effect: int | None = None
    """The index of the rule's first deductLoyaltyPoints effect, whose points the last
    predicate checks."""

    def rejection(self, failing: int, by_condition: str) -> tuple[str, dict[str, Any]]:
        """Why a code is rejected when this rule failed at predicate ``failing``: a condition
        (``by_condition``), or too few loyalty points for its deductions."""
        if self.deduction_effect is not None and failing == len(self.predicates) - 1:
            details = "not enough loyalty points"
            return "EffectCouldNotBeApplied", {
                "effectIndex": self.deduction_effect,
                "details": details,
            }
        return by_condition, {"conditionIndex": failing}

    def failing_condition(self, facts: Facts) -> int | None:
        for index, predicate in enumerate(self.predicates):
            if not predicate(facts):
                return index
        return None

    def checks_for(self, event_type: str, *, in_session: bool) -> tuple[Predicate, ...] | None:
        """The predicates left to check in evaluations of this kind (``None``: never fires)."""
        checks = []
        for index, predicate in enumerate(self.predicates):
            verdict = (
                static_verdict(self.conditions[index], event_type, in_session=in_session)
                if index < len(self.conditions)
                else None
            )
            if verdict is False:
                return None
            if verdict is None:
                checks.append(predicate)
        return tuple(checks)


@dataclass(frozen=True, slots=True)
class _CampaignPlan:
    campaign: CampaignSpec
    rules: tuple[_RulePlan, ...]
    needs_code: bool
    """Every rule needs a coupon or a referral code."""
    has_budgets: bool
    plain_rules: tuple[_RulePlan, ...]
    """The rules that need no code (all a campaign without budgets runs when none is sent)."""

    def plain_for(self, event_type: str, *, in_session: bool) -> _PlainCampaign:
        """The rules that need no code, reduced to what evaluations of this kind must check."""
        rules = []
        for rule in self.plain_rules:
            checks = rule.checks_for(event_type, in_session=in_session)
            if checks is not None:
                rules.append((checks, rule.effects))
        return _PlainCampaign(self.campaign.id, self.campaign.budgets.discount, tuple(rules))


@dataclass(frozen=True, slots=True)
class _PlainCampaign:
    """A campaign evaluated without a code, for one kind of evaluation (event type, with or
    without a session): per rule that can fire, the checks left and the effects."""

    campaign_id: int
    discount_limit: float | None
    rules: tuple[tuple[tuple[Predicate, ...], tuple[Apply, ...]], ...]


@dataclass(frozen=True, slots=True)
class _KindPlan:
    """Everything the engine precomputes for one kind of evaluation."""

    by_campaign: Mapping[int, _PlainCampaign]
    """Every campaign's codeless rules."""
    enabled: tuple[_PlainCampaign, ...]
    """The enabled campaigns that can fire without a code, in evaluation order: all a request
    without coupons, referral code and ``evaluableCampaignIds`` runs."""


def _plan(campaign: CampaignSpec, campaigns: CampaignSet) -> _CampaignPlan:
    programs = {program.id: program for program in campaigns.loyalty_programs}
    rules = []
    for index, rule in enumerate(campaign.rules):
        base: Effect = {
            "campaignId": campaign.id,
            "rulesetId": campaign.ruleset_id,
            "ruleIndex": index,
            "ruleName": rule.name,
        }
        discount = next(
            (i for i, spec in enumerate(rule.effects) if isinstance(spec, DISCOUNT_EFFECTS)), None
        )
        predicates = tuple(compile_condition(condition) for condition in rule.conditions)
        # A rule that spends loyalty points only fires when they are there.
        guard = loyalty_guard(rule.effects, programs)
        deduction = None
        if guard is not None:
            predicates = (*predicates, guard)
            deduction = next(
                i for i, spec in enumerate(rule.effects) if isinstance(spec, DeductLoyaltyPoints)
            )
        rules.append(
            _RulePlan(
                index=index,
                name=rule.name,
                base=base,
                needs_coupon=rule.needs_coupon,
                needs_referral=rule.needs_referral,
                conditions=tuple(rule.conditions),
                predicates=predicates,
                effects=tuple(
                    compile_effect(spec, base, i, campaigns, campaign)
                    for i, spec in enumerate(rule.effects)
                ),
                discount_effect=discount,
                deduction_effect=deduction,
            )
        )
    needs_code = all(rule.needs_coupon or rule.needs_referral for rule in rules)
    plain = tuple(rule for rule in rules if not (rule.needs_coupon or rule.needs_referral))
    return _CampaignPlan(campaign, tuple(rules), needs_code, campaign.budgets.any, plain)


_CENT = 0.005


def _coupon_always_available(_coupon: CouponInfo) -> bool:
    return True


class RuleEngine:
    """Evaluates a :class:`CampaignSet`; build it once, call :meth:`evaluate` per request."""

    def __init__(self, campaigns: CampaignSet) -> None:
        self.campaigns = campaigns
        coupons: dict[str, CouponInfo] = {}
        for campaign in campaigns.campaigns:
            for spec in campaign.coupons:
                coupons[spec.code.lower()] = CouponInfo(
                    id=len(coupons) + 1,
                    campaign_id=campaign.id,
                    code=spec.code,
                    usage_limit=spec.usage_limit,
                    start_date=spec.start_date,
                    expiry_date=spec.expiry_date,
                    recipient=spec.recipient_integration_id,
                    reservation_mandatory=spec.reservation_mandatory,
                )
        self._coupons = coupons
        giveaways: dict[int, list[tuple[int, str]]] = {}
        next_id = 1
        for pool in campaigns.giveaway_pools:
            giveaways[pool.id] = [(next_id + i, code) for i, code in enumerate(pool.codes)]
            next_id += len(pool.codes)
        self._giveaways = giveaways
        self._static = StaticLedger(coupons, giveaways)
        self._campaigns_by_id = {campaign.id: campaign for campaign in campaigns.campaigns}
        self._plans = tuple(_plan(campaign, campaigns) for campaign in campaigns.campaigns)
        self._enabled_plans = tuple(plan for plan in self._plans if plan.campaign.enabled)
        self._plans_by_id = {plan.campaign.id: plan for plan in self._plans}
        # Per (event type, session evaluated or not); event types are the built-in ones and
        # those the campaign file declares, so this stays small.
        self._kinds: dict[tuple[str, bool], _KindPlan] = {}

    @property
    def coupons(self) -> Mapping[str, CouponInfo]:
        """Every coupon of every campaign, keyed by the lower-cased code."""
        return self._coupons

    @property
    def giveaways(self) -> Mapping[int, Sequence[tuple[int, str]]]:
        """Per giveaway pool, ``(id, code)`` of each of its giveaways."""
        return self._giveaways

    def coupon(self, code: str) -> CouponInfo | None:
        """The coupon for a code, compared case-insensitively as Talon.One does by default."""
        return self._coupons.get(code.lower())

    def campaign(self, campaign_id: int) -> CampaignSpec | None:
        return self._campaigns_by_id.get(campaign_id)

    def _kind(self, event_type: str, in_session: bool) -> _KindPlan:
        found = self._kinds.get((event_type, in_session))
        if found is None:
            by_campaign = {
                plan.campaign.id: plan.plain_for(event_type, in_session=in_session)
                for plan in self._plans
            }
            enabled = tuple(
                by_campaign[plan.campaign.id]
                for plan in self._enabled_plans
                if not plan.needs_code and by_campaign[plan.campaign.id].rules
            )
            found = self._kinds[(event_type, in_session)] = _KindPlan(by_campaign, enabled)
        return found

    def evaluate(
        self,
        facts: Facts,
        coupon_available: Callable[[CouponInfo], bool] = _coupon_always_available,
        evaluable: Collection[int] | None = None,
        *,
        ledger: Ledger | None = None,
    ) -> Outcome:
        """Run every enabled campaign against ``facts``.

        ``evaluable`` (a dry request's ``evaluableCampaignIds``) runs exactly these campaigns
        instead, disabled ones included. Coupons (and referral codes) of campaigns that do not
        run are rejected with ``CouponPartOfNotRunningCampaign``
        (``ReferralPartOfNotRunningCampaign``). ``ledger`` answers for coupon and referral usage,
        budgets and giveaway pools (default: nothing used yet); ``coupon_available`` can declare
        more coupons exhausted.
        """
        if ledger is None:
            ledger = self._static
        outcome = Outcome()
        run = Run(facts, outcome, ledger, self.campaigns.application)
        by_campaign: dict[int, list[tuple[str, CouponInfo]]] = {}
        unknown: list[str] = []
        referral: tuple[str, ReferralInfo] | None = None
        unknown_referral: str | None = None
        session = facts.session
        if session is not None:
            for code in session.coupon_codes:
                info = ledger.coupon(code)
                if info is None:
                    unknown.append(code)
                else:
                    by_campaign.setdefault(info.campaign_id, []).append((code, info))
            if session.referral_code:
                found = ledger.referral(session.referral_code)
                if found is None:
                    unknown_referral = session.referral_code
                else:
                    referral = (session.referral_code, found)
        kind = self._kind(facts.event_type, session is not None)
        if evaluable is None and not by_campaign and referral is None:
            # The usual request: no code, every enabled campaign. Only the rules that can fire
            # in this kind of evaluation are left, with only the checks that depend on the facts.
            triggered = outcome.triggered_campaign_ids
            for plain in kind.enabled:
                if self._run_plain(plain, run):
                    triggered.append(plain.campaign_id)
            self._reject_unknown(outcome, unknown, unknown_referral)
            return outcome
        if evaluable is None:
            plans = self._enabled_plans
        else:
            plans = tuple(plan for plan in self._plans if plan.campaign.id in evaluable)
        if (by_campaign or referral) and len(plans) != len(self._plans):
            running = {plan.campaign.id for plan in plans}
            for campaign_id in [key for key in by_campaign if key not in running]:
                first_rule = self._plans_by_id[campaign_id].rules[0]
                for code, info in by_campaign.pop(campaign_id):
                    reason = "CouponPartOfNotRunningCampaign"
                    outcome.effects.append(reject_coupon(first_rule.base, code, info.id, reason))
            if referral is not None and referral[1].campaign_id not in running:
                first_rule = self._plans_by_id[referral[1].campaign_id].rules[0]
                reason = "ReferralPartOfNotRunningCampaign"
                outcome.effects.append(reject_referral(first_rule.base, referral[0], reason))
                referral = None
        for plan in plans:
            campaign_id = plan.campaign.id
            codes = by_campaign.get(campaign_id, ())
            own_referral = (
                referral
                if referral is not None and referral[1].campaign_id == campaign_id
                else None
            )
            if not codes and own_referral is None:
                if plan.needs_code:
                    continue  # every rule needs a coupon or referral of this campaign
                if self._run_plain(kind.by_campaign[campaign_id], run):
                    outcome.triggered_campaign_ids.append(campaign_id)
                continue
            if self._evaluate_campaign(plan, run, codes, own_referral, coupon_available):
                outcome.triggered_campaign_ids.append(campaign_id)
        self._reject_unknown(outcome, unknown, unknown_referral)
        return outcome

    @staticmethod
    def _reject_unknown(outcome: Outcome, unknown: list[str], unknown_referral: str | None) -> None:
        """Reject the coupon and referral codes no campaign knows."""
        for code in unknown:
            props = {"value": code, "rejectionReason": "CouponNotFound"}
            outcome.effects.append({**NOT_FOUND_BASE, "effectType": "rejectCoupon", "props": props})
        if unknown_referral is not None:
            outcome.effects.append(
                reject_referral(NOT_FOUND_BASE, unknown_referral, "ReferralNotFound")
            )

    @staticmethod
    def _run_plain(plain: _PlainCampaign, run: Run) -> bool:
        """The fast path: a campaign for which the session carries no code."""
        facts = run.facts
        fired = False
        for checks, effects in plain.rules:
            for predicate in checks:
                if not predicate(facts):
                    break
            else:
                limit = plain.discount_limit
                if not fired and limit is not None:
                    spent = run.ledger.campaign_usage(plain.campaign_id).discount
                    run.discount_left = limit - spent
                fired = True
                for apply in effects:
                    apply(run)
        run.discount_left = None
        return fired

    @staticmethod
    def _evaluate_campaign(
        plan: _CampaignPlan,
        run: Run,
        codes: Sequence[tuple[str, CouponInfo]],
        referral: tuple[str, ReferralInfo] | None,
        coupon_available: Callable[[CouponInfo], bool],
    ) -> bool:
        effects = run.outcome.effects
        campaign = plan.campaign
        budgets = campaign.budgets
        first_rule = plan.rules[0]
        profile_id = run.facts.profile_id
        usage: CampaignUsage | None = None
        profile_usage: ProfileUsage | None = None
        if plan.has_budgets:
            usage = run.ledger.campaign_usage(campaign.id)
            if profile_id:
                profile_usage = run.ledger.profile_usage(campaign.id, profile_id)

        active: tuple[str, CouponInfo] | None = None
        for code, info in codes:
            reason = coupon_problem(info, run, coupon_available, budgets, usage, profile_usage)
            if reason is not None:
                effects.append(reject_coupon(first_rule.base, code, info.id, reason))
            elif active is not None:
                details = "one coupon per campaign per session"
                effects.append(
                    reject_coupon(
                        first_rule.base, code, info.id, "EffectCouldNotBeApplied", details=details
                    )
                )
            else:
                active = (code, info)
        active_referral = referral
        if referral is not None:
            reason = referral_problem(referral[1], run, budgets, usage, profile_usage)
            if reason is not None:
                effects.append(reject_referral(first_rule.base, referral[0], reason))
                active_referral = None

        discount_left: float | None = None
        if usage is not None and budgets.discount is not None:
            discount_left = budgets.discount - usage.discount
        run.discount_left = discount_left
        run.referral = active_referral[1] if active_referral is not None else None
        fired = accepted = referral_accepted = False
        coupon_failure: tuple[_RulePlan, int] | None = None
        referral_failure: tuple[_RulePlan, int] | None = None
        for rule in plan.rules:
            if rule.needs_coupon and active is None:
                continue
            if rule.needs_referral and active_referral is None:
                continue
            failing = rule.failing_condition(run.facts)
            if failing is not None:
                if rule.needs_coupon and coupon_failure is None:
                    coupon_failure = (rule, failing)
                if rule.needs_referral and referral_failure is None:
                    referral_failure = (rule, failing)
                continue
            if (
                rule.discount_effect is not None
                and run.discount_left is not None
                and run.discount_left < _CENT
                and (rule.needs_coupon or rule.needs_referral)
            ):
                # The discount budget is spent: the code cannot give what the rule promises.
                details = "the campaign's discount budget is spent"
                extra = {"effectIndex": rule.discount_effect, "details": details}
                reason = "EffectCouldNotBeApplied"
                if active is not None and rule.needs_coupon and not accepted:
                    code, info = active
                    effects.append(reject_coupon(rule.base, code, info.id, reason, **extra))
                    active = None
                if active_referral is not None and rule.needs_referral and not referral_accepted:
                    effects.append(reject_referral(rule.base, active_referral[0], reason, **extra))
                    active_referral = None
                    run.referral = None
                continue
            fired = True
            run.coupon_id = None
            if rule.needs_coupon and active is not None:
                run.coupon_id = active[1].id
                if not accepted:
                    run.emit(rule.base, "acceptCoupon", {"value": active[0]})
                    accepted = True
            if rule.needs_referral and active_referral is not None and not referral_accepted:
                run.emit(rule.base, "acceptReferral", {"value": active_referral[0]})
                referral_accepted = True
            for apply in rule.effects:
                apply(run)
        run.coupon_id = None
        run.referral = None
        run.discount_left = None
        if active is not None and not accepted:
            code, info = active
            if coupon_failure is None:
                reason = "CouponPartOfNotTriggeredCampaign"
                effects.append(reject_coupon(first_rule.base, code, info.id, reason))
            else:
                rule, failing = coupon_failure
                reason, extra = rule.rejection(failing, "CouponRejectedByCondition")
                effects.append(reject_coupon(rule.base, code, info.id, reason, **extra))
        if active_referral is not None and not referral_accepted:
            code = active_referral[0]
            if referral_failure is None:
                reason = "ReferralPartOfNotTriggeredCampaign"
                effects.append(reject_referral(first_rule.base, code, reason))
            else:
                rule, failing = referral_failure
                reason, extra = rule.rejection(failing, "ReferralRejectedByCondition")
                effects.append(reject_referral(rule.base, code, reason, **extra))
        return fired

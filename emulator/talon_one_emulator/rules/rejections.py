"""Why a coupon or referral code cannot be used, and the effects that reject it.

The checks run in Talon.One's order and answer its rejection reasons: the code's dates, who may
use it, its usage limit, then the campaign's redemption budgets (see
:mod:`talon_one_emulator.rules.engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from talon_one_emulator.campaigns.declarations import BudgetSpec
    from talon_one_emulator.rules.facts import CampaignUsage, CouponInfo, ProfileUsage, ReferralInfo
    from talon_one_emulator.rules.run import Run

__all__ = [
    "NOT_FOUND_BASE",
    "coupon_problem",
    "referral_problem",
    "reject_coupon",
    "reject_referral",
]

Effect = dict[str, Any]


def reject_coupon(base: Effect, code: str, coupon_id: int, reason: str, **extra: Any) -> Effect:
    """A rejectCoupon effect of the rule ``base`` describes."""
    return {
        **base,
        "effectType": "rejectCoupon",
        "props": {"value": code, "rejectionReason": reason, **extra},
        "triggeredByCoupon": coupon_id,
    }


def reject_referral(base: Effect, code: str, reason: str, **extra: Any) -> Effect:
    """A rejectReferral effect of the rule ``base`` describes."""
    return {
        **base,
        "effectType": "rejectReferral",
        "props": {"value": code, "rejectionReason": reason, **extra},
    }


# Talon.One reports codes it cannot find under campaign 0.
NOT_FOUND_BASE: Effect = {"campaignId": 0, "rulesetId": 0, "ruleIndex": 0, "ruleName": ""}


# Why a coupon or a referral code is rejected before its start date and from its expiry date on.
_COUPON_DATE_REASONS = ("CouponStartDateInFuture", "CouponExpired")
_REFERRAL_DATE_REASONS = ("ReferralStartDateInFuture", "ReferralExpired")


def _date_problem(
    start: datetime | None, expiry: datetime | None, now: datetime | None, reasons: tuple[str, str]
) -> str | None:
    """``reasons[0]`` before ``start``, ``reasons[1]`` from ``expiry`` on; dates are only checked
    when the evaluation has a time."""
    if now is not None:
        if start is not None and now < start:
            return reasons[0]
        if expiry is not None and now >= expiry:
            return reasons[1]
    return None


def _budget_problem(
    campaign_limit: int | None,
    campaign_used: int,
    profile_limit: int | None,
    profile_used: int | None,
    *,
    profile_required: bool,
) -> str | None:
    """Whether a code would exceed its campaign's redemption budgets (``profile_used``:
    ``None`` for an anonymous session, rejected only if ``profile_required``)."""
    if campaign_limit is not None and campaign_used >= campaign_limit:
        return "CampaignLimitReached"
    if profile_limit is not None:
        if profile_used is None:
            return "ProfileRequired" if profile_required else None
        if profile_used >= profile_limit:
            return "ProfileLimitReached"
    return None


def coupon_problem(
    info: CouponInfo,
    run: Run,
    coupon_available: Callable[[CouponInfo], bool],
    budgets: BudgetSpec,
    usage: CampaignUsage | None,
    profile_usage: ProfileUsage | None,
) -> str | None:
    """Why the coupon cannot be used in this evaluation (``None``: it can)."""
    facts, ledger = run.facts, run.ledger
    profile_id = facts.profile_id
    dates = _date_problem(info.start_date, info.expiry_date, facts.now, _COUPON_DATE_REASONS)
    if dates is not None:
        return dates
    if info.recipient is not None and info.recipient != profile_id:
        return "CouponRecipientDoesNotMatch"
    if info.reservation_mandatory:
        if not profile_id:
            return "ProfileRequired"
        if not ledger.coupon_reserved(info.id, profile_id):
            return "CouponReservationRequired"
    if not coupon_available(info) or (
        info.usage_limit and ledger.coupon_uses(info.id) >= info.usage_limit
    ):
        return "CouponLimitReached"
    if usage is None:
        return None
    return _budget_problem(
        budgets.coupon_redemptions,
        usage.coupon_redemptions,
        budgets.profile_coupon_redemptions,
        profile_usage.coupon_redemptions if profile_usage is not None else None,
        profile_required=True,
    )


def referral_problem(
    info: ReferralInfo,
    run: Run,
    budgets: BudgetSpec,
    usage: CampaignUsage | None,
    profile_usage: ProfileUsage | None,
) -> str | None:
    """Why the referral code cannot be used in this evaluation (``None``: it can)."""
    facts = run.facts
    profile_id = facts.profile_id
    dates = _date_problem(info.start_date, info.expiry_date, facts.now, _REFERRAL_DATE_REASONS)
    if dates is not None:
        return dates
    if profile_id is not None and profile_id == info.advocate:
        return "ReferralRecipientIdSameAsAdvocate"
    if info.friend is not None and info.friend != profile_id:
        return "ReferralRecipientDoesNotMatch"
    if info.usage_limit and run.ledger.referral_uses(info.id) >= info.usage_limit:
        return "ReferralLimitReached"
    if usage is None:
        return None
    return _budget_problem(
        budgets.referral_redemptions,
        usage.referral_redemptions,
        budgets.profile_referral_redemptions,
        profile_usage.referral_redemptions if profile_usage is not None else None,
        profile_required=False,
    )

"""What the rule engine reads and what it produces, as plain frozen records.

:class:`Facts` describe one evaluation (a session update, a profile update, a custom event);
:class:`Outcome` is its result. Everything the engine needs to know about coupons, referrals,
budgets and giveaway pools that changes over time comes through the :class:`Ledger` protocol, so
the engine itself stays pure: :class:`StaticLedger` answers for an Application nothing has been
redeemed from yet, :class:`~talon_one_emulator.store.promotion_ledger.PromotionLedger` for the
emulator's live store.

The facts are named tuples rather than frozen dataclasses: they are built for every request, and
a frozen dataclass costs four times as much to build (its ``__init__`` goes through
``object.__setattr__`` for every field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

__all__ = [
    "CampaignUsage",
    "CartLine",
    "CouponDraft",
    "CouponInfo",
    "Facts",
    "GiveawayAward",
    "Ledger",
    "LoyaltyView",
    "Outcome",
    "ProfileUsage",
    "ReferralDraft",
    "ReferralInfo",
    "SessionFacts",
    "StaticLedger",
]

Effect = dict[str, Any]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class CartLine(NamedTuple):
    """One entry of ``cartItems`` as the rules see it."""

    position: int
    sku: str
    price: float
    quantity: int
    category: str | None = None

    @property
    def total(self) -> float:
        return self.price * self.quantity


class SessionFacts(NamedTuple):
    """The evaluated customer session.

    Attributes:
        additional_costs: ``(name, price)`` of the session-level additional costs; their sum is
            ``total - cart_item_total``.
    """

    integration_id: str
    state: str
    lines: tuple[CartLine, ...]
    coupon_codes: tuple[str, ...]
    first_session: bool
    cart_item_total: float
    total: float
    referral_code: str | None = None
    attributes: Mapping[str, Any] = _EMPTY
    store_integration_id: str | None = None
    additional_costs: tuple[tuple[str, float], ...] = ()


class Facts(NamedTuple):
    """What one evaluation sees.

    Attributes:
        event_type: ``talon_session_updated``, ``talon_profile_updated``, a custom event type...
        profile_id: the customer's integration ID (``None`` for anonymous sessions).
        profile_attributes: the profile's attributes, including this request's changes.
        session: the session, for session evaluations only.
        key: a stable identifier of the evaluated entity (seeds transaction UUIDs and the codes
            of created coupons and referrals, so re-evaluating a session re-creates nothing).
        event_attributes: the custom event's attributes (track event only).
        store_integration_id: the store of the session or event.
        now: the evaluation time; coupon and referral dates are only checked when it is given.
        loyalty: the customer's (and card's) points, for the loyalty effects that need them
            (``None`` when no campaign does: points are then only added to profiles).
    """

    event_type: str
    profile_id: str | None
    profile_attributes: Mapping[str, Any]
    session: SessionFacts | None = None
    key: str = ""
    event_attributes: Mapping[str, Any] = _EMPTY
    store_integration_id: str | None = None
    now: datetime | None = None
    loyalty: LoyaltyView | None = None


class LoyaltyView(Protocol):
    """The points one evaluation can see and spend (a fresh view per evaluation).

    ``card`` is a loyalty card identifier (card-based programs) or ``None`` (the profile).
    """

    def card(self, program_id: int) -> str | None:
        """The active card of this card-based program the session or event carries."""

    def spendable(self, program_id: int, subledger_id: str, card: str | None) -> float:
        """Active points not yet spent in this evaluation (``inf`` if the balance may go
        negative)."""

    def spend(self, program_id: int, subledger_id: str, card: str | None, points: float) -> None:
        """Spend points in this evaluation."""

    def earn(self, program_id: int, card: str | None, points: float) -> tuple[float, float]:
        """Count points earned on the main ledger in this evaluation; returns the points that
        decide the tier before and after."""


@dataclass(frozen=True, slots=True)
class CouponInfo:
    """A coupon as the rules see it; its usage comes from the :class:`Ledger`."""

    id: int
    campaign_id: int
    code: str
    usage_limit: int = 0
    start_date: datetime | None = None
    expiry_date: datetime | None = None
    recipient: str | None = None
    reservation_mandatory: bool = False


@dataclass(frozen=True, slots=True)
class ReferralInfo:
    """A referral code as the rules see it; its usage comes from the :class:`Ledger`."""

    id: int
    campaign_id: int
    code: str
    advocate: str
    friend: str | None = None
    usage_limit: int = 0
    start_date: datetime | None = None
    expiry_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class CampaignUsage:
    """How much of a campaign's budgets is spent."""

    coupon_redemptions: int = 0
    referral_redemptions: int = 0
    discount: float = 0.0
    coupons_created: int = 0
    referrals_created: int = 0

    def plus(self, change: CampaignUsage) -> CampaignUsage:
        """These counts changed by ``change``'s (negative ones give back), none below zero."""
        counts = {f.name: getattr(self, f.name) + getattr(change, f.name) for f in fields(self)}
        # type(value)() is the zero of the field's type: 0 or 0.0.
        return CampaignUsage(**{name: max(value, type(value)()) for name, value in counts.items()})


@dataclass(frozen=True, slots=True)
class ProfileUsage:
    """How much of a campaign's per-profile budgets one customer has spent."""

    coupon_redemptions: int = 0
    referral_redemptions: int = 0


@dataclass(frozen=True, slots=True)
class CouponDraft:
    """A coupon a ``createCoupon`` effect creates; stored unless the request is dry."""

    campaign_id: int
    code: str
    recipient: str
    usage_limit: int
    expiry_date: datetime | None = None
    referral_id: int | None = None

    def info(self, coupon_id: int) -> CouponInfo:
        """The coupon as stored under ``coupon_id`` (0: a dry request's, stored nowhere)."""
        return CouponInfo(
            coupon_id,
            self.campaign_id,
            self.code,
            self.usage_limit,
            expiry_date=self.expiry_date,
            recipient=self.recipient,
        )


@dataclass(frozen=True, slots=True)
class ReferralDraft:
    """A referral a ``createReferral`` effect creates; stored unless the request is dry."""

    campaign_id: int
    code: str
    advocate: str
    usage_limit: int
    expiry_date: datetime | None = None

    def info(self, referral_id: int) -> ReferralInfo:
        """The referral as stored under ``referral_id`` (0: a dry request's, stored nowhere)."""
        return ReferralInfo(
            referral_id,
            self.campaign_id,
            self.code,
            self.advocate,
            usage_limit=self.usage_limit,
            expiry_date=self.expiry_date,
        )


@dataclass(frozen=True, slots=True)
class GiveawayAward:
    """A giveaway code an ``awardGiveaway`` effect hands out."""

    pool_id: int
    giveaway_id: int
    code: str
    recipient: str


@dataclass(slots=True)
class Outcome:
    """The result of one evaluation.

    Attributes:
        effects: the effects, in Talon.One's JSON shape.
        triggered_campaign_ids: campaigns with at least one rule that fired.
        attribute_updates: ``(entity, name, value)`` from updateAttribute effects, entity being
            ``Profile`` or ``Session``.
        created_coupons: coupons of couponCreated effects (also those created before with the
            same code, when the same session is evaluated again).
        created_referrals: referrals of referralCreated effects.
        awarded_giveaways: giveaways of awardGiveaway effects.
    """

    effects: list[Effect] = field(default_factory=list)
    triggered_campaign_ids: list[int] = field(default_factory=list)
    attribute_updates: list[tuple[str, str, Any]] = field(default_factory=list)
    created_coupons: list[CouponDraft] = field(default_factory=list)
    created_referrals: list[ReferralDraft] = field(default_factory=list)
    awarded_giveaways: list[GiveawayAward] = field(default_factory=list)


class Ledger(Protocol):
    """What the engine asks about coupons, referrals, budgets and giveaway pools."""

    def coupon(self, code: str) -> CouponInfo | None:
        """The coupon with this code (compared case-insensitively), or ``None``."""

    def coupon_uses(self, coupon_id: int) -> int:
        """How often the coupon was redeemed."""

    def coupon_reserved(self, coupon_id: int, profile_id: str) -> bool:
        """Whether the coupon is reserved for the profile."""

    def referral(self, code: str) -> ReferralInfo | None:
        """The referral with this code (compared case-insensitively), or ``None``."""

    def referral_uses(self, referral_id: int) -> int:
        """How often the referral was redeemed."""

    def campaign_usage(self, campaign_id: int) -> CampaignUsage:
        """What the campaign's budgets have counted so far."""

    def profile_usage(self, campaign_id: int, profile_id: str) -> ProfileUsage:
        """What the campaign's per-profile budgets have counted for one customer."""

    def giveaway(self, pool_id: int, skip: int) -> tuple[int, str] | None:
        """``(id, code)`` of the pool's ``skip``-th unused giveaway, or ``None`` if none is left."""


class StaticLedger:
    """A :class:`Ledger` over the campaign file alone: nothing is used, reserved or spent yet."""

    def __init__(
        self,
        coupons: Mapping[str, CouponInfo],
        pools: Mapping[int, Sequence[tuple[int, str]]] | None = None,
    ) -> None:
        self._coupons = coupons
        self._pools = pools or {}

    def coupon(self, code: str) -> CouponInfo | None:
        return self._coupons.get(code.lower())

    def coupon_uses(self, coupon_id: int) -> int:
        return 0

    def coupon_reserved(self, coupon_id: int, profile_id: str) -> bool:
        return False

    def referral(self, code: str) -> ReferralInfo | None:
        return None

    def referral_uses(self, referral_id: int) -> int:
        return 0

    def campaign_usage(self, campaign_id: int) -> CampaignUsage:
        return CampaignUsage()

    def profile_usage(self, campaign_id: int, profile_id: str) -> ProfileUsage:
        return ProfileUsage()

    def giveaway(self, pool_id: int, skip: int) -> tuple[int, str] | None:
        codes = self._pools.get(pool_id, ())
        return codes[skip] if skip < len(codes) else None

"""What the Application has handed out: coupons, referrals, giveaways, and the campaign budgets.

:class:`PromotionLedger` is the emulator's live store of them. It answers the rule engine's
:class:`~talon_one_emulator.rules.facts.Ledger` questions, stores what evaluations create (coupons,
referrals,
awarded giveaways), counts redemptions when a session closes and gives them back when a closed
session is cancelled, reopened or partially returned. The ``*_json`` functions render the records
as Talon.One's Coupon, IntegrationCoupon, Referral, InventoryReferral and Giveaway.

Budgets follow Talon.One's life cycle: redemptions and discounts count on close and are reverted
by cancel and reopen (discounts also by returns); creations count when the coupon or referral is
created; a cancel gives back referral creations but never coupon creations, a reopen neither.

Per-profile records (redemption and reservation entries, per-profile budget counts, referred
friends, coupons created for a profile, referrals it advocates, giveaways awarded to it) are
listed per profile integration ID as they are made, so that :meth:`PromotionLedger.forget_profile`
drops them in time proportional to what the profile holds (the emulator forgets its oldest
profiles beyond a cap; see :class:`~talon_one_emulator.store.state.EmulatorState`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from talon_one_emulator.rules.facts import (
    CampaignUsage,
    CouponDraft,
    CouponInfo,
    GiveawayAward,
    Outcome,
    ProfileUsage,
    ReferralDraft,
    ReferralInfo,
)
from talon_one_emulator.times import add_times

__all__ = [
    "CampaignCounters",
    "CouponRecord",
    "GiveawayRecord",
    "PromotionLedger",
    "ReferralRecord",
    "awarded_json",
    "coupon_json",
    "created_json",
    "giveaway_json",
    "referral_json",
]

Effect = dict[str, Any]
_Holding = Literal["coupon", "campaign", "referred", "created coupon", "referral", "giveaway"]

_PATTERN_NAMESPACE = uuid.UUID("7d0e3a52-95c4-4b8e-b3f1-2c6a9e8d4f10")
DEFAULT_CODE_CHARACTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_MAX_CODE_ATTEMPTS = 1000
_DISCOUNT_TYPES = frozenset({"setDiscount", "setDiscountPerItem", "setDiscountPerAdditionalCost"})


InfoT = TypeVar("InfoT")


@dataclass(slots=True)
class IssuedCode(Generic[InfoT]):
    """What a coupon and a referral code share: what was issued, when, how often it was
    redeemed, and its custom attributes."""

    info: InfoT
    created: str
    usage_counter: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CouponRecord(IssuedCode[CouponInfo]):
    redemptions: dict[str, int] = field(default_factory=dict)
    """Redemptions per profile integration ID (no entry: none)."""
    reservations: dict[str, None] = field(default_factory=dict)
    """Profile integration IDs the coupon is reserved for, in reservation order."""
    referral_id: int | None = None

    def available(self) -> bool:
        limit = self.info.usage_limit
        return limit == 0 or self.usage_counter < limit


@dataclass(slots=True)
class ReferralRecord(IssuedCode[ReferralInfo]):
    referred: dict[str, int] = field(default_factory=dict)
    """The friends who redeemed the code, in the order of their first redemption, with how
    many times."""
    batch_id: str | None = None


@dataclass(slots=True)
class GiveawayRecord:
    id: int
    pool_id: int
    code: str
    created: str
    used: bool = False
    profile_integration_id: str | None = None
    profile_id: int | None = None


@dataclass(slots=True)
class CampaignCounters:
    """A campaign's spent budgets (``spent``: what its rules read) and each profile's own
    redemptions."""

    spent: CampaignUsage = field(default_factory=CampaignUsage)
    profile_coupons: dict[str, int] = field(default_factory=dict)
    profile_referrals: dict[str, int] = field(default_factory=dict)


def _bump(counts: dict[str, int], key: str, delta: int) -> None:
    """Change a count; a count of 0 is no entry, so that counts never pile up zeros."""
    count = counts.get(key, 0) + delta
    if count > 0:
        counts[key] = count
    else:
        counts.pop(key, None)


def patterned_code(pattern: str, characters: Sequence[str], seed: str) -> str:
    """``pattern`` with every ``#`` replaced by one of ``characters``, always the same per seed."""
    out = []
    number = 0
    round_ = 0
    for char in pattern:
        if char != "#":
            out.append(char)
            continue
        if number < len(characters):
            number = uuid.uuid5(_PATTERN_NAMESPACE, f"{seed}/{round_}").int
            round_ += 1
        number, index = divmod(number, len(characters))
        out.append(characters[index])
    return "".join(out)


class PromotionLedger:
    """The live coupons, referrals, giveaways and campaign counters of one Application.

    Args:
        coupons: the campaign file's coupons (the engine's, with their IDs).
        giveaways: per pool, ``(id, code)`` of its giveaways.
        created: when the Application's coupons and giveaways were created.
    """

    def __init__(
        self,
        coupons: Iterable[CouponInfo],
        giveaways: Mapping[int, Sequence[tuple[int, str]]],
        created: str,
    ) -> None:
        self.coupons: dict[int, CouponRecord] = {}
        self._coupons_by_code: dict[str, CouponRecord] = {}
        # IDs count every coupon and referral ever stored (forgotten ones included).
        self._coupon_count = 0
        self._referral_count = 0
        for info in coupons:
            self._store_coupon(CouponRecord(info, created))
        self.referrals: dict[int, ReferralRecord] = {}
        self._referrals_by_code: dict[str, ReferralRecord] = {}
        # One entry per campaign of the campaign file at most.
        self._counters: dict[int, CampaignCounters] = {}
        # The pools are the campaign file's: bounded by it.
        self.giveaways: dict[int, list[GiveawayRecord]] = {
            pool_id: [GiveawayRecord(gid, pool_id, code, created) for gid, code in codes]
            for pool_id, codes in giveaways.items()
        }
        self._giveaways_by_id = {
            record.id: record for pool in self.giveaways.values() for record in pool
        }
        self._pool_next: dict[int, int] = dict.fromkeys(self.giveaways, 0)
        self._held: dict[str, set[tuple[_Holding, int]]] = {}
        """Per profile integration ID, the records where it is a key or an owner."""

    # --- the rule engine's questions (talon_one_emulator.rules.facts.Ledger)
    # -----------------------------------

    def coupon(self, code: str) -> CouponInfo | None:
        record = self._coupons_by_code.get(code.lower())
        return record.info if record is not None else None

    def coupon_uses(self, coupon_id: int) -> int:
        return self.coupons[coupon_id].usage_counter

    def coupon_reserved(self, coupon_id: int, profile_id: str) -> bool:
        return profile_id in self.coupons[coupon_id].reservations

    def referral(self, code: str) -> ReferralInfo | None:
        record = self._referrals_by_code.get(code.lower())
        return record.info if record is not None else None

    def referral_uses(self, referral_id: int) -> int:
        return self.referrals[referral_id].usage_counter

    def campaign_usage(self, campaign_id: int) -> CampaignUsage:
        counters = self._counters.get(campaign_id)
        return CampaignUsage() if counters is None else counters.spent

    def profile_usage(self, campaign_id: int, profile_id: str) -> ProfileUsage:
        counters = self._counters.get(campaign_id)
        if counters is None:
            return ProfileUsage()
        return ProfileUsage(
            coupon_redemptions=counters.profile_coupons.get(profile_id, 0),
            referral_redemptions=counters.profile_referrals.get(profile_id, 0),
        )

    def giveaway(self, pool_id: int, skip: int) -> tuple[int, str] | None:
        pool = self.giveaways.get(pool_id)
        if pool is None:
            return None
        index = self._pool_next[pool_id] + skip
        if index >= len(pool):
            return None
        record = pool[index]
        return record.id, record.code

    # --- lookups -------------------------------------------------------------------------------

    def coupon_record(self, code: str) -> CouponRecord | None:
        """The coupon with this code, compared case-insensitively."""
        return self._coupons_by_code.get(code.lower())

    def referral_record(self, code: str) -> ReferralRecord | None:
        """The referral with this code, compared case-insensitively."""
        return self._referrals_by_code.get(code.lower())

    def counters(self, campaign_id: int) -> CampaignCounters:
        """The campaign's budget counters (created on first use)."""
        counters = self._counters.get(campaign_id)
        if counters is None:
            counters = self._counters[campaign_id] = CampaignCounters()
        return counters

    @property
    def referral_count(self) -> int:
        """How many referrals were ever stored (forgotten ones included)."""
        return self._referral_count

    def giveaways_of(self, profile_id: str) -> list[GiveawayRecord]:
        """The giveaways awarded to a profile."""
        return [
            record
            for pool in self.giveaways.values()
            for record in pool
            if record.profile_integration_id == profile_id
        ]

    # --- what evaluations create ---------------------------------------------------------------

    def store(self, outcome: Outcome, stamp: str, profile_ids: Callable[[str], int | None]) -> None:
        """Keep what a (non-dry) evaluation created: coupons, referrals, awarded giveaways.

        Re-evaluating a session names the same codes again; they are stored once.
        """
        for coupon in outcome.created_coupons:
            self.add_created_coupon(coupon, stamp)
        for referral in outcome.created_referrals:
            self.add_created_referral(referral, stamp)
        for award in outcome.awarded_giveaways:
            self._award(award, profile_ids(award.recipient))

    def add_created_coupon(self, draft: CouponDraft, stamp: str) -> CouponRecord:
        record = self._coupons_by_code.get(draft.code.lower())
        if record is None:
            info = draft.info(self._coupon_count + 1)
            record = self._store_coupon(CouponRecord(info, stamp, referral_id=draft.referral_id))
            self._spend(draft.campaign_id, CampaignUsage(coupons_created=1))
            if info.recipient:
                self._hold(info.recipient, "created coupon", info.id)
        return record

    def add_created_referral(self, draft: ReferralDraft, stamp: str) -> ReferralRecord:
        record = self._referrals_by_code.get(draft.code.lower())
        if record is None:
            record = self._store_referral(
                ReferralRecord(draft.info(self._referral_count + 1), stamp)
            )
            self._spend(draft.campaign_id, CampaignUsage(referrals_created=1))
        return record

    def add_referral(
        self,
        *,
        campaign_id: int,
        code: str,
        advocate: str,
        stamp: str,
        usage_limit: int = 0,
        friend: str | None = None,
        start_date: datetime | None = None,
        expiry_date: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        batch_id: str | None = None,
    ) -> ReferralRecord:
        """Store a new referral (the code must be free: see :meth:`free_referral_code`)."""
        info = ReferralInfo(
            id=self._referral_count + 1,
            campaign_id=campaign_id,
            code=code,
            advocate=advocate,
            friend=friend,
            usage_limit=usage_limit,
            start_date=start_date,
            expiry_date=expiry_date,
        )
        record = ReferralRecord(info, stamp, attributes=dict(attributes or {}), batch_id=batch_id)
        return self._store_referral(record)

    def free_referral_code(
        self, pattern: str | None = None, characters: Sequence[str] | None = None
    ) -> str:
        """A referral code no referral or coupon uses yet (``#`` in ``pattern``: a random char)."""
        pattern = pattern or "##########"
        characters = characters or DEFAULT_CODE_CHARACTERS
        attempt = 0
        while True:
            seed = f"referral/{self._referral_count + 1}/{attempt}"
            code = patterned_code(pattern, characters, seed)
            if code.lower() not in self._referrals_by_code:
                return code
            attempt += 1
            if attempt > _MAX_CODE_ATTEMPTS:  # the pattern has too few combinations
                raise ValueError(f"no free referral code left for the pattern {pattern!r}")

    def _store_coupon(self, record: CouponRecord) -> CouponRecord:
        self.coupons[record.info.id] = record
        self._coupons_by_code[record.info.code.lower()] = record
        self._coupon_count += 1
        return record

    def _store_referral(self, record: ReferralRecord) -> ReferralRecord:
        self.referrals[record.info.id] = record
        self._referrals_by_code[record.info.code.lower()] = record
        self._referral_count += 1
        # Referrals made through the API may name an advocate who is no profile (yet): they
        # are held under that ID all the same, and go when a profile of that ID is forgotten.
        self._hold(record.info.advocate, "referral", record.info.id)
        return record

    def _award(self, award: GiveawayAward, profile_id: int | None) -> None:
        pool = self.giveaways[award.pool_id]
        index = self._pool_next[award.pool_id]
        record = pool[index]
        if record.id != award.giveaway_id:
            return  # handed out meanwhile (a concurrent close): keep the pool consistent
        record.used = True
        record.profile_integration_id = award.recipient
        record.profile_id = profile_id
        self._pool_next[award.pool_id] = index + 1
        self._hold(award.recipient, "giveaway", record.id)

    # --- coupon reservations -------------------------------------------------------------------

    def reserve(self, record: CouponRecord, profile_id: str) -> None:
        """Reserve the coupon for a profile."""
        record.reservations[profile_id] = None
        self._hold(profile_id, "coupon", record.info.id)

    @staticmethod
    def unreserve(record: CouponRecord, profile_id: str) -> None:
        """Remove the coupon's reservation for a profile (if any)."""
        record.reservations.pop(profile_id, None)

    # --- forgetting profiles -------------------------------------------------------------------

    def _hold(self, profile_id: str, kind: _Holding, key: int) -> None:
        if profile_id:  # "" (anonymous sessions) is one key, never forgotten
            held = self._held.get(profile_id)
            if held is None:
                held = self._held[profile_id] = set()
            held.add((kind, key))

    def forget_profile(self, profile_id: str) -> None:
        """Drop what belongs to a forgotten profile: its redemption, reservation and budget
        entries, its referred-friend entries, the coupons created for it, the referrals it
        advocates; giveaways awarded to it stay handed out, without a recipient. Campaign-wide
        counters keep counting what it did."""
        for kind, key in self._held.pop(profile_id, ()):
            if kind == "coupon":
                coupon = self.coupons.get(key)
                if coupon is not None:
                    coupon.redemptions.pop(profile_id, None)
                    coupon.reservations.pop(profile_id, None)
            elif kind == "campaign":
                counters = self._counters[key]
                counters.profile_coupons.pop(profile_id, None)
                counters.profile_referrals.pop(profile_id, None)
            elif kind == "referred":
                referral = self.referrals.get(key)
                if referral is not None:
                    referral.referred.pop(profile_id, None)
            elif kind == "created coupon":
                created = self.coupons.pop(key, None)
                if created is not None:
                    del self._coupons_by_code[created.info.code.lower()]
            elif kind == "referral":
                referral = self.referrals.pop(key, None)
                if referral is not None:
                    del self._referrals_by_code[referral.info.code.lower()]
            else:
                giveaway = self._giveaways_by_id[key]
                if giveaway.profile_integration_id == profile_id:
                    giveaway.profile_integration_id = None
                    giveaway.profile_id = None

    # --- the session life cycle ----------------------------------------------------------------

    def redeem(self, closing_effects: Iterable[Effect], profile_id: str | None) -> None:
        """A session closed: count its coupon and referral redemptions and its discounts."""
        key = profile_id or ""
        for effect in closing_effects:
            effect_type = effect["effectType"]
            if effect_type == "acceptCoupon":
                coupon = self.coupons[effect["triggeredByCoupon"]]
                self._count_coupon(coupon, key, 1)
                self._hold(key, "coupon", coupon.info.id)
                self._hold(key, "campaign", coupon.info.campaign_id)
            elif effect_type == "acceptReferral":
                referral = self.referral_record(effect["props"]["value"])
                if referral is None:
                    continue
                self._count_referral(referral, key, 1)
                if key:
                    self._hold(key, "referred", referral.info.id)
                self._hold(key, "campaign", referral.info.campaign_id)
            elif effect_type in _DISCOUNT_TYPES:
                spent = CampaignUsage(discount=float(effect["props"]["value"]))
                self._spend(effect["campaignId"], spent)

    def _spend(self, campaign_id: int, change: CampaignUsage) -> CampaignCounters:
        """Change the campaign's spent budgets by ``change`` (negative counts give back)."""
        counters = self.counters(campaign_id)
        counters.spent = counters.spent.plus(change)
        return counters

    def _count_coupon(self, coupon: CouponRecord, key: str | None, delta: int) -> None:
        """Count a redemption of ``coupon`` (``delta`` 1) or give one back (-1); ``key``: the
        profile whose own counts change with it (``None``: no profile's)."""
        coupon.usage_counter = max(0, coupon.usage_counter + delta)
        counters = self._spend(coupon.info.campaign_id, CampaignUsage(coupon_redemptions=delta))
        if key is not None:
            _bump(coupon.redemptions, key, delta)
            _bump(counters.profile_coupons, key, delta)

    def _count_referral(self, referral: ReferralRecord, key: str | None, delta: int) -> None:
        """:meth:`_count_coupon` for a referral code (an anonymous session, ``key`` "", is
        counted for the campaign but refers no friend)."""
        referral.usage_counter = max(0, referral.usage_counter + delta)
        counters = self._spend(referral.info.campaign_id, CampaignUsage(referral_redemptions=delta))
        if key is not None:
            _bump(counters.profile_referrals, key, delta)
            if key:
                _bump(referral.referred, key, delta)

    def give_back(
        self,
        rollbacks: Iterable[Effect],
        profile_id: str | None,
        *,
        cancelled_effects: Iterable[Effect] = (),
        own_counts: bool = True,
    ) -> None:
        """Revert the budgets of rolled-back effects (cancel, reopen, return).

        ``cancelled_effects``: the closing effects of a cancelled session, whose referral
        creations are given back too (coupon creations never are). ``own_counts``: whether the
        profile's own counts (redemptions per profile, referred friends) are given back too;
        not when the profile the session closed for was forgotten since, as its counts were.
        """
        key = (profile_id or "") if own_counts else None
        for effect in rollbacks:
            effect_type = effect["effectType"]
            if effect_type == "rollbackCoupon":
                coupon = self.coupon_record(effect["props"]["value"])
                if coupon is None:
                    continue
                self._count_coupon(coupon, key, -1)
            elif effect_type == "rollbackReferral":
                referral = self.referral_record(effect["props"]["value"])
                if referral is None:
                    continue
                self._count_referral(referral, key, -1)
            elif effect_type == "rollbackDiscount":
                given_back = CampaignUsage(discount=-float(effect["props"]["value"]))
                self._spend(effect["campaignId"], given_back)
        for effect in cancelled_effects:
            if effect["effectType"] == "referralCreated":
                referral = self.referral_record(effect["props"]["value"])
                if referral is not None:
                    self._spend(referral.info.campaign_id, CampaignUsage(referrals_created=-1))


# --- JSON ----------------------------------------------------------------------------------------


def coupon_json(
    record: CouponRecord, *, profile_id: str | None = None, integration: bool = False
) -> dict[str, Any]:
    """Coupon, or IntegrationCoupon (with ``profileRedemptionCount``) when ``integration``."""
    info = record.info
    body: dict[str, Any] = {
        "id": info.id,
        "created": record.created,
        "campaignId": info.campaign_id,
        "value": info.code,
        "usageLimit": info.usage_limit,
        "usageCounter": record.usage_counter,
        "reservationCounter": len(record.reservations),
        "attributes": dict(record.attributes),
        "reservation": True,
        "isReservationMandatory": info.reservation_mandatory,
    }
    add_times(body, startDate=info.start_date, expiryDate=info.expiry_date)
    if info.recipient is not None:
        body["recipientIntegrationId"] = info.recipient
    if record.referral_id is not None:
        body["referralId"] = record.referral_id
    if integration:
        body["profileRedemptionCount"] = record.redemptions.get(profile_id or "", 0)
    return body


def draft_coupon_json(draft: CouponDraft, stamp: str) -> dict[str, Any]:
    """Coupon for a created coupon that was not stored (dry requests): it has ID 0."""
    return coupon_json(CouponRecord(draft.info(0), stamp, referral_id=draft.referral_id))


def referral_json(record: ReferralRecord, *, inventory: bool = False) -> dict[str, Any]:
    """Referral, or InventoryReferral (with ``referredCustomers``) when ``inventory``."""
    info = record.info
    body: dict[str, Any] = {
        "id": info.id,
        "created": record.created,
        "campaignId": info.campaign_id,
        "advocateProfileIntegrationId": info.advocate,
        "code": info.code,
        "usageCounter": record.usage_counter,
        "usageLimit": info.usage_limit,
        "attributes": dict(record.attributes),
    }
    if info.friend is not None:
        body["friendProfileIntegrationId"] = info.friend
    add_times(body, startDate=info.start_date, expiryDate=info.expiry_date)
    if record.batch_id is not None:
        body["batchId"] = record.batch_id
    if inventory:
        body["referredCustomers"] = list(record.referred)
    return body


def draft_referral_json(draft: ReferralDraft, stamp: str) -> dict[str, Any]:
    """Referral for a created referral that was not stored (dry requests): it has ID 0."""
    return referral_json(ReferralRecord(draft.info(0), stamp))


def giveaway_json(record: GiveawayRecord) -> dict[str, Any]:
    """Giveaway."""
    body: dict[str, Any] = {
        "id": record.id,
        "created": record.created,
        "code": record.code,
        "poolId": record.pool_id,
        "attributes": {},
        "used": record.used,
    }
    if record.profile_integration_id is not None:
        body["profileIntegrationId"] = record.profile_integration_id
    if record.profile_id is not None:
        body["profileId"] = record.profile_id
    return body


def created_json(
    ledger: PromotionLedger, outcome: Outcome, stamp: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``createdCoupons`` and ``createdReferrals`` of an evaluation (stored or, if dry, not)."""
    coupons = []
    for coupon in outcome.created_coupons:
        stored = ledger.coupon_record(coupon.code)
        coupons.append(coupon_json(stored) if stored else draft_coupon_json(coupon, stamp))
    referrals = []
    for referral in outcome.created_referrals:
        known = ledger.referral_record(referral.code)
        referrals.append(referral_json(known) if known else draft_referral_json(referral, stamp))
    return coupons, referrals


def awarded_json(ledger: PromotionLedger, outcome: Outcome, stamp: str) -> list[dict[str, Any]]:
    """``awardedGiveaways`` of an evaluation (stored or, if dry, not)."""
    out = []
    for award in outcome.awarded_giveaways:
        stored = next(
            (
                record
                for record in ledger.giveaways.get(award.pool_id, ())
                if record.id == award.giveaway_id and record.used
            ),
            None,
        )
        if stored is None:
            stored = GiveawayRecord(award.giveaway_id, award.pool_id, award.code, stamp)
            stored.profile_integration_id = award.recipient
        out.append(giveaway_json(stored))
    return out

"""The remaining customer profile operations: personal data, inventory and achievements.

* ``deleteCustomerData`` removes the attributes of a profile and of the entities referencing it
  (its sessions, the referrals it advocates, the coupons created for it); the profile, its
  sessions, points and codes stay.
* ``getCustomerInventory`` lists, per flag, the profile, its referrals, its coupons (reserved
  for it, created for it, or redeemed by it), its loyalty balances and cards, its giveaways and
  its achievements.
* ``getCustomerAchievements`` lists the achievements of the campaign file with the customer's
  progress; ``getCustomerAchievementHistory`` the progress history in one. The emulator has no
  effect that makes progress, so every achievement is ``not_started`` and histories are empty.

Unknown profiles (and achievements) are a 404.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.queries import Page
from talon_one_emulator.campaigns.loyalty import AchievementSpec
from talon_one_emulator.errors import NotFoundError
from talon_one_emulator.money import json_number
from talon_one_emulator.render.loyalty import loyalty_json
from talon_one_emulator.render.responses import profile_json
from talon_one_emulator.store.promotion_ledger import (
    CouponRecord,
    coupon_json,
    giveaway_json,
    referral_json,
)
from talon_one_emulator.times import add_times

if TYPE_CHECKING:
    from talon_one_emulator.store.state import EmulatorState, ProfileRecord

__all__ = ["INVENTORY_FLAGS", "AchievementFilter", "HistoryFilter", "ProfileService"]

Body = dict[str, Any]

INVENTORY_FLAGS = ("profile", "referrals", "coupons", "loyalty", "giveaways", "achievements")


@dataclass(frozen=True, slots=True)
class AchievementFilter:
    """The query of getCustomerAchievements (``None``: no filter)."""

    page: Page
    campaign_ids: tuple[str, ...] | None = None
    achievement_ids: tuple[str, ...] | None = None
    achievement_status: tuple[str, ...] = ("active",)
    progress_status: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """The query of getCustomerAchievementHistory."""

    page: Page
    progress_status: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None


def _coupon_state(
    state: EmulatorState, record: CouponRecord, profile_id: str, now: datetime
) -> str:
    """InventoryCoupon's ``state``: active, used, expired, pending or disabled."""
    info = record.info
    campaign = state.engine.campaign(info.campaign_id)
    if campaign is not None and not campaign.enabled:
        return "disabled"
    if info.start_date is not None and now < info.start_date:
        return "pending"
    if record.redemptions.get(profile_id, 0) > 0 or not record.available():
        return "used"
    if info.expiry_date is not None and now >= info.expiry_date:
        return "expired"
    return "active"


def _achievement_status(spec: AchievementSpec, now: datetime) -> str | None:
    """``active`` or ``scheduled``; ``None`` once it has ended."""
    if spec.end_date is not None and spec.end_date <= now:
        return None
    if spec.fixed_start_date is not None and spec.fixed_start_date > now:
        return "scheduled"
    return "active"


class ProfileService:
    """Profile data operations over one :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _profile(self, integration_id: str) -> ProfileRecord:
        profile = self.state.profiles.get(integration_id)
        if profile is None:
            raise NotFoundError(f'Customer profile "{integration_id}" not found')
        return profile

    # --- personal data -----------------------------------------------------------------------

    def delete_customer_data(self, integration_id: str) -> None:
        """deleteCustomerData (204): remove the attributes of the profile and of what refers
        to it.

        Raises:
            NotFoundError: no profile has this integration ID.
        """
        profile = self._profile(integration_id)
        profile.attributes.clear()
        for session in self.state.sessions.values():
            if session.profile_id == integration_id:
                session.attributes.clear()
        ledger = self.state.ledger
        for referral in ledger.referrals.values():
            if referral.info.advocate == integration_id:
                referral.attributes.clear()
        for coupon in ledger.coupons.values():
            if coupon.info.recipient == integration_id:
                coupon.attributes.clear()

    # --- inventory ---------------------------------------------------------------------------

    def get_inventory(self, integration_id: str, flags: Collection[str]) -> Body:
        """getCustomerInventory: CustomerInventory with the parts ``flags`` ask for.

        Raises:
            NotFoundError: no profile has this integration ID.
        """
        profile = self._profile(integration_id)
        state = self.state
        now = state.clock()
        body: Body = {}
        if "profile" in flags:
            body["profile"] = profile_json(state, profile)
        if "loyalty" in flags:
            store = state.loyalty
            body["loyalty"] = loyalty_json(
                store, integration_id, now, cards=store.cards_of(integration_id)
            )
        if "referrals" in flags:
            body["referrals"] = [
                referral_json(record, inventory=True)
                for record in state.ledger.referrals.values()
                if record.info.advocate == integration_id
            ]
        if "coupons" in flags:
            coupons = []
            for record in state.ledger.coupons.values():
                if (
                    record.info.recipient == integration_id
                    or integration_id in record.reservations
                    or record.redemptions.get(integration_id, 0) > 0
                ):
                    coupon = coupon_json(record, profile_id=integration_id, integration=True)
                    coupon["state"] = _coupon_state(state, record, integration_id, now)
                    coupons.append(coupon)
            body["coupons"] = coupons
        if "giveaways" in flags:
            body["giveaways"] = [
                giveaway_json(record) for record in state.ledger.giveaways_of(integration_id)
            ]
        if "achievements" in flags:
            body["achievements"] = [
                self._progress_with_definition(spec)
                for spec in state.campaigns.achievements
                if _achievement_status(spec, now) == "active"
            ]
        return body

    # --- achievements ------------------------------------------------------------------------

    def get_achievements(self, integration_id: str, query: AchievementFilter) -> Body:
        """getCustomerAchievements: ``{totalResultSize, data: [AchievementStatusEntry]}``.

        Raises:
            NotFoundError: no profile has this integration ID.
        """
        self._profile(integration_id)
        now = self.state.clock()
        entries = []
        for spec in self.state.campaigns.achievements:
            status = _achievement_status(spec, now)
            if status is None or status not in query.achievement_status:
                continue
            if query.campaign_ids is not None and str(spec.campaign_id) not in query.campaign_ids:
                continue
            if query.achievement_ids is not None and str(spec.id) not in query.achievement_ids:
                continue
            progress = self._progress(spec)
            if (
                query.progress_status is not None
                and progress["status"] not in query.progress_status
            ):
                continue
            entries.append(self._status_entry(spec, status, progress))
        page = query.page
        return {
            "totalResultSize": len(entries),
            "data": entries[page.skip : page.skip + page.size],
        }

    def get_achievement_history(
        self, integration_id: str, achievement_id: str, query: HistoryFilter
    ) -> Body:
        """getCustomerAchievementHistory: ``{totalResultSize, data: [AchievementProgress]}``.

        Raises:
            NotFoundError: no such profile or achievement.
        """
        self._profile(integration_id)
        spec = next(
            (spec for spec in self.state.campaigns.achievements if str(spec.id) == achievement_id),
            None,
        )
        if spec is None:
            raise NotFoundError(f"Achievement {achievement_id} not found")
        history: list[Body] = []  # nothing in the emulator makes progress
        return {
            "totalResultSize": len(history),
            "data": history[query.page.skip :][: query.page.size],
        }

    @staticmethod
    def _progress(spec: AchievementSpec) -> Body:
        """AchievementProgress of a customer who has not started the achievement."""
        return {"status": "not_started", "progress": 0}

    def _status_entry(self, spec: AchievementSpec, status: str, progress: Body) -> Body:
        body: Body = {
            "id": spec.id,
            "created": self.state.started,
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "target": json_number(spec.target),
            "recurrencePolicy": spec.recurrence_policy,
            "activationPolicy": spec.activation_policy,
            "allowRollbackAfterCompletion": spec.allow_rollback_after_completion,
            "campaignId": spec.campaign_id,
            "status": status,
            "currentProgress": progress,
        }
        if spec.period is not None:
            body["period"] = spec.period
        add_times(body, fixedStartDate=spec.fixed_start_date, endDate=spec.end_date)
        return body

    def _progress_with_definition(self, spec: AchievementSpec) -> Body:
        body: Body = {
            **self._progress(spec),
            "achievementId": spec.id,
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "campaignId": spec.campaign_id,
            "target": json_number(spec.target),
            "achievementRecurrencePolicy": spec.recurrence_policy,
            "achievementActivationPolicy": spec.activation_policy,
            "achievementAllowRollbackAfterCompletion": spec.allow_rollback_after_completion,
        }
        add_times(
            body,
            achievementFixedStartDate=spec.fixed_start_date,
            achievementEndDate=spec.end_date,
        )
        return body

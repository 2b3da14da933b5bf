"""Referral and coupon reservation operations of the Integration API.

* ``createReferral`` and ``createReferralsForMultipleAdvocates`` create referral codes in a
  referral campaign (one with ``referrals:`` in the campaign file); the campaign's referral
  budgets do not apply to them, as on Talon.One.
* Coupon reservations tie a coupon to customer profiles; a coupon with
  ``isReservationMandatory`` is only valid for the profiles it is reserved for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.validation import pointer, validate_body
from talon_one_emulator.campaigns.file import CampaignSpec
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError, NotFoundError
from talon_one_emulator.models.promotions import (
    CouponReservations,
    NewReferral,
    NewReferralsForMultipleAdvocates,
)
from talon_one_emulator.render.responses import profile_json
from talon_one_emulator.store.promotion_ledger import CouponRecord, coupon_json, referral_json

if TYPE_CHECKING:
    from talon_one_emulator.store.state import EmulatorState

__all__ = ["PromotionService"]

Body = dict[str, Any]


def _invalid(details: str, *at: str | int) -> InvalidDataError:
    return InvalidDataError((ApiErrorDetail("Invalid", details, pointer=pointer(*at)),))


class PromotionService:
    """Referrals and coupon reservations over one
    :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # --- referrals -----------------------------------------------------------------------------

    def _referral_campaign(self, campaign_id: int) -> CampaignSpec:
        campaign = self.state.engine.campaign(campaign_id)
        if campaign is None:
            raise _invalid(f"campaign {campaign_id} does not exist", "campaignId")
        if campaign.referrals is None:
            raise _invalid(f"campaign {campaign_id} is not a referral campaign", "campaignId")
        return campaign

    def _validity(
        self, campaign: CampaignSpec, start: datetime | None, expiry: datetime | None
    ) -> datetime | None:
        """The expiry date: the given one, or the campaign's default validity."""
        if start is not None and expiry is not None and expiry <= start:
            raise _invalid("expiryDate must be after startDate", "expiryDate")
        settings = campaign.referrals
        if expiry is None and settings is not None and settings.validity_days is not None:
            expiry = (start or self.state.clock()) + timedelta(days=settings.validity_days)
        return expiry

    def create_referral(self, body: Any) -> Body:
        """createReferral: one referral code for an advocate (201 Referral).

        Raises:
            InvalidDataError: the body is invalid or the campaign is not a referral campaign.
        """
        request = validate_body(NewReferral, body)
        campaign = self._referral_campaign(request.campaign_id)
        settings = campaign.referrals
        assert settings is not None  # checked by _referral_campaign
        ledger = self.state.ledger
        record = ledger.add_referral(
            campaign_id=campaign.id,
            code=ledger.free_referral_code(),
            advocate=request.advocate_profile_integration_id,
            stamp=self.state.now_stamp(),
            usage_limit=(
                request.usage_limit if request.usage_limit is not None else settings.usage_limit
            ),
            friend=request.friend_profile_integration_id or None,
            start_date=request.start_date,
            expiry_date=self._validity(campaign, request.start_date, request.expiry_date),
            attributes=request.attributes,
        )
        return referral_json(record)

    def create_referrals_for_multiple_advocates(
        self, body: Any, *, silent: bool = True
    ) -> Body | None:
        """createReferralsForMultipleAdvocates: a referral code per advocate, in one batch.

        Returns ``None`` when silent (the HTTP layer sends 204), else
        ``{totalResultSize, data: [Referral]}``.

        Raises:
            InvalidDataError: the body is invalid, the campaign is not a referral campaign, or
                the pattern has too few combinations for the codes asked for.
        """
        request = validate_body(NewReferralsForMultipleAdvocates, body)
        campaign = self._referral_campaign(request.campaign_id)
        settings = campaign.referrals
        assert settings is not None  # checked by _referral_campaign
        pattern = request.referral_pattern
        if pattern is not None and "#" not in pattern:
            raise _invalid("referralPattern needs at least one #", "referralPattern")
        expiry = self._validity(campaign, request.start_date, request.expiry_date)
        usage_limit = (
            request.usage_limit if request.usage_limit is not None else settings.usage_limit
        )
        ledger = self.state.ledger
        stamp = self.state.now_stamp()
        batch_id = f"batch-{ledger.referral_count + 1}"
        records = []
        for advocate in request.advocate_profile_integration_ids:
            try:
                code = ledger.free_referral_code(pattern, request.valid_characters)
            except ValueError as exc:
                raise _invalid(str(exc), "referralPattern") from exc
            records.append(
                ledger.add_referral(
                    campaign_id=campaign.id,
                    code=code,
                    advocate=advocate,
                    stamp=stamp,
                    usage_limit=usage_limit,
                    start_date=request.start_date,
                    expiry_date=expiry,
                    attributes=request.attributes,
                    batch_id=batch_id,
                )
            )
        if silent:
            return None
        return {
            "totalResultSize": len(records),
            "data": [referral_json(record) for record in records],
        }

    # --- coupon reservations -------------------------------------------------------------------

    def _coupon(self, value: str) -> CouponRecord:
        record = self.state.ledger.coupon_record(value)
        if record is None:
            raise NotFoundError(f'Coupon "{value}" not found')
        return record

    def create_coupon_reservation(self, coupon_value: str, body: Any) -> Body:
        """createCouponReservation: reserve the coupon for profiles (201 Coupon).

        Unknown profiles are created, so that the reserved customers can be listed.

        Raises:
            NotFoundError: no coupon has this code.
            InvalidDataError: the body is invalid.
        """
        record = self._coupon(coupon_value)
        request = validate_body(CouponReservations, body)
        stamp = self.state.now_stamp()
        for integration_id in request.integration_ids:
            self.state.ensure_profile(integration_id, stamp)
            self.state.ledger.reserve(record, integration_id)
        return coupon_json(record)

    def delete_coupon_reservation(self, coupon_value: str, body: Any) -> None:
        """deleteCouponReservation (204): remove the reservations of these profiles.

        Raises:
            NotFoundError: no coupon has this code.
            InvalidDataError: the body is invalid.
        """
        record = self._coupon(coupon_value)
        request = validate_body(CouponReservations, body)
        for integration_id in request.integration_ids:
            self.state.ledger.unreserve(record, integration_id)

    def get_reserved_customers(self, coupon_value: str) -> Body:
        """getReservedCustomers: ``{totalResultSize, data: [CustomerProfile]}``.

        Raises:
            NotFoundError: no coupon has this code.
        """
        record = self._coupon(coupon_value)
        profiles = [
            self.state.profiles[integration_id]
            for integration_id in record.reservations
            if integration_id in self.state.profiles
        ]
        return {
            "totalResultSize": len(profiles),
            "data": [profile_json(self.state, profile) for profile in profiles],
        }

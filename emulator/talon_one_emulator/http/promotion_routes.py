"""The route functions of the referral, coupon reservation, audience, catalog and campaign list
operations.

Each takes the :class:`~talon_one_emulator.api.operations.IntegrationService`, the request and its
parsed body,
and answers ``(status, body)``; :mod:`talon_one_emulator.app` registers them. Where the
specification
declares ``ErrorResponseWithStatus`` for 400, the error body carries ``StatusCode`` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.campaigns import CampaignFilter
from talon_one_emulator.api.queries import parse_int, parse_list, parse_moment, parse_page
from talon_one_emulator.api.validation import parse_silent
from talon_one_emulator.http.handler import no_content, with_status
from talon_one_emulator.http.protocol import Request

if TYPE_CHECKING:
    from talon_one_emulator.api.operations import IntegrationService

__all__ = [
    "best_prior_price",
    "create_audience",
    "create_coupon_reservation",
    "create_referral",
    "create_referrals_for_multiple_advocates",
    "delete_audience",
    "delete_audience_memberships",
    "delete_coupon_reservation",
    "get_reserved_customers",
    "integration_get_all_campaigns",
    "sync_catalog",
    "update_audience",
    "update_audience_customers_attributes",
    "update_customer_profile_audiences",
]

Result = tuple[int, Any]

_CAMPAIGN_PAGE_SIZE = 50


def create_referral(service: IntegrationService, _request: Request, body: Any) -> Result:
    return 201, service.promotions.create_referral(body)


@with_status
def create_referrals_for_multiple_advocates(
    service: IntegrationService, request: Request, body: Any
) -> Result:
    silent = parse_silent(request.query.get("silent"))
    response = service.promotions.create_referrals_for_multiple_advocates(body, silent=silent)
    return (204, None) if response is None else (201, response)


def _coupon_value(request: Request) -> str:
    return request.match_info["couponValue"]


@with_status
def create_coupon_reservation(service: IntegrationService, request: Request, body: Any) -> Result:
    return 201, service.promotions.create_coupon_reservation(_coupon_value(request), body)


@no_content
def delete_coupon_reservation(service: IntegrationService, request: Request, body: Any) -> None:
    service.promotions.delete_coupon_reservation(_coupon_value(request), body)


@with_status
def get_reserved_customers(service: IntegrationService, request: Request, _body: Any) -> Result:
    return 200, service.promotions.get_reserved_customers(_coupon_value(request))


def _audience_id(request: Request) -> str:
    return request.match_info["audienceId"]


@with_status
def create_audience(service: IntegrationService, _request: Request, body: Any) -> Result:
    return 201, service.audiences.create_audience(body)


@with_status
def update_audience(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, service.audiences.update_audience(_audience_id(request), body)


@no_content
def delete_audience(service: IntegrationService, request: Request, _body: Any) -> None:
    service.audiences.delete_audience(_audience_id(request))


@no_content
def delete_audience_memberships(service: IntegrationService, request: Request, _body: Any) -> None:
    service.audiences.delete_memberships(_audience_id(request))


@no_content
def update_customer_profile_audiences(
    service: IntegrationService, _request: Request, body: Any
) -> None:
    service.audiences.update_customer_audiences(body)


@no_content
def update_audience_customers_attributes(
    service: IntegrationService, request: Request, body: Any
) -> None:
    service.audiences.update_members_attributes(_audience_id(request), body)


def sync_catalog(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, service.catalogs.sync_catalog(request.match_info["catalogId"], body)


@with_status
def best_prior_price(service: IntegrationService, _request: Request, body: Any) -> Result:
    return 200, service.catalogs.best_prior_price(body)


@with_status
def integration_get_all_campaigns(
    service: IntegrationService, request: Request, _body: Any
) -> Result:
    query = request.query
    campaign_filter = CampaignFilter(
        page=parse_page(query, _CAMPAIGN_PAGE_SIZE),
        campaign_ids=parse_list(query, "campaignIds", csv=True),
        start_after=parse_moment(query, "startAfter"),
        start_before=parse_moment(query, "startBefore"),
        end_after=parse_moment(query, "endAfter"),
        end_before=parse_moment(query, "endBefore"),
        store_id=parse_int(query, "storeId"),
        audience_id=parse_int(query, "audienceId"),
    )
    return 200, service.campaigns.list_campaigns(campaign_filter)

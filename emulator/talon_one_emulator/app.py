"""The emulator application: the Talon.One routes and the admin API, served by
:mod:`talon_one_emulator.http.protocol`.

How a Talon.One call is answered (faults, auth, Idempotency-Key, latency, 409, request log) is in
:mod:`talon_one_emulator.http.handler`; the admin API in :mod:`talon_one_emulator.http.admin`.

Talon.One paths (as in the Integration API specification: every operation it lists)::

    PUT  /v2/customer_sessions/{customerSessionId}          updateCustomerSessionV2
    GET  /v2/customer_sessions/{customerSessionId}          getCustomerSession
    POST /v2/customer_sessions/{customerSessionId}/returns  returnCartItems
    PUT  /v2/customer_sessions/{customerSessionId}/reopen   reopenCustomerSession
    PUT  /v2/customer_profiles/{integrationId}              updateCustomerProfileV2
    PUT  /v2/customer_profiles                              updateCustomerProfilesV2
    POST /v2/events                                         trackEventV2
    POST /v3/events                                         trackEventV3
    GET  /v3/events/{integrationId}                         getEventV3
    GET  /v1/integration/campaigns                          integrationGetAllCampaigns
    POST /v1/referrals                                      createReferral
    POST /v1/referrals_for_multiple_advocates               createReferralsForMultipleAdvocates
    POST /v1/coupon_reservations/{couponValue}              createCouponReservation
    DELETE /v1/coupon_reservations/{couponValue}            deleteCouponReservation
    GET  /v1/coupon_reservations/customerprofiles/{couponValue}  getReservedCustomers
    POST /v2/audiences                                      createAudienceV2
    PUT  /v2/audiences/{audienceId}                         updateAudienceV2
    DELETE /v2/audiences/{audienceId}                       deleteAudienceV2
    DELETE /v2/audiences/{audienceId}/memberships           deleteAudienceMembershipsV2
    POST /v2/customer_audiences                             updateCustomerProfileAudiences
    PUT  /v2/audience_customers/{audienceId}/attributes     updateAudienceCustomersAttributes
    PUT  /v1/catalogs/{catalogId}/sync                      syncCatalog
    POST /v1/best_prior_price                               bestPriorPrice
    GET  /v1/loyalty_programs/{id}/profile/{integrationId}/balances       getLoyaltyBalances
    GET  /v1/loyalty_programs/{id}/profile/{integrationId}/transactions
                                                getLoyaltyProgramProfileTransactions
    GET  /v1/loyalty_programs/{id}/profile/{integrationId}/points
                                                getLoyaltyProgramProfilePoints
    POST /v1/loyalty_programs/{id}/profile/{integrationId}/delete_transactions
                                                deleteLoyaltyTransactionsFromLedgers
    POST /v1/loyalty_programs/{id}/profile/{integrationId}/join        joinLoyaltyProgram
    POST /v1/loyalty_programs/{id}/activate_points          activateLoyaltyPoints
    POST /v1/loyalty_programs/{id}/cards                    generateLoyaltyCard
    GET  /v1/loyalty_programs/{id}/cards/{loyaltyCardId}/balances      getLoyaltyCardBalances
    GET  /v1/loyalty_programs/{id}/cards/{loyaltyCardId}/transactions  getLoyaltyCardTransactions
    GET  /v1/loyalty_programs/{id}/cards/{loyaltyCardId}/points        getLoyaltyCardPoints
    POST /v2/loyalty_programs/{id}/cards/{loyaltyCardId}/link_profile  linkLoyaltyCardToProfile
    POST /v2/loyalty_programs/{id}/cards/{loyaltyCardId}/unlink_profile
                                                unlinkLoyaltyCardFromProfile
    DELETE /v1/customer_data/{integrationId}                deleteCustomerData
    GET  /v1/customer_profiles/{integrationId}/inventory    getCustomerInventory
    GET  /v1/customer_profiles/{integrationId}/achievements getCustomerAchievements
    GET  /v1/customer_profiles/{integrationId}/achievements/{achievementId}
                                                getCustomerAchievementHistory

Admin paths (no auth) under ``/__emulator``: see :mod:`talon_one_emulator.http.admin`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.validation import parse_bool, parse_silent, parse_time
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError
from talon_one_emulator.http import promotion_routes as promo
from talon_one_emulator.http import protocol as http
from talon_one_emulator.http.admin import ADMIN_PREFIX, admin_routes
from talon_one_emulator.http.faults import FaultInjector
from talon_one_emulator.http.handler import Operation, Result, Sleep, TalonHandler, with_status
from talon_one_emulator.http.idempotency import IdempotencyStore
from talon_one_emulator.http.loyalty_routes import loyalty_routes
from talon_one_emulator.http.protocol import Request, Route, Router
from talon_one_emulator.notifications.outbox import NotificationOutbox
from talon_one_emulator.notifications.sender import NotificationSender
from talon_one_emulator.store.state import EmulatorState

__all__ = ["ADMIN_PREFIX", "EmulatorApp", "create_app"]

_Operation = Operation
_Result = Result


def _session_id(request: Request) -> str:
    return request.match_info["customerSessionId"]


def _update_session(service: IntegrationService, request: Request, body: Any) -> _Result:
    query = request.query
    dry = parse_bool("dry", query.get("dry"))
    now = parse_time("now", query.get("now"))
    return 200, service.update_customer_session(_session_id(request), body, dry=dry, now=now)


def _get_session(service: IntegrationService, request: Request, _body: Any) -> _Result:
    return 200, service.get_customer_session(_session_id(request))


def _return_items(service: IntegrationService, request: Request, body: Any) -> _Result:
    dry = parse_bool("dry", request.query.get("dry"))
    return 200, service.return_cart_items(_session_id(request), body, dry=dry)


def _reopen(service: IntegrationService, request: Request, _body: Any) -> _Result:
    return 200, service.reopen_customer_session(_session_id(request))


def _update_profile(service: IntegrationService, request: Request, body: Any) -> _Result:
    query = request.query
    run_rule_engine = parse_bool("runRuleEngine", query.get("runRuleEngine"))
    dry = parse_bool("dry", query.get("dry"))
    integration_id = request.match_info["integrationId"]
    response = service.update_customer_profile(
        integration_id, body, run_rule_engine=run_rule_engine, dry=dry
    )
    return 200, response


def _event_flags(request: Request) -> tuple[bool, bool]:
    """``(silent, dry)`` of a track event call (v2 or v3); ``forceCompleteEvaluation`` needs
    ``dry`` (every campaign is evaluated anyway: evaluation modes are not emulated)."""
    query = request.query
    silent = parse_silent(query.get("silent"))
    dry = parse_bool("dry", query.get("dry"))
    if parse_bool("forceCompleteEvaluation", query.get("forceCompleteEvaluation")) and not dry:
        details = "forceCompleteEvaluation can only be used together with dry=true"
        detail = ApiErrorDetail("Invalid", details, parameter="forceCompleteEvaluation")
        raise InvalidDataError((detail,))
    return silent, dry


def _track_event(service: IntegrationService, request: Request, body: Any) -> _Result:
    silent, dry = _event_flags(request)
    response = service.track_event(body, silent=silent, dry=dry)
    return (204, None) if response is None else (200, response)


@with_status
def _track_event_v3(service: IntegrationService, request: Request, body: Any) -> _Result:
    # The specification declares only 200 here, but its silent parameter (default yes) says
    # "yes" answers 204, as for trackEventV2: the parameter is followed.
    silent, dry = _event_flags(request)
    response = service.track_advanced_event(body, silent=silent, dry=dry)
    return (204, None) if response is None else (200, response)


@with_status
def _get_event_v3(service: IntegrationService, request: Request, _body: Any) -> _Result:
    return 200, service.get_advanced_event(request.match_info["integrationId"])


def _update_profiles(service: IntegrationService, request: Request, body: Any) -> _Result:
    silent = parse_silent(request.query.get("silent"))
    response = service.update_customer_profiles(body, silent=silent)
    return (204, None) if response is None else (200, response)


def _promotion_routes(api: TalonHandler) -> list[Route]:
    """Referrals, coupon reservations, audiences, catalogs and the running campaigns."""
    reservations = "/v1/coupon_reservations"
    audience = "/v2/audiences/{audienceId}"
    return [
        http.post("/v1/referrals", api.route(_Operation("createReferral", promo.create_referral))),
        http.post(
            "/v1/referrals_for_multiple_advocates",
            api.route(
                _Operation(
                    "createReferralsForMultipleAdvocates",
                    promo.create_referrals_for_multiple_advocates,
                )
            ),
        ),
        http.post(
            f"{reservations}/{{couponValue}}",
            api.route(_Operation("createCouponReservation", promo.create_coupon_reservation)),
        ),
        http.delete(
            f"{reservations}/{{couponValue}}",
            api.route(_Operation("deleteCouponReservation", promo.delete_coupon_reservation)),
        ),
        http.get(
            f"{reservations}/customerprofiles/{{couponValue}}",
            api.route(
                _Operation("getReservedCustomers", promo.get_reserved_customers, reads_body=False)
            ),
        ),
        http.post(
            "/v2/audiences", api.route(_Operation("createAudienceV2", promo.create_audience))
        ),
        http.put(audience, api.route(_Operation("updateAudienceV2", promo.update_audience))),
        http.delete(
            audience,
            api.route(_Operation("deleteAudienceV2", promo.delete_audience, reads_body=False)),
        ),
        http.delete(
            f"{audience}/memberships",
            api.route(
                _Operation(
                    "deleteAudienceMembershipsV2",
                    promo.delete_audience_memberships,
                    reads_body=False,
                )
            ),
        ),
        http.post(
            "/v2/customer_audiences",
            api.route(
                _Operation(
                    "updateCustomerProfileAudiences", promo.update_customer_profile_audiences
                )
            ),
        ),
        http.put(
            "/v2/audience_customers/{audienceId}/attributes",
            api.route(
                _Operation(
                    "updateAudienceCustomersAttributes", promo.update_audience_customers_attributes
                )
            ),
        ),
        http.put(
            "/v1/catalogs/{catalogId}/sync",
            api.route(_Operation("syncCatalog", promo.sync_catalog)),
        ),
        http.post(
            "/v1/best_prior_price", api.route(_Operation("bestPriorPrice", promo.best_prior_price))
        ),
        http.get(
            "/v1/integration/campaigns",
            api.route(
                _Operation(
                    "integrationGetAllCampaigns",
                    promo.integration_get_all_campaigns,
                    reads_body=False,
                )
            ),
        ),
    ]


@dataclass(frozen=True, slots=True)
class EmulatorApp:
    """One emulated Talon.One application: its routes and the stores behind them."""

    router: Router
    state: EmulatorState
    faults: FaultInjector
    idempotency: IdempotencyStore
    #: Sends the outbound notifications (None: no webhook is configured).
    notifications: NotificationSender | None = None


def create_app(
    config: EmulatorConfig,
    *,
    state: EmulatorState | None = None,
    sleep: Sleep = asyncio.sleep,
    faults: FaultInjector | None = None,
    idempotency: IdempotencyStore | None = None,
) -> EmulatorApp:
    """The emulator's routes over its stores (serve them with :mod:`talon_one_emulator.server`).

    Args:
        config: keys, campaigns, faults and IDs.
        state: the store to serve (default: a new one from ``config``); tests keep a reference
            to read the request log.
        sleep: awaited with the latency in seconds (injectable so tests need not wait).
        faults: the fault injector (default: a new one with ``config.fault_settings``).
        idempotency: the Idempotency-Key store (default: a new one from ``config``).
    """
    if state is None:
        state = EmulatorState(
            config.campaigns,
            application_id=config.application_id,
            account_id=config.account_id,
            request_log_size=config.request_log_size,
            max_sessions=config.max_sessions,
            max_profiles=config.max_profiles,
            max_events=config.max_events,
        )
    if faults is None:
        faults = FaultInjector(config.fault_settings)
    if idempotency is None:
        idempotency = IdempotencyStore(config.idempotency_ttl_s, config.idempotency_capacity)
    sender = None
    if config.notifications.enabled:
        sender = NotificationSender(config.notifications)
        state.notifications = NotificationOutbox(state, sender)
    api = TalonHandler(config.api_keys, state, faults, idempotency, config.concurrency_limit, sleep)
    sessions = "/v2/customer_sessions/{customerSessionId}"
    routes = [
        *admin_routes(state, faults, idempotency, api.set_api_keys),
        http.put(
            sessions,
            api.route(_Operation("updateCustomerSessionV2", _update_session, gate="session")),
        ),
        http.get(
            sessions, api.route(_Operation("getCustomerSession", _get_session, reads_body=False))
        ),
        http.post(f"{sessions}/returns", api.route(_Operation("returnCartItems", _return_items))),
        http.put(
            f"{sessions}/reopen",
            api.route(_Operation("reopenCustomerSession", _reopen, reads_body=False)),
        ),
        http.put(
            "/v2/customer_profiles/{integrationId}",
            api.route(_Operation("updateCustomerProfileV2", _update_profile, gate="profile")),
        ),
        http.put(
            "/v2/customer_profiles",
            api.route(_Operation("updateCustomerProfilesV2", _update_profiles)),
        ),
        http.post(
            "/v2/events", api.route(_Operation("trackEventV2", _track_event, gate="profile"))
        ),
        http.post(
            "/v3/events", api.route(_Operation("trackEventV3", _track_event_v3, gate="profile"))
        ),
        http.get(
            "/v3/events/{integrationId}",
            api.route(_Operation("getEventV3", _get_event_v3, reads_body=False)),
        ),
        *_promotion_routes(api),
        *loyalty_routes(api),
    ]
    return EmulatorApp(Router(routes, api.not_found), state, faults, idempotency, sender)

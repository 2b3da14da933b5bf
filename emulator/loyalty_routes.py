"""The HTTP side of the loyalty and profile data operations: query parsing and the route table.

Each route function takes the :class:`~emulator.operations.IntegrationService`, the request and
its parsed body and answers ``(status, body)``; :func:`loyalty_routes` lists them for
:mod:`emulator.app`. Every error of these operations is an ErrorResponseWithStatus (with
``StatusCode``), as the specification declares.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, cast

from emulator import http
from emulator.errors import ApiError, ApiErrorDetail, InvalidDataError
from emulator.handler import Operation, TalonHandler
from emulator.http import Request, Route
from emulator.loyalty_ledger import Status
from emulator.loyalty_service import LoyaltyService, PointsFilter, TransactionFilter
from emulator.profiles import INVENTORY_FLAGS, AchievementFilter, HistoryFilter, ProfileService
from emulator.queries import (
    MAX_PAGE_SIZE,
    Query,
    parse_enum,
    parse_list,
    parse_moment,
    parse_page,
)
from emulator.validation import parse_bool

if TYPE_CHECKING:
    from emulator.operations import IntegrationService

__all__ = ["loyalty_routes"]

Result = tuple[int, Any]
_Run = Callable[["IntegrationService", Request, Any], Result]

_LIST_PAGE_SIZE = 50
_TRANSACTION_TYPES = ("manual", "session", "import")
_POINT_STATUSES = ("active", "pending", "expired")
_POINT_SORTS = ("startDate", "expiryDate", "-startDate", "-expiryDate")


def _with_status(run: _Run) -> _Run:
    """Errors of this operation are ErrorResponseWithStatus (with ``StatusCode``)."""

    @wraps(run)
    def wrapped(service: IntegrationService, request: Request, body: Any) -> Result:
        try:
            return run(service, request, body)
        except ApiError as exc:
            exc.with_status = True
            raise

    return wrapped


def _loyalty(service: IntegrationService) -> LoyaltyService:
    return LoyaltyService(service.state)


def _profiles(service: IntegrationService) -> ProfileService:
    return ProfileService(service.state)


def _path(request: Request, name: str) -> str:
    return request.match_info[name]


def _query(request: Request) -> Query:
    return request.query


# --- query parsing ------------------------------------------------------------------------------


def _transaction_filter(query: Query) -> TransactionFilter:
    awaits = query.get("awaitsActivation")
    if awaits is not None and not parse_bool("awaitsActivation", awaits):
        detail = ApiErrorDetail(
            "Invalid", "awaitsActivation can only be true", parameter="awaitsActivation"
        )
        raise InvalidDataError((detail,))
    kinds = parse_enum(query, "loyaltyTransactionType", _TRANSACTION_TYPES)
    return TransactionFilter(
        page=parse_page(query, _LIST_PAGE_SIZE),
        subledger_ids=parse_list(query, "subledgerId"),
        transaction_type=kinds[0] if kinds else None,
        start=parse_moment(query, "startDate"),
        end=parse_moment(query, "endDate"),
        session_ids=parse_list(query, "customerSessionIDs"),
        uuids=parse_list(query, "transactionUUIDs"),
        awaits_activation=awaits is not None,
    )


def _points_filter(query: Query) -> PointsFilter:
    status = parse_enum(query, "status", _POINT_STATUSES)
    sort = parse_enum(query, "sort", _POINT_SORTS)
    return PointsFilter(
        page=parse_page(query, _LIST_PAGE_SIZE),
        status=cast(Status, status[0]) if status else "active",
        subledger_ids=parse_list(query, "subledgerId"),
        session_ids=parse_list(query, "customerSessionIDs"),
        uuids=parse_list(query, "transactionUUIDs"),
        sort=sort[0] if sort else None,
    )


# --- loyalty programs ---------------------------------------------------------------------------


@_with_status
def get_loyalty_balances(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    return 200, _loyalty(service).get_balances(
        _path(request, "loyaltyProgramId"),
        _path(request, "integrationId"),
        end_date=parse_moment(query, "endDate"),
        subledger_id=query.get("subledgerId"),
        include_tiers=parse_bool("includeTiers", query.get("includeTiers")),
        include_projected_tier=parse_bool(
            "includeProjectedTier", query.get("includeProjectedTier")
        ),
    )


@_with_status
def get_profile_transactions(service: IntegrationService, request: Request, _body: Any) -> Result:
    return 200, _loyalty(service).get_profile_transactions(
        _path(request, "loyaltyProgramId"),
        _path(request, "integrationId"),
        _transaction_filter(_query(request)),
    )


@_with_status
def get_profile_points(service: IntegrationService, request: Request, _body: Any) -> Result:
    return 200, _loyalty(service).get_profile_points(
        _path(request, "loyaltyProgramId"),
        _path(request, "integrationId"),
        _points_filter(_query(request)),
    )


@_with_status
def delete_transactions(service: IntegrationService, request: Request, body: Any) -> Result:
    _loyalty(service).delete_transactions(
        _path(request, "loyaltyProgramId"), _path(request, "integrationId"), body
    )
    return 204, None


@_with_status
def activate_points(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).activate_points(_path(request, "loyaltyProgramId"), body)


# --- loyalty cards ------------------------------------------------------------------------------


@_with_status
def get_card_balances(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    return 200, _loyalty(service).get_card_balances(
        _path(request, "loyaltyProgramId"),
        _path(request, "loyaltyCardId"),
        end_date=parse_moment(query, "endDate"),
        subledger_ids=parse_list(query, "subledgerId"),
    )


@_with_status
def get_card_transactions(service: IntegrationService, request: Request, _body: Any) -> Result:
    return 200, _loyalty(service).get_card_transactions(
        _path(request, "loyaltyProgramId"),
        _path(request, "loyaltyCardId"),
        _transaction_filter(_query(request)),
    )


@_with_status
def get_card_points(service: IntegrationService, request: Request, _body: Any) -> Result:
    return 200, _loyalty(service).get_card_points(
        _path(request, "loyaltyProgramId"),
        _path(request, "loyaltyCardId"),
        _points_filter(_query(request)),
    )


@_with_status
def link_card(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).link_card(
        _path(request, "loyaltyProgramId"), _path(request, "loyaltyCardId"), body
    )


@_with_status
def unlink_card(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).unlink_card(
        _path(request, "loyaltyProgramId"), _path(request, "loyaltyCardId"), body
    )


@_with_status
def generate_card(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).generate_card(_path(request, "loyaltyProgramId"), body)


# --- customer profiles --------------------------------------------------------------------------


@_with_status
def delete_customer_data(service: IntegrationService, request: Request, _body: Any) -> Result:
    _profiles(service).delete_customer_data(_path(request, "integrationId"))
    return 204, None


@_with_status
def get_inventory(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    flags = [name for name in INVENTORY_FLAGS if parse_bool(name, query.get(name))]
    return 200, _profiles(service).get_inventory(_path(request, "integrationId"), flags)


@_with_status
def get_achievements(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    status = parse_enum(
        query,
        "achievementStatus",
        ("active", "scheduled"),
        parse_list(query, "achievementStatus", csv=True),
    )
    progress = parse_enum(
        query,
        "currentProgressStatus",
        ("inprogress", "completed", "not_started"),
        parse_list(query, "currentProgressStatus", csv=True),
    )
    achievement_filter = AchievementFilter(
        page=parse_page(query, MAX_PAGE_SIZE),
        campaign_ids=parse_list(query, "campaignIds", csv=True),
        achievement_ids=parse_list(query, "achievementIds", csv=True),
        achievement_status=status or ("active",),
        progress_status=progress,
    )
    return 200, _profiles(service).get_achievements(
        _path(request, "integrationId"), achievement_filter
    )


@_with_status
def get_achievement_history(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    achievement_id = _path(request, "achievementId")
    if not achievement_id.isdigit():
        details = f"achievementId must be an integer, got {achievement_id!r}"
        raise InvalidDataError(
            (ApiErrorDetail("Invalid type", details, parameter="achievementId"),)
        )
    history_filter = HistoryFilter(
        page=parse_page(query, MAX_PAGE_SIZE),
        progress_status=parse_enum(
            query,
            "progressStatus",
            ("inprogress", "completed", "expired"),
            parse_list(query, "progressStatus", csv=True),
        ),
        start=parse_moment(query, "startDate"),
        end=parse_moment(query, "endDate"),
    )
    return 200, _profiles(service).get_achievement_history(
        _path(request, "integrationId"), achievement_id, history_filter
    )


# --- the route table ----------------------------------------------------------------------------


def loyalty_routes(api: TalonHandler) -> list[Route]:
    """Loyalty programs, loyalty cards, customer data, inventory and achievements."""
    program = "/v1/loyalty_programs/{loyaltyProgramId}"
    profile = f"{program}/profile/{{integrationId}}"
    card = f"{program}/cards/{{loyaltyCardId}}"
    card_v2 = "/v2/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}"
    customer = "/v1/customer_profiles/{integrationId}"

    def get(path: str, name: str, run: _Run) -> Route:
        return http.get(path, api.route(Operation(name, run, reads_body=False)))

    def post(path: str, name: str, run: _Run) -> Route:
        return http.post(path, api.route(Operation(name, run)))

    return [
        get(f"{profile}/balances", "getLoyaltyBalances", get_loyalty_balances),
        get(
            f"{profile}/transactions",
            "getLoyaltyProgramProfileTransactions",
            get_profile_transactions,
        ),
        get(f"{profile}/points", "getLoyaltyProgramProfilePoints", get_profile_points),
        post(
            f"{profile}/delete_transactions",
            "deleteLoyaltyTransactionsFromLedgers",
            delete_transactions,
        ),
        post(f"{program}/activate_points", "activateLoyaltyPoints", activate_points),
        post(f"{program}/cards", "generateLoyaltyCard", generate_card),
        get(f"{card}/balances", "getLoyaltyCardBalances", get_card_balances),
        get(f"{card}/transactions", "getLoyaltyCardTransactions", get_card_transactions),
        get(f"{card}/points", "getLoyaltyCardPoints", get_card_points),
        post(f"{card_v2}/link_profile", "linkLoyaltyCardToProfile", link_card),
        post(f"{card_v2}/unlink_profile", "unlinkLoyaltyCardFromProfile", unlink_card),
        http.delete(
            "/v1/customer_data/{integrationId}",
            api.route(Operation("deleteCustomerData", delete_customer_data, reads_body=False)),
        ),
        get(f"{customer}/inventory", "getCustomerInventory", get_inventory),
        get(f"{customer}/achievements", "getCustomerAchievements", get_achievements),
        get(
            f"{customer}/achievements/{{achievementId}}",
            "getCustomerAchievementHistory",
            get_achievement_history,
        ),
    ]

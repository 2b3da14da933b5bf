"""The HTTP side of the loyalty and profile data operations: query parsing and the route table.

Each route function takes the :class:`~talon_one_emulator.api.operations.IntegrationService`, the
request and
its parsed body and answers ``(status, body)``; :func:`loyalty_routes` lists them for
:mod:`talon_one_emulator.app`. Every error of these operations is an ErrorResponseWithStatus (with
``StatusCode``), as the specification declares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from talon_one_emulator.api.loyalty import LoyaltyService, PointsFilter, TransactionFilter
from talon_one_emulator.api.profile_data import (
    INVENTORY_FLAGS,
    AchievementFilter,
    HistoryFilter,
    ProfileService,
)
from talon_one_emulator.api.queries import (
    MAX_PAGE_SIZE,
    Query,
    parse_enum,
    parse_list,
    parse_moment,
    parse_page,
)
from talon_one_emulator.api.validation import parse_bool
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError
from talon_one_emulator.http import protocol as http
from talon_one_emulator.http.handler import Operation, Run, TalonHandler, with_status
from talon_one_emulator.http.protocol import Request, Route
from talon_one_emulator.store.loyalty_ledger import Status

if TYPE_CHECKING:
    from talon_one_emulator.api.operations import IntegrationService

__all__ = ["loyalty_routes"]

Result = tuple[int, Any]
_T = TypeVar("_T")

_LIST_PAGE_SIZE = 50
_TRANSACTION_TYPES = ("manual", "session", "import")
_POINT_STATUSES = ("active", "pending", "expired")
_POINT_SORTS = ("startDate", "expiryDate", "-startDate", "-expiryDate")


def _loyalty(service: IntegrationService) -> LoyaltyService:
    return LoyaltyService(service.state)


def _profiles(service: IntegrationService) -> ProfileService:
    return ProfileService(service.state)


def _path(request: Request, name: str) -> str:
    return request.match_info[name]


def _query(request: Request) -> Query:
    return request.query


# --- query parsing ------------------------------------------------------------------------------

# The filters take the request and its body: they are the ``argument`` of :func:`_owned`.


def _transaction_filter(request: Request, _body: Any) -> TransactionFilter:
    query = _query(request)
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


def _points_filter(request: Request, _body: Any) -> PointsFilter:
    query = _query(request)
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


def _owned(
    act: Callable[[LoyaltyService, str, str, _T], Any],
    owner: str,
    argument: Callable[[Request, Any], _T],
) -> Run:
    """The route of ``act`` on what a profile or a card (the ``owner`` path parameter) holds in
    a loyalty program: 200 and its answer. ``argument`` is what else ``act`` takes, from the
    request and its body."""

    @with_status
    def run(service: IntegrationService, request: Request, body: Any) -> Result:
        program_id = _path(request, "loyaltyProgramId")
        owner_id = _path(request, owner)
        return 200, act(_loyalty(service), program_id, owner_id, argument(request, body))

    return run


def _request_body(_request: Request, body: Any) -> Any:
    return body


@with_status
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


get_profile_transactions = _owned(
    LoyaltyService.get_profile_transactions, "integrationId", _transaction_filter
)
get_profile_points = _owned(LoyaltyService.get_profile_points, "integrationId", _points_filter)


@with_status
def delete_transactions(service: IntegrationService, request: Request, body: Any) -> Result:
    _loyalty(service).delete_transactions(
        _path(request, "loyaltyProgramId"), _path(request, "integrationId"), body
    )
    return 204, None


@with_status
def join_program(service: IntegrationService, request: Request, _body: Any) -> Result:
    _loyalty(service).join_program(
        _path(request, "loyaltyProgramId"), _path(request, "integrationId")
    )
    return 200, None  # the specification's 200 has no content


@with_status
def activate_points(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).activate_points(_path(request, "loyaltyProgramId"), body)


# --- loyalty cards ------------------------------------------------------------------------------


@with_status
def get_card_balances(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    return 200, _loyalty(service).get_card_balances(
        _path(request, "loyaltyProgramId"),
        _path(request, "loyaltyCardId"),
        end_date=parse_moment(query, "endDate"),
        subledger_ids=parse_list(query, "subledgerId"),
    )


get_card_transactions = _owned(
    LoyaltyService.get_card_transactions, "loyaltyCardId", _transaction_filter
)
get_card_points = _owned(LoyaltyService.get_card_points, "loyaltyCardId", _points_filter)
link_card = _owned(LoyaltyService.link_card, "loyaltyCardId", _request_body)
unlink_card = _owned(LoyaltyService.unlink_card, "loyaltyCardId", _request_body)


@with_status
def generate_card(service: IntegrationService, request: Request, body: Any) -> Result:
    return 200, _loyalty(service).generate_card(_path(request, "loyaltyProgramId"), body)


# --- customer profiles --------------------------------------------------------------------------


@with_status
def delete_customer_data(service: IntegrationService, request: Request, _body: Any) -> Result:
    _profiles(service).delete_customer_data(_path(request, "integrationId"))
    return 204, None


@with_status
def get_inventory(service: IntegrationService, request: Request, _body: Any) -> Result:
    query = _query(request)
    flags = [name for name in INVENTORY_FLAGS if parse_bool(name, query.get(name))]
    return 200, _profiles(service).get_inventory(_path(request, "integrationId"), flags)


@with_status
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


@with_status
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

    def get(path: str, name: str, run: Run) -> Route:
        return http.get(path, api.route(Operation(name, run, reads_body=False)))

    def post(path: str, name: str, run: Run) -> Route:
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
        http.post(
            f"{profile}/join",
            api.route(Operation("joinLoyaltyProgram", join_program, reads_body=False)),
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

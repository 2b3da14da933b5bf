"""Loyalty: points earned and spent by rules, tentative and persisted balances, rollbacks,
pending and expiring points, tiers, subledgers, cards, and the loyalty operations.

Driven through IntegrationService and LoyaltyService with JSON-shaped bodies and an injected
clock; the HTTP-only parts (query parameters, error bodies) through the aiohttp application.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from talon_one_emulator.api.loyalty import LoyaltyService, PointsFilter, TransactionFilter
from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.queries import Page
from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns, parse_campaigns
from talon_one_emulator.errors import (
    BadRequestError,
    CampaignFileError,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import FakeClock, call, rule

SHIRT = {"name": "Shirt", "sku": "shirt", "quantity": 1, "price": 40, "category": "Shirts"}
SHOES = {"name": "Shoes", "sku": "shoes", "quantity": 2, "price": 30, "category": "Shoes"}


def _attribute(name: str) -> list[Any]:
    return [{"sessionAttributeEquals": {"attribute": name, "value": True}}]


LOYALTY: dict[str, Any] = {
    "attributes": {
        "CustomerSession": {"pay": "boolean", "payTwice": "boolean", "payNegative": "boolean"}
    },
    "eventTypes": {"bonus_event": {}},
    "loyaltyPrograms": [
        {
            "id": 1,
            "name": "points",
            "title": "Points",
            "subledgers": ["bonus"],
            "tiers": [{"name": "Silver", "minPoints": 100}, {"name": "Gold", "minPoints": 300}],
        },
        {"id": 2, "name": "later", "title": "Later", "pendingDays": 14, "validityDays": 30},
        {
            "id": 3,
            "name": "on_action",
            "title": "On action",
            "activateOnAction": True,
            "validityDays": 10,
            "rollbackActivePointsOnReopen": False,
        },
        {
            "id": 4,
            "name": "card",
            "title": "Card",
            "cardBased": True,
            "usersPerCardLimit": 1,
            "cards": [
                {"identifier": "CARD-AAAA"},
                {"identifier": "CARD-OFF", "status": "inactive"},
            ],
        },
        {"id": 5, "name": "negative", "title": "Negative", "allowNegativeBalance": True},
        {"id": 6, "name": "items", "title": "Items"},
    ],
    "application": {"cartItemFlattening": False},
    "campaigns": [
        {
            "id": 1,
            "name": "Earn",
            "rulesetId": 11,
            "rules": [
                rule(
                    "1 point per unit",
                    [
                        {"addLoyaltyPoints": {"programId": 1, "pointsPerCurrencyUnit": 1}},
                        {"addLoyaltyPoints": {"programId": 1, "subLedgerId": "bonus", "points": 5}},
                    ],
                )
            ],
        },
        {
            "id": 2,
            "name": "Pending",
            "rulesetId": 21,
            "rules": [rule("later", [{"addLoyaltyPoints": {"programId": 2, "points": 10}}])],
        },
        {
            "id": 3,
            "name": "On action",
            "rulesetId": 31,
            "rules": [rule("on action", [{"addLoyaltyPoints": {"programId": 3, "points": 20}}])],
        },
        {
            "id": 4,
            "name": "Card",
            "rulesetId": 41,
            "rules": [
                rule(
                    "card points",
                    [{"addLoyaltyPoints": {"programId": 4, "pointsPerCurrencyUnit": 1}}],
                )
            ],
        },
        {
            "id": 5,
            "name": "Pay",
            "rulesetId": 51,
            "rules": [
                rule(
                    "pay 50",
                    [
                        {"deductLoyaltyPoints": {"programId": 1, "points": 50}},
                        {"setDiscount": {"name": "5 off", "amount": 5}},
                    ],
                    _attribute("pay"),
                ),
            ],
        },
        {
            "id": 6,
            "name": "Pay twice",
            "rulesetId": 61,
            "rules": [
                rule(
                    "first 100",
                    [
                        {"deductLoyaltyPoints": {"programId": 1, "points": 100, "name": "A"}},
                        {"setDiscount": {"name": "A", "amount": 1}},
                    ],
                    _attribute("payTwice"),
                ),
                rule(
                    "second 100",
                    [
                        {"deductLoyaltyPoints": {"programId": 1, "points": 100, "name": "B"}},
                        {"setDiscount": {"name": "B", "amount": 1}},
                    ],
                    _attribute("payTwice"),
                ),
            ],
        },
        {
            "id": 7,
            "name": "Negative",
            "rulesetId": 71,
            "rules": [
                rule(
                    "pay 30",
                    [{"deductLoyaltyPoints": {"programId": 5, "points": 30}}],
                    _attribute("payNegative"),
                )
            ],
        },
        {
            "id": 8,
            "name": "Per item",
            "rulesetId": 81,
            "rules": [
                rule(
                    "per item",
                    [
                        {
                            "addLoyaltyPoints": {
                                "programId": 6,
                                "perItem": True,
                                "pointsPerCurrencyUnit": 1,
                            }
                        }
                    ],
                )
            ],
        },
        {
            "id": 10,
            "name": "Coupon paid with points",
            "rulesetId": 101,
            "coupons": [{"code": "PTS-50"}],
            "rules": [
                rule(
                    "coupon and 50 points",
                    [
                        {"deductLoyaltyPoints": {"programId": 1, "points": 50}},
                        {"setDiscount": {"name": "coupon", "amount": 5}},
                    ],
                    [{"couponValid": True}],
                )
            ],
        },
        {
            "id": 9,
            "name": "Bonus event",
            "rulesetId": 91,
            "rules": [
                {
                    "name": "event points",
                    "conditions": [{"eventType": "bonus_event"}],
                    "effects": [
                        {"addLoyaltyPoints": {"programId": 1, "points": 7}},
                        {"addLoyaltyPoints": {"programId": 4, "points": 3}},
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture
def campaigns() -> CampaignSet:
    return parse_campaigns(LOYALTY)


@pytest.fixture
def loyalty(api: IntegrationService) -> LoyaltyService:
    return LoyaltyService(api.state)


def put(api: IntegrationService, session_id: str = "s-1", **session: Any) -> dict[str, Any]:
    content = session.pop("content", ["loyalty", "customerSession"])
    dry = session.pop("dry", False)
    session.setdefault("profileId", "ann")
    return api.update_customer_session(
        session_id, {"customerSession": session, "responseContent": content}, dry=dry
    )


def of_type(response: dict[str, Any], effect_type: str, program: int | None = None) -> list[Any]:
    return [
        effect["props"]
        for effect in response["effects"]
        if effect["effectType"] == effect_type
        and (program is None or effect["props"].get("programId") == program)
    ]


def ledger(response: dict[str, Any], program: int = 1) -> dict[str, Any]:
    return response["loyalty"]["programs"][str(program)]["ledger"]


def transactions(loyalty: LoyaltyService, profile: str = "ann", program: int = 1) -> Any:
    return loyalty.get_profile_transactions(str(program), profile, TransactionFilter(Page(50)))


def points(loyalty: LoyaltyService, status: str = "active", program: int = 1) -> Any:
    query = PointsFilter(Page(50), status=status)  # type: ignore[arg-type]
    return loyalty.get_profile_points(str(program), "ann", query)


# --- earning: tentative, persisted, rolled back ------------------------------------------------


def test_points_are_tentative_while_open_and_persisted_on_close(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    opened = put(api, cartItems=[SHIRT])

    [added, bonus] = of_type(opened, "addLoyaltyPoints", 1)
    assert added["value"] == 40
    assert added["recipientIntegrationId"] == "ann"
    assert added["subLedgerId"] == ""
    assert bonus["subLedgerId"] == "bonus"
    main = ledger(opened)
    assert (main["currentBalance"], main["tentativeCurrentBalance"]) == (0, 40)
    assert main["expiredBalance"] == main["spentBalance"] == 0
    assert opened["loyalty"]["programs"]["1"]["subLedgers"]["bonus"]["tentativeCurrentBalance"] == 5
    assert loyalty.get_balances("1", "ann")["balance"]["activePoints"] == 0

    closed = put(api, state="closed")

    main = ledger(closed)
    assert (main["currentBalance"], main["tentativeCurrentBalance"]) == (40, 40)
    balances = loyalty.get_balances("1", "ann")
    assert balances["balance"]["activePoints"] == 40
    assert balances["subledgerBalances"]["bonus"]["activePoints"] == 5
    log = transactions(loyalty)
    assert log["hasMore"] is False
    assert [(e["type"], e["amount"], e["subledgerId"]) for e in log["data"]] == [
        ("addition", 5, "bonus"),
        ("addition", 40, ""),
    ]
    entry = log["data"][1]
    assert entry["transactionUUID"] == added["transactionUUID"]
    assert (entry["startDate"], entry["expiryDate"]) == ("immediate", "unlimited")
    assert (entry["customerSessionId"], entry["rulesetId"]) == ("s-1", 11)
    assert [p["amount"] for p in points(loyalty)["data"]] == [40, 5]
    assert api.state.profiles["ann"].points[1] == 45


def test_cancel_of_a_closed_session_rolls_the_points_back(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    put(api, cartItems=[SHIRT], state="closed")

    cancelled = put(api, state="cancelled")

    rollbacks = of_type(cancelled, "rollbackAddedLoyaltyPoints", 1)
    assert sorted(r["value"] for r in rollbacks) == [5, 40]
    assert ledger(cancelled)["currentBalance"] == 0
    assert loyalty.get_balances("1", "ann")["balance"]["activePoints"] == 0
    kinds = [(e["type"], e["amount"]) for e in transactions(loyalty)["data"]]
    assert kinds.count(("subtraction", 40)) == 1
    assert points(loyalty)["data"] == []


def test_cancel_of_an_open_session_persists_nothing(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    put(api, cartItems=[SHIRT])
    put(api, state="cancelled")

    assert transactions(loyalty)["data"] == []


def test_dry_requests_persist_no_points(api: IntegrationService, loyalty: LoyaltyService) -> None:
    put(api, "real", cartItems=[SHIRT])  # creates the profile
    dry = put(api, "dry", cartItems=[SHIRT], state="closed", dry=True)

    assert of_type(dry, "addLoyaltyPoints", 1)
    assert transactions(loyalty)["data"] == []


def test_points_of_an_anonymous_session_need_a_profile(api: IntegrationService) -> None:
    response = put(api, profileId="", cartItems=[SHIRT])

    assert of_type(response, "addLoyaltyPoints", 1) == []
    assert "loyalty" not in response  # anonymous and without a card


def test_event_points_are_credited_at_once_with_the_events_card(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    event = {
        "type": "bonus_event",
        "profileId": "ann",
        "loyaltyCards": ["CARD-AAAA"],
        "responseContent": ["loyalty"],
    }

    response = api.track_event(event, silent=False)

    assert response is not None
    assert response["loyalty"]["programs"]["1"]["ledger"]["currentBalance"] == 7
    assert response["loyalty"]["cards"][0]["ledger"]["currentBalance"] == 3
    assert loyalty.get_card_balances("4", "CARD-AAAA")["balance"]["activePoints"] == 3
    [entry] = transactions(loyalty)["data"]
    assert "customerSessionId" not in entry


# --- spending ---------------------------------------------------------------------------------


def test_deduction_only_fires_when_the_points_are_there(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    broke = put(api, "s-0", cartItems=[SHIRT], attributes={"pay": True})
    assert of_type(broke, "deductLoyaltyPoints") == []
    assert of_type(broke, "setDiscount") == []  # no points, no discount

    put(api, "s-1", cartItems=[SHIRT, SHOES], state="closed")  # 100 points
    paying = put(api, "s-2", cartItems=[SHIRT], attributes={"pay": True})

    [deduct] = of_type(paying, "deductLoyaltyPoints")
    assert deduct == {
        "ruleTitle": "pay 50",
        "programId": 1,
        "subLedgerId": "",
        "value": 50,
        "transactionUUID": deduct["transactionUUID"],
        "name": "points",
    }
    assert of_type(paying, "setDiscount")[0]["value"] == 5
    main = ledger(paying)
    assert (main["currentBalance"], main["tentativeCurrentBalance"]) == (100, 90)

    closed = put(api, "s-2", state="closed")
    assert ledger(closed)["currentBalance"] == 90
    balance = loyalty.get_balances("1", "ann")["balance"]
    assert (balance["activePoints"], balance["spentPoints"]) == (90, 50)
    spend = transactions(loyalty)["data"][0]
    assert (spend["type"], spend["amount"], spend["name"]) == ("subtraction", 50, "points")

    cancelled = put(api, "s-2", state="cancelled")
    [refund] = of_type(cancelled, "rollbackDeductedLoyaltyPoints")
    assert (refund["value"], refund["recipientIntegrationId"]) == (50, "ann")
    assert refund["transactionUUID"] == deduct["transactionUUID"]
    balance = loyalty.get_balances("1", "ann")["balance"]
    assert (balance["activePoints"], balance["spentPoints"]) == (100, 0)


def test_a_coupon_without_the_points_is_rejected(api: IntegrationService) -> None:
    refused = put(api, "s-1", cartItems=[SHIRT], couponCodes=["PTS-50"])

    [rejection] = of_type(refused, "rejectCoupon")
    assert rejection == {
        "value": "PTS-50",
        "rejectionReason": "EffectCouldNotBeApplied",
        "effectIndex": 0,
        "details": "not enough loyalty points",
    }
    put(api, "s-2", cartItems=[SHIRT, SHOES], state="closed")  # 100 points
    accepted = put(api, "s-3", cartItems=[SHIRT], couponCodes=["PTS-50"])
    assert of_type(accepted, "acceptCoupon") == [{"value": "PTS-50"}]
    assert of_type(accepted, "deductLoyaltyPoints")[0]["value"] == 50


def test_rules_spend_from_one_running_balance(api: IntegrationService) -> None:
    put(api, "s-1", cartItems=[{**SHIRT, "quantity": 4}], state="closed")  # 160 points

    response = put(api, "s-2", cartItems=[SHIRT], attributes={"payTwice": True})

    assert [d["name"] for d in of_type(response, "deductLoyaltyPoints")] == ["A"]
    assert [d["name"] for d in of_type(response, "setDiscount")] == ["A"]


def test_negative_balance_when_the_program_allows_it(api: IntegrationService) -> None:
    paying = put(api, "s-1", cartItems=[SHIRT], attributes={"payNegative": True}, state="closed")

    assert of_type(paying, "deductLoyaltyPoints", 5)[0]["value"] == 30
    negative = ledger(paying, 5)
    assert (negative["currentBalance"], negative["negativeBalance"]) == (0, 30)


def test_points_earned_later_pay_off_a_negative_balance(
    campaigns: CampaignSet, clock: FakeClock
) -> None:
    document = {
        **LOYALTY,
        "campaigns": [
            *LOYALTY["campaigns"],
            {
                "id": 20,
                "name": "Earn negative",
                "rulesetId": 201,
                "rules": [rule("earn 50", [{"addLoyaltyPoints": {"programId": 5, "points": 50}}])],
            },
        ],
    }
    api = IntegrationService(EmulatorState(parse_campaigns(document), clock=clock))
    put(api, "s-1", cartItems=[SHIRT], attributes={"payNegative": True}, state="closed")
    # s-1 spent 30 it did not have (-30), then earned 50, which paid the 30 off: 20 left.
    after = put(api, "s-2", cartItems=[SHIRT], state="closed")

    assert ledger(after, 5)["currentBalance"] == 70


# --- pending, expiring and activated points ---------------------------------------------------


def test_pending_points_become_active_and_expire(
    api: IntegrationService, loyalty: LoyaltyService, clock: FakeClock
) -> None:
    opened = put(api, cartItems=[SHIRT])
    [added] = of_type(opened, "addLoyaltyPoints", 2)
    start = datetime.fromisoformat(added["startDate"])
    expiry = datetime.fromisoformat(added["expiryDate"])
    assert start - clock.now >= timedelta(days=13, hours=23)
    assert expiry - start == timedelta(days=30)
    assert ledger(opened, 2)["tentativePendingBalance"] == 10
    assert ledger(opened, 2)["tentativeCurrentBalance"] == 0

    closed = put(api, state="closed")
    balance = loyalty.get_balances("2", "ann")["balance"]
    assert (balance["activePoints"], balance["pendingPoints"]) == (0, 10)
    # The close evaluated the session again: its effect's dates are what the ledger keeps.
    [persisted] = of_type(closed, "addLoyaltyPoints", 2)
    [pending] = points(loyalty, "pending", 2)["data"]
    assert (pending["startDate"], pending["expiryDate"]) == (
        persisted["startDate"],
        persisted["expiryDate"],
    )

    clock.advance(days=15)
    assert loyalty.get_balances("2", "ann")["balance"]["activePoints"] == 10
    assert [p["amount"] for p in points(loyalty, "active", 2)["data"]] == [10]

    clock.advance(days=30)
    balance = loyalty.get_balances("2", "ann")["balance"]
    assert (balance["activePoints"], balance["expiredPoints"]) == (0, 10)
    assert [p["amount"] for p in points(loyalty, "expired", 2)["data"]] == [10]
    # Balances as they were at an earlier time.
    earlier = loyalty.get_balances("2", "ann", end_date=clock.now - timedelta(days=40))
    assert earlier["balance"]["pendingPoints"] == 10


def test_points_awaiting_activation(
    api: IntegrationService, loyalty: LoyaltyService, clock: FakeClock
) -> None:
    opened = put(api, cartItems=[SHIRT])
    [added] = of_type(opened, "addLoyaltyPoints", 3)
    assert added["awaitsActivation"] is True
    assert added["validityDuration"] == "10D"
    assert "startDate" not in added
    put(api, state="closed")

    waiting = loyalty.get_profile_transactions(
        "3", "ann", TransactionFilter(Page(50), awaits_activation=True)
    )
    assert [(e["startDate"], e["validityDuration"]) for e in waiting["data"]] == [
        ("on_action", "10D")
    ]
    assert loyalty.get_balances("3", "ann")["balance"]["pendingPoints"] == 20

    answer = loyalty.activate_points("3", {"sessionId": "s-1"})

    [entry] = answer["ledgerEntries"]
    assert (entry["type"], entry["amount"], entry["customerProfileID"]) == ("addition", 20, "ann")
    assert entry["customerSessionID"] == "s-1"
    assert loyalty.get_balances("3", "ann")["balance"]["activePoints"] == 20
    clock.advance(days=11)
    assert loyalty.get_balances("3", "ann")["balance"]["expiredPoints"] == 20


def test_activation_by_transaction_uuid_and_its_errors(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    opened = put(api, cartItems=[SHIRT], state="closed")
    uuid = of_type(opened, "addLoyaltyPoints", 3)[0]["transactionUUID"]

    assert len(loyalty.activate_points("3", {"transactionUUIDs": [uuid]})["ledgerEntries"]) == 1
    assert loyalty.activate_points("3", {"transactionUUIDs": [uuid]})["ledgerEntries"] == []
    with pytest.raises(InvalidDataError):
        loyalty.activate_points("3", {})
    with pytest.raises(InvalidDataError):
        loyalty.activate_points("3", {"transactionUUIDs": [uuid], "sessionId": "s-1"})
    with pytest.raises(InvalidDataError):
        loyalty.activate_points("3", {"transactionUUIDs": ["not-a-uuid"]})
    with pytest.raises(NotFoundError):
        loyalty.activate_points("3", {"transactionUUIDs": ["8a4f2b4e-1d51-4a16-9f3b-2a9d2f0c5e11"]})
    with pytest.raises(NotFoundError):
        loyalty.activate_points("3", {"sessionId": "unknown"})
    with pytest.raises(NotFoundError):
        loyalty.activate_points("99", {"sessionId": "s-1"})


# --- reopen and returns -----------------------------------------------------------------------


def test_reopen_rolls_back_pending_points_and_active_ones_per_program(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    put(api, cartItems=[SHIRT], state="closed")
    loyalty.activate_points("3", {"sessionId": "s-1"})

    reopened = api.reopen_customer_session("s-1")

    programs = sorted(
        effect["props"]["programId"]
        for effect in reopened["effects"]
        if effect["effectType"] == "rollbackAddedLoyaltyPoints"
    )
    # Program 1: active, rolled back (the default); 2: pending; 3: active but kept.
    assert programs == [1, 1, 2, 6]
    assert loyalty.get_balances("3", "ann")["balance"]["activePoints"] == 20
    assert loyalty.get_balances("2", "ann")["balance"]["pendingPoints"] == 0


def test_points_per_item_are_returned_per_item(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    closed = put(api, cartItems=[SHIRT, SHOES], state="closed")
    per_item = of_type(closed, "addLoyaltyPoints", 6)
    assert [(p["cartItemPosition"], p["value"]) for p in per_item] == [(0, 40), (1, 60)]

    returned = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"position": 1, "quantity": 1}]}}
    )

    [rollback] = of_type(returned, "rollbackAddedLoyaltyPoints", 6)
    assert (rollback["cartItemPosition"], rollback["value"]) == (1, 30)
    assert rollback["transactionUUID"] == per_item[1]["transactionUUID"]
    # Points not given per item go back by the share of the cart value returned (30 of 100).
    session_points = of_type(returned, "rollbackAddedLoyaltyPoints", 1)
    assert sorted(r["value"] for r in session_points) == [1.5, 30]
    assert loyalty.get_balances("6", "ann")["balance"]["activePoints"] == 70


def test_flattened_items_earn_and_return_per_unit(campaigns: CampaignSet, clock: FakeClock) -> None:
    document = {**LOYALTY, "application": {"cartItemFlattening": True}}
    api = IntegrationService(EmulatorState(parse_campaigns(document), clock=clock))
    closed = put(api, cartItems=[SHOES], state="closed")
    per_unit = of_type(closed, "addLoyaltyPoints", 6)
    assert [(p["cartItemPosition"], p["cartItemSubPosition"], p["value"]) for p in per_unit] == [
        (0, 0, 30),
        (0, 1, 30),
    ]

    returned = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"position": 0, "quantity": 1}]}}
    )

    [rollback] = of_type(returned, "rollbackAddedLoyaltyPoints", 6)
    assert (rollback["cartItemSubPosition"], rollback["value"]) == (0, 30)


def test_returns_do_not_refund_spent_points(api: IntegrationService) -> None:
    put(api, "s-1", cartItems=[SHIRT, SHOES], state="closed")
    put(api, "s-2", cartItems=[SHIRT], attributes={"pay": True}, state="closed")

    returned = api.return_cart_items("s-2", {"return": {"returnedCartItems": [{"position": 0}]}})

    assert of_type(returned, "rollbackDeductedLoyaltyPoints") == []
    assert of_type(returned, "rollbackDiscount")


# --- tiers and subledgers ---------------------------------------------------------------------


def test_crossing_a_tier_changes_the_tier_level(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    first = put(api, "s-1", cartItems=[SHIRT, SHOES], state="closed")  # 100 points

    [change] = of_type(first, "changeLoyaltyTierLevel")
    assert change == {
        "ruleTitle": "1 point per unit",
        "programId": 1,
        "subLedgerId": "",
        "newTierName": "Silver",
    }
    assert ledger(first)["currentTier"]["name"] == "Silver"
    assert ledger(first)["pointsToNextTier"] == 200

    second = put(api, "s-2", cartItems=[{**SHIRT, "quantity": 5}])  # 200 more, tentatively
    [change] = of_type(second, "changeLoyaltyTierLevel")
    assert (change["previousTierName"], change["newTierName"]) == ("Silver", "Gold")
    assert of_type(put(api, "s-3", cartItems=[SHIRT]), "changeLoyaltyTierLevel") == []

    balances = loyalty.get_balances("1", "ann", include_tiers=True, include_projected_tier=True)
    balance = balances["balance"]
    assert balance["currentTier"]["name"] == "Silver"
    assert (balance["nextTierName"], balance["pointsToNextTier"]) == ("Gold", 200)
    assert balance["projectedTier"] == {
        "projectedActivePoints": 100,
        "projectedTierName": "Silver",
        "stayInTierPoints": 0,
    }
    assert "currentTier" not in loyalty.get_balances("1", "ann")["balance"]


def test_subledger_filter_and_deleting_transactions(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    put(api, cartItems=[SHIRT], state="closed")

    only_bonus = loyalty.get_balances("1", "ann", subledger_id="bonus")
    assert only_bonus["subledgerBalances"] == {
        "bonus": {
            "activePoints": 5,
            "pendingPoints": 0,
            "spentPoints": 0,
            "expiredPoints": 0,
            "negativePoints": 0,
        }
    }
    with pytest.raises(InvalidDataError):
        loyalty.get_balances("1", "ann", subledger_id="nope")
    bonus_log = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(50), subledger_ids=("bonus",))
    )
    assert [e["amount"] for e in bonus_log["data"]] == [5]

    loyalty.delete_transactions(
        "1", "ann", {"scope": "SelectedSubledgers", "subledgerIds": ["bonus"]}
    )
    balances = loyalty.get_balances("1", "ann")
    assert balances["balance"]["activePoints"] == 40
    assert balances["subledgerBalances"]["bonus"]["activePoints"] == 0
    loyalty.delete_transactions("1", "ann", {"scope": "AllSubledgers"})
    assert transactions(loyalty)["data"] == []
    assert api.state.profiles["ann"].points[1] == 0
    with pytest.raises(InvalidDataError):
        loyalty.delete_transactions("1", "ann", {"scope": "SelectedSubledgers"})
    with pytest.raises(InvalidDataError):
        loyalty.delete_transactions(
            "1", "ann", {"scope": "SelectedSubledgers", "subledgerIds": ["x"]}
        )
    with pytest.raises(InvalidDataError):
        loyalty.delete_transactions("1", "ann", {"scope": "Everything"})


# --- paging and filters -----------------------------------------------------------------------


def test_transactions_are_paged_newest_first_and_filtered(
    api: IntegrationService, loyalty: LoyaltyService, clock: FakeClock
) -> None:
    for index in range(3):
        put(api, f"s-{index}", cartItems=[SHIRT], state="closed")
    middle = clock.now

    page = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(2), subledger_ids=("",))
    )
    assert page["hasMore"] is True
    assert [e["customerSessionId"] for e in page["data"]] == ["s-2", "s-1"]
    rest = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(2, skip=2), subledger_ids=("",))
    )
    assert (rest["hasMore"], [e["customerSessionId"] for e in rest["data"]]) == (False, ["s-0"])
    by_session = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(50), session_ids=("s-1",))
    )
    assert {e["customerSessionId"] for e in by_session["data"]} == {"s-1"}
    uuid = page["data"][0]["transactionUUID"]
    by_uuid = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(50), uuids=(uuid,))
    )
    assert [e["transactionUUID"] for e in by_uuid["data"]] == [uuid]
    clock.advance(hours=1)
    put(api, "s-later", cartItems=[SHIRT], state="closed")
    later = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(50), start=middle + timedelta(minutes=1))
    )
    assert {e["customerSessionId"] for e in later["data"]} == {"s-later"}
    manual = loyalty.get_profile_transactions(
        "1", "ann", TransactionFilter(Page(50), transaction_type="manual")
    )
    assert manual["data"] == []


def test_points_can_be_sorted(api: IntegrationService, loyalty: LoyaltyService) -> None:
    for index in range(3):
        put(api, f"s-{index}", cartItems=[SHIRT], state="closed")
    ascending = loyalty.get_profile_points(
        "2", "ann", PointsFilter(Page(50), status="pending", sort="startDate")
    )
    descending = loyalty.get_profile_points(
        "2", "ann", PointsFilter(Page(50), status="pending", sort="-startDate")
    )

    starts = [entry["startDate"] for entry in ascending["data"]]
    assert starts == sorted(starts)
    assert [e["id"] for e in descending["data"]] == [e["id"] for e in ascending["data"]][::-1]


# --- lookups and errors -----------------------------------------------------------------------


def test_unknown_program_profile_or_wrong_kind(
    api: IntegrationService, loyalty: LoyaltyService
) -> None:
    put(api, cartItems=[SHIRT])
    empty = TransactionFilter(Page(50))

    with pytest.raises(NotFoundError) as missing_program:
        loyalty.get_balances("99", "ann")
    assert missing_program.value.status == 404
    with pytest.raises(NotFoundError):
        loyalty.get_balances("1", "nobody")
    with pytest.raises(NotFoundError):
        loyalty.get_profile_transactions("1", "nobody", empty)
    with pytest.raises(BadRequestError):
        loyalty.get_balances("4", "ann")  # card-based
    with pytest.raises(BadRequestError):
        loyalty.get_card_balances("1", "CARD-AAAA")  # profile-based
    with pytest.raises(InvalidDataError):
        loyalty.get_balances("one", "ann")
    with pytest.raises(NotFoundError):
        loyalty.get_card_transactions("4", "CARD-NONE", empty)
    with pytest.raises(InvalidDataError):
        loyalty.get_card_points("4", "abc", PointsFilter(Page(50)))
    # A profile without any points yet has zero balances.
    assert loyalty.get_balances("1", "ann")["balance"]["activePoints"] == 0


# --- cards --------------------------------------------------------------------------------------


def test_card_sessions_earn_on_the_card(api: IntegrationService, loyalty: LoyaltyService) -> None:
    opened = put(api, cartItems=[SHIRT], loyaltyCards=["CARD-AAAA"])

    [card_points] = of_type(opened, "addLoyaltyPoints", 4)
    assert (card_points["cardIdentifier"], card_points["value"]) == ("CARD-AAAA", 40)
    [card] = opened["loyalty"]["cards"]
    assert card["identifier"] == "CARD-AAAA"
    assert (card["ledger"]["currentBalance"], card["ledger"]["tentativeCurrentBalance"]) == (0, 40)
    assert "4" not in opened["loyalty"]["programs"]  # card-based programs are under cards

    put(api, state="closed")
    balances = loyalty.get_card_balances("4", "CARD-AAAA")
    assert balances["balance"]["activePoints"] == 40
    assert balances["profiles"] == []
    [entry] = loyalty.get_card_transactions("4", "CARD-AAAA", TransactionFilter(Page(50)))["data"]
    assert (entry["cardIdentifier"], entry["amount"]) == ("CARD-AAAA", 40)
    [unspent] = loyalty.get_card_points("4", "CARD-AAAA", PointsFilter(Page(50)))["data"]
    assert (unspent["customerProfileID"], unspent["amount"]) == ("ann", 40)

    cancelled = put(api, state="cancelled")
    [rollback] = of_type(cancelled, "rollbackAddedLoyaltyPoints", 4)
    assert rollback["cardIdentifier"] == "CARD-AAAA"
    assert loyalty.get_card_balances("4", "CARD-AAAA")["balance"]["activePoints"] == 0


def test_anonymous_card_sessions_earn_too(api: IntegrationService) -> None:
    response = put(api, profileId="", cartItems=[SHIRT], loyaltyCards=["CARD-AAAA"])

    [card_points] = of_type(response, "addLoyaltyPoints", 4)
    assert card_points["recipientIntegrationId"] == ""
    assert response["loyalty"]["programs"] == {}
    assert response["loyalty"]["cards"][0]["ledger"]["tentativeCurrentBalance"] == 40


@pytest.mark.parametrize("card", ["CARD-OFF", "CARD-UNKNOWN"])
def test_inactive_or_unknown_cards_earn_nothing(api: IntegrationService, card: str) -> None:
    response = put(api, cartItems=[SHIRT], loyaltyCards=[card])

    assert of_type(response, "addLoyaltyPoints", 4) == []


def test_generate_link_and_unlink_cards(api: IntegrationService, loyalty: LoyaltyService) -> None:
    put(api, "s-1", profileId="ann", cartItems=[SHIRT])
    put(api, "s-2", profileId="bob", cartItems=[SHIRT])

    generated = loyalty.generate_card("4", {"customerProfileIds": ["ann"]})
    assert generated["status"] == "active"
    assert len(generated["identifier"]) == 12
    assert [p["integrationId"] for p in generated["profiles"]] == ["ann"]
    named = loyalty.generate_card("4", {"cardIdentifier": "MY-CARD-1", "status": "inactive"})
    assert (named["identifier"], named["status"], named["profiles"]) == (
        "MY-CARD-1",
        "inactive",
        [],
    )
    assert named["id"] != generated["id"]

    linked = loyalty.link_card("4", "MY-CARD-1", {"integrationId": "bob"})
    assert [p["integrationId"] for p in linked["profiles"]] == ["bob"]
    assert (
        loyalty.link_card("4", "MY-CARD-1", {"integrationId": "bob"})["profiles"]
        == linked["profiles"]
    )
    with pytest.raises(BadRequestError):  # usersPerCardLimit 1
        loyalty.link_card("4", "MY-CARD-1", {"integrationId": "ann"})
    with pytest.raises(NotFoundError):
        loyalty.link_card("4", "MY-CARD-1", {"integrationId": "nobody"})
    with pytest.raises(NotFoundError):
        loyalty.link_card("4", "NO-SUCH-CARD", {"integrationId": "ann"})
    with pytest.raises(InvalidDataError):
        loyalty.link_card("4", "MY-CARD-1", {"integrationId": 7})

    unlinked = loyalty.unlink_card("4", "MY-CARD-1", {"integrationId": "bob"})
    assert unlinked["profiles"] == []
    with pytest.raises(BadRequestError):
        loyalty.unlink_card("4", "MY-CARD-1", {"integrationId": "bob"})
    profiles = loyalty.get_card_balances("4", generated["identifier"])["profiles"]
    assert [p["integrationId"] for p in profiles] == ["ann"]


@pytest.mark.parametrize(
    "body",
    [
        {"cardIdentifier": "CARD-AAAA"},  # exists
        {"cardIdentifier": "ab"},  # too short
        {"cardIdentifier": "has space"},
        {"status": "lost"},
        {"customerProfileIds": ["nobody"]},
        {"customerProfileIds": ["ann", "bob"]},  # over the limit of 1
    ],
)
def test_generate_card_errors(
    api: IntegrationService, loyalty: LoyaltyService, body: dict[str, Any]
) -> None:
    put(api, "s-1", profileId="ann", cartItems=[SHIRT])
    put(api, "s-2", profileId="bob", cartItems=[SHIRT])

    with pytest.raises(InvalidDataError):
        loyalty.generate_card("4", body)


def test_generate_card_in_unknown_or_profile_program_is_400(loyalty: LoyaltyService) -> None:
    for program in ("99", "1"):
        with pytest.raises(BadRequestError) as caught:
            loyalty.generate_card(program, {})
        assert caught.value.status == 400


# --- the campaign file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {
                "loyaltyPrograms": [
                    {"id": 1, "name": "p", "title": "P", "pendingDays": 1, "activateOnAction": True}
                ]
            },
            "exclude each other",
        ),
        (
            {
                "loyaltyPrograms": [
                    {"id": 1, "name": "p", "title": "P", "cards": [{"identifier": "CARD-1"}]}
                ]
            },
            "cardBased",
        ),
        (
            {
                "loyaltyPrograms": [
                    {
                        "id": 1,
                        "name": "p",
                        "title": "P",
                        "tiers": [{"name": "B", "minPoints": 5}, {"name": "A", "minPoints": 1}],
                    }
                ]
            },
            "ascending",
        ),
    ],
)
def test_invalid_programs_are_rejected(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaigns(change)
    assert problem in caught.value.reason


@pytest.mark.parametrize(
    ("effect", "problem"),
    [
        ({"deductLoyaltyPoints": {"programId": 9, "points": 1}}, "unknown loyalty program 9"),
        (
            {"addLoyaltyPoints": {"programId": 1, "points": 1, "subLedgerId": "x"}},
            "no subledger 'x'",
        ),
        (
            {"addLoyaltyPoints": {"programId": 1, "points": 1, "category": "Shoes"}},
            "perItem",
        ),
    ],
)
def test_invalid_loyalty_effects_are_rejected(effect: dict[str, Any], problem: str) -> None:
    document = {
        "loyaltyPrograms": [{"id": 1, "name": "p", "title": "P"}],
        "campaigns": [{"id": 1, "name": "c", "rulesetId": 1, "rules": [rule("r", [effect])]}],
    }
    with pytest.raises(CampaignFileError) as caught:
        parse_campaigns(document)
    assert problem in caught.value.reason


def test_default_campaigns_pay_with_points_and_earn_on_cards() -> None:
    api = IntegrationService(EmulatorState(load_campaigns()))
    cart = [{"sku": "rsb002", "quantity": 3, "price": 49}]
    put(api, "s-1", profileId="cust", cartItems=cart, state="closed")  # 147 points

    paying = put(
        api,
        "s-2",
        profileId="cust",
        cartItems=cart,
        attributes={"redeemPoints": True},
        loyaltyCards=["CARD-0001"],
    )

    assert of_type(paying, "deductLoyaltyPoints", 1)[0]["value"] == 100
    assert {d["name"] for d in of_type(paying, "setDiscount")} >= {"10 off paid with points"}
    assert of_type(paying, "addLoyaltyPoints", 2)[0]["value"] == 294
    assert paying["loyalty"]["programs"]["1"]["ledger"]["tentativeCurrentBalance"] == 194


# --- HTTP: query parameters and error bodies ----------------------------------------------------


async def test_http_routes_and_errors(client: aiohttp.ClientSession) -> None:
    session = {"customerSession": {"profileId": "ann", "cartItems": [SHIRT], "state": "closed"}}
    assert (await call(client, "PUT", "/v2/customer_sessions/s-1", session))[0] == 200
    base = "/v1/loyalty_programs/1/profile/ann"

    status, body = await call(client, "GET", f"{base}/transactions", params={"pageSize": 1})
    assert status == 200
    assert (body["hasMore"], len(body["data"])) == (True, 1)
    status, body = await call(client, "GET", f"{base}/balances", params={"includeTiers": "true"})
    assert (status, body["balance"]["activePoints"]) == (200, 40)

    status, body = await call(
        client, "GET", f"{base}/transactions", params={"awaitsActivation": "false"}
    )
    assert status == 400
    assert body["StatusCode"] == 400
    assert body["errors"][0]["source"] == {"parameter": "awaitsActivation"}
    for params in ({"pageSize": "0"}, {"pageSize": "1001"}, {"skip": "-1"}, {"pageSize": "x"}):
        status, body = await call(client, "GET", f"{base}/points", params=params)
        assert (status, body["StatusCode"]) == (400, 400), params
    status, body = await call(client, "GET", f"{base}/points", params={"status": "spent"})
    assert (status, body["errors"][0]["title"]) == (400, "enum")
    status, body = await call(client, "GET", f"{base}/points", params={"sort": "amount"})
    assert status == 400
    status, body = await call(client, "GET", f"{base}/balances", params={"endDate": "yesterday"})
    assert status == 400
    status, body = await call(client, "GET", "/v1/loyalty_programs/99/profile/ann/balances")
    assert (status, body["StatusCode"]) == (404, 404)
    status, body = await call(client, "GET", "/v1/loyalty_programs/1/profile/nobody/points")
    assert (status, body["StatusCode"]) == (404, 404)
    status, body = await call(
        client,
        "POST",
        f"{base}/delete_transactions",
        {"scope": "SelectedSubledgers", "subledgerIds": ["bonus"]},
    )
    assert (status, body) == (204, None)
    status, body = await call(client, "POST", f"{base}/delete_transactions", {"scope": "x"})
    assert (status, body["StatusCode"]) == (400, 400)


async def test_http_card_routes(client: aiohttp.ClientSession) -> None:
    session = {"customerSession": {"profileId": "ann", "cartItems": [SHIRT]}}
    await call(client, "PUT", "/v2/customer_sessions/s-1", session)

    status, card = await call(
        client, "POST", "/v1/loyalty_programs/4/cards", {"customerProfileIds": ["ann"]}
    )
    assert status == 200
    identifier = card["identifier"]
    status, body = await call(
        client,
        "GET",
        f"/v1/loyalty_programs/4/cards/{identifier}/points",
        params=[("subledgerId", ""), ("status", "active")],
    )
    assert (status, body) == (200, {"hasMore": False, "data": []})
    status, body = await call(
        client,
        "POST",
        f"/v2/loyalty_programs/4/cards/{identifier}/unlink_profile",
        {"integrationId": "ann"},
    )
    assert (status, body["profiles"]) == (200, [])
    status, body = await call(
        client,
        "POST",
        f"/v2/loyalty_programs/4/cards/{identifier}/link_profile",
        {"integrationId": "ann"},
    )
    assert (status, len(body["profiles"])) == (200, 1)
    status, body = await call(client, "GET", "/v1/loyalty_programs/4/cards/abc/balances")
    assert (status, body["errors"][0]["source"]) == (400, {"parameter": "loyaltyCardId"})
    status, body = await call(client, "GET", "/v1/loyalty_programs/4/cards/NOPE-NOPE/balances")
    assert (status, body["StatusCode"]) == (404, 404)
    status, body = await call(client, "POST", "/v1/loyalty_programs/99/cards", {})
    assert (status, body["StatusCode"]) == (400, 400)
    status, body = await call(
        client, "POST", "/v1/loyalty_programs/3/activate_points", {"sessionId": "s-1"}
    )
    assert (status, body["StatusCode"]) == (404, 404)  # s-1 is still open: no points yet

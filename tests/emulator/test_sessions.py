"""Customer sessions: cumulative updates, the state machine, closing, cancel, returns, reopen.

Driven through IntegrationService with JSON-shaped bodies; no HTTP.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.campaigns.file import CampaignSet
from talon_one_emulator.errors import BadRequestError, InvalidDataError, NotFoundError
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import RETURN_CONTENT, FakeClock

ALL_CONTENT = [part for part in RETURN_CONTENT if part != "referral"]
BLOUSE = {
    "name": "Red Spring Blouse",
    "sku": "rsb002",
    "quantity": 1,
    "price": 49,
    "category": "Blouses",
}
TROUSERS = {
    "name": "Denim Trousers",
    "sku": "dtr003",
    "quantity": 1,
    "price": 74,
    "category": "Trousers",
}


@pytest.fixture
def state(campaigns: CampaignSet, clock: FakeClock) -> EmulatorState:
    return EmulatorState(campaigns, application_id=7, account_id=3, clock=clock)


def put(
    api: IntegrationService,
    session_id: str = "s-1",
    content: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"customerSession": fields, "responseContent": content or ALL_CONTENT}
    return api.update_customer_session(session_id, body)


def tutorial(api: IntegrationService, state: str = "open", **extra: Any) -> dict[str, Any]:
    return put(
        api,
        profileId="cust-1",
        couponCodes=["xmas20"],
        cartItems=[BLOUSE, TROUSERS],
        state=state,
        **extra,
    )


def of_type(response: dict[str, Any], effect_type: str) -> list[dict[str, Any]]:
    return [effect for effect in response["effects"] if effect["effectType"] == effect_type]


def test_tutorial_session(api: IntegrationService) -> None:
    response = tutorial(api)

    assert of_type(response, "setDiscount")[0]["props"]["value"] == 24.6
    assert of_type(response, "acceptCoupon")[0]["props"]["value"] == "xmas20"
    assert response["createdCoupons"] == []
    assert response["createdReferrals"] == []
    session = response["customerSession"]
    assert session["integrationId"] == "s-1"
    assert session["applicationId"] == 7
    assert session["state"] == "open"
    assert session["total"] == 123
    assert session["cartItemTotal"] == 123
    assert session["additionalCostTotal"] == 0
    assert session["updateCount"] == 1
    assert session["firstSession"] is True
    assert [item["position"] for item in session["cartItems"]] == [0, 1]
    assert [item["remainingQuantity"] for item in session["cartItems"]] == [1, 1]
    profile = response["customerProfile"]
    assert profile["integrationId"] == "cust-1"
    assert profile["accountId"] == 3
    assert profile["closedSessions"] == 0
    assert response["event"]["type"] == "talon_session_created"
    assert response["coupons"][0]["value"] == "xmas20"
    assert {campaign["id"] for campaign in response["triggeredCampaigns"]} >= {1}


def test_only_requested_content_is_returned(api: IntegrationService) -> None:
    response = api.update_customer_session("s-1", {"customerSession": {"cartItems": [BLOUSE]}})

    assert set(response) == {"effects", "createdCoupons", "createdReferrals"}


def test_update_is_cumulative(api: IntegrationService) -> None:
    tutorial(api, attributes={"channel": "web"})

    response = put(api, cartItems=[BLOUSE])

    session = response["customerSession"]
    assert session["profileId"] == "cust-1"
    assert session["couponCodes"] == ["xmas20"]
    assert session["attributes"] == {"channel": "web"}
    assert [item["sku"] for item in session["cartItems"]] == ["rsb002"]
    assert session["updateCount"] == 2
    assert of_type(response, "setDiscount")[0]["props"]["value"] == 9.8
    assert response["event"]["type"] == "talon_session_updated"


def test_empty_coupon_codes_clear_the_coupons(api: IntegrationService) -> None:
    tutorial(api)

    response = put(api, couponCodes=[])

    assert response["customerSession"]["couponCodes"] == []
    assert of_type(response, "setDiscount") == []
    assert of_type(response, "acceptCoupon") == []


def test_cart_items_replace_the_cart_and_their_attributes(api: IntegrationService) -> None:
    put(api, cartItems=[{**BLOUSE, "attributes": {"color": "red"}}, TROUSERS])

    response = put(api, cartItems=[{**BLOUSE, "quantity": 2}])

    items = response["customerSession"]["cartItems"]
    assert len(items) == 1
    assert items[0]["quantity"] == 2
    assert "attributes" not in items[0]


def test_second_session_of_a_profile_is_not_first(api: IntegrationService) -> None:
    tutorial(api)

    response = put(api, "s-2", profileId="cust-1", cartItems=[BLOUSE])

    assert response["customerSession"]["firstSession"] is False


def test_closing_counts_the_sale_and_redeems_the_coupon(api: IntegrationService) -> None:
    tutorial(api)

    response = tutorial(api, state="closed")

    assert response["customerSession"]["state"] == "closed"
    assert response["customerProfile"]["closedSessions"] == 1
    assert response["customerProfile"]["totalSales"] == 123
    assert response["coupons"][0]["usageCounter"] == 1
    assert response["coupons"][0]["profileRedemptionCount"] == 1
    assert response["event"]["type"] == "talon_session_closed"
    assert response["loyalty"]["programs"]["1"]["ledger"]["currentBalance"] == 123


def test_session_can_be_created_closed(api: IntegrationService) -> None:
    response = tutorial(api, state="closed")

    assert response["customerProfile"]["closedSessions"] == 1
    assert of_type(response, "setDiscount")[0]["props"]["value"] == 24.6


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ([], "cancelled"),
        ([], "partially_returned"),
        (["open"], "partially_returned"),
        (["closed"], "open"),
        (["closed"], "closed"),
        (["closed"], "partially_returned"),
        (["open", "cancelled"], "open"),
        (["open", "cancelled"], "closed"),
        (["open", "cancelled"], "cancelled"),
        (["closed", "cancelled"], "cancelled"),
    ],
)
def test_forbidden_transitions_are_400(
    api: IntegrationService, path: list[str], target: str
) -> None:
    for state in path:
        tutorial(api, state=state)

    with pytest.raises(BadRequestError) as caught:
        tutorial(api, state=target)

    error = caught.value
    assert error.status == 400
    assert "message" in error.body()
    assert "StatusCode" not in error.body()
    assert "s-1" in error.message


def test_forbidden_transition_after_return(api: IntegrationService) -> None:
    tutorial(api, state="closed")
    api.return_cart_items("s-1", {"return": {"returnedCartItems": [{"position": 0}]}})

    with pytest.raises(BadRequestError):
        tutorial(api, state="closed")


def test_cancel_of_an_open_session_has_no_effects(api: IntegrationService) -> None:
    tutorial(api)

    response = tutorial(api, state="cancelled")

    assert response["effects"] == []
    assert response["customerSession"]["state"] == "cancelled"
    assert response["customerProfile"]["closedSessions"] == 0


def test_cancel_of_a_closed_session_rolls_back(api: IntegrationService) -> None:
    tutorial(api, state="closed")

    response = tutorial(api, state="cancelled")

    assert of_type(response, "rollbackCoupon")[0]["props"] == {"value": "xmas20"}
    rollback = of_type(response, "rollbackDiscount")
    assert [effect["props"] for effect in rollback] == [
        {"name": "20% off with coupon", "value": 24.6}
    ]
    assert rollback[0]["campaignId"] == 1
    assert rollback[0]["rulesetId"] == 101
    points = of_type(response, "rollbackAddedLoyaltyPoints")
    assert points[0]["props"]["value"] == 123
    assert response["customerProfile"]["closedSessions"] == 0
    assert response["customerProfile"]["totalSales"] == 0
    assert response["coupons"][0]["usageCounter"] == 0
    assert response["loyalty"]["programs"]["1"]["ledger"]["currentBalance"] == 0
    assert response["event"]["type"] == "talon_session_revoked"
    assert api.get_customer_session("s-1")["effects"] == []


def test_cancel_makes_a_single_use_coupon_usable_again(api: IntegrationService) -> None:
    put(api, "s-1", profileId="a", couponCodes=["ONCE-20"], cartItems=[BLOUSE], state="closed")

    refused = put(api, "s-2", profileId="b", couponCodes=["ONCE-20"], cartItems=[BLOUSE])
    put(api, "s-1", state="cancelled")
    accepted = put(api, "s-3", profileId="b", couponCodes=["ONCE-20"], cartItems=[BLOUSE])

    reasons = [effect["props"]["rejectionReason"] for effect in of_type(refused, "rejectCoupon")]
    assert reasons == ["CouponLimitReached"]
    assert of_type(accepted, "acceptCoupon")[0]["props"]["value"] == "ONCE-20"


def test_partial_return_rolls_back_the_returned_share(api: IntegrationService) -> None:
    tutorial(api, state="closed")

    response = api.return_cart_items(
        "s-1",
        {
            "return": {"returnedCartItems": [{"position": 1, "quantity": 1}]},
            "responseContent": ["customerSession", "customerProfile"],
        },
    )

    # 74 of 123 returned: 24.6 * 74 / 123 = 14.8
    assert [e["props"]["value"] for e in of_type(response, "rollbackDiscount")] == [14.8]
    assert of_type(response, "rollbackAddedLoyaltyPoints")[0]["props"]["value"] == 74
    assert of_type(response, "rollbackCoupon") == []
    session = response["customerSession"]
    assert session["state"] == "partially_returned"
    assert [item["returnedQuantity"] for item in session["cartItems"]] == [0, 1]
    assert [item["remainingQuantity"] for item in session["cartItems"]] == [1, 0]
    assert response["customerProfile"]["totalSales"] == 49
    assert response["customerProfile"]["closedSessions"] == 1
    returned = response["return"]
    assert returned["returnedCartItems"] == [{"position": 1, "quantity": 1, "sku": "dtr003"}]
    assert returned["sessionIntegrationId"] == "s-1"
    assert returned["profileIntegrationId"] == "cust-1"


def test_returns_then_cancel_add_up_to_the_original_discount(api: IntegrationService) -> None:
    put(
        api,
        profileId="cust-1",
        couponCodes=["xmas20"],
        state="closed",
        cartItems=[
            {"sku": "a", "quantity": 3, "price": 10},
            {"sku": "b", "quantity": 1, "price": 7},
        ],
    )

    first = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"sku": "a", "quantity": 1}]}}
    )
    second = api.return_cart_items(
        "s-1",
        {
            "return": {"returnedCartItems": [{"position": 0, "quantity": 1}]},
            "responseContent": ["previousReturns"],
        },
    )
    cancel = put(api, state="cancelled")

    total = sum(
        effect["props"]["value"]
        for response in (first, second, cancel)
        for effect in of_type(response, "rollbackDiscount")
    )
    assert round(total, 2) == 7.4  # 20 % of 37
    assert len(second["previousReturns"]) == 1
    assert cancel["customerProfile"]["totalSales"] == 0


def test_per_item_discount_is_rolled_back_by_position(api: IntegrationService) -> None:
    shoes = {"sku": "snk-1", "quantity": 2, "price": 80, "category": "Shoes"}
    put(api, profileId="cust-1", couponCodes=["SHOES15"], cartItems=[BLOUSE, shoes], state="closed")

    response = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"position": 1, "quantity": 1}]}}
    )

    rollbacks = [e["props"] for e in of_type(response, "rollbackDiscount")]
    per_item = [props for props in rollbacks if "cartItemPosition" in props]
    assert per_item == [{"name": "15% off shoes", "value": 12, "cartItemPosition": 1}]
    # The cart (209) also earned "10 off orders of 150+": 80 of 209 returned → 3.83 of it.
    assert {"name": "10 off orders of 150+", "value": 3.83} in rollbacks


@pytest.mark.parametrize(
    "item",
    [
        {"position": 5},
        {"position": 0, "quantity": 2},
        {"position": 0, "quantity": 0},
        {"position": 0, "sku": "dtr003"},
        {"sku": "unknown"},
        {"quantity": 1},
    ],
)
def test_invalid_returns_are_400(api: IntegrationService, item: dict[str, Any]) -> None:
    tutorial(api, state="closed")

    with pytest.raises(InvalidDataError) as caught:
        api.return_cart_items("s-1", {"return": {"returnedCartItems": [item]}})

    assert caught.value.body()["errors"][0]["source"]["pointer"].startswith(
        "/return/returnedCartItems/0"
    )
    assert api.state.sessions["s-1"].state == "closed"


def test_returns_need_a_closed_session(api: IntegrationService) -> None:
    tutorial(api)
    body = {"return": {"returnedCartItems": [{"position": 0}]}}

    with pytest.raises(BadRequestError):
        api.return_cart_items("s-1", body)
    with pytest.raises(BadRequestError):
        api.return_cart_items("unknown", body)


def test_dry_return_changes_nothing(api: IntegrationService) -> None:
    tutorial(api, state="closed")

    response = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"position": 0}]}}, dry=True
    )

    assert of_type(response, "rollbackDiscount")
    assert api.get_customer_session("s-1")["customerSession"]["state"] == "closed"
    assert api.state.profiles["cust-1"].total_sales == 123


def test_reopen_rolls_back_and_opens(api: IntegrationService) -> None:
    tutorial(api, state="closed")

    response = api.reopen_customer_session("s-1")

    assert set(response) == {"effects"}
    types = [effect["effectType"] for effect in response["effects"]]
    assert sorted(types) == ["rollbackAddedLoyaltyPoints", "rollbackCoupon", "rollbackDiscount"]
    stored = api.get_customer_session("s-1")
    assert stored["customerSession"]["state"] == "open"
    assert stored["effects"] == []
    assert api.state.profiles["cust-1"].closed_sessions == 0

    closed_again = tutorial(api, state="closed")
    assert closed_again["customerProfile"]["closedSessions"] == 1
    assert closed_again["coupons"][0]["usageCounter"] == 1


@pytest.mark.parametrize("path", [[], ["open"], ["open", "cancelled"]])
def test_reopen_needs_a_closed_session(api: IntegrationService, path: list[str]) -> None:
    for state in path:
        tutorial(api, state=state)

    with pytest.raises(BadRequestError):
        api.reopen_customer_session("s-1")


def test_get_session_returns_the_stored_session_and_effects(api: IntegrationService) -> None:
    created = tutorial(api)

    stored = api.get_customer_session("s-1")

    assert stored["customerSession"] == created["customerSession"]
    assert stored["effects"] == created["effects"]


def test_get_unknown_session_is_404(api: IntegrationService) -> None:
    with pytest.raises(NotFoundError) as caught:
        api.get_customer_session("nope")

    assert caught.value.body()["StatusCode"] == 404


def test_dry_update_evaluates_the_payload_alone_and_stores_nothing(api: IntegrationService) -> None:
    tutorial(api)

    response = api.update_customer_session(
        "s-1",
        {
            "customerSession": {"profileId": "cust-1", "cartItems": [BLOUSE]},
            "responseContent": ["customerSession"],
        },
        dry=True,
    )

    assert response["customerSession"]["couponCodes"] == []
    assert of_type(response, "setDiscount") == []
    assert api.get_customer_session("s-1")["customerSession"]["couponCodes"] == ["xmas20"]
    assert api.state.sessions["s-1"].update_count == 1


def test_dry_update_creates_no_session_or_profile(api: IntegrationService) -> None:
    put_body = {"customerSession": {"profileId": "ghost", "cartItems": [BLOUSE], "state": "closed"}}

    api.update_customer_session("dry-1", put_body, dry=True)

    assert "dry-1" not in api.state.sessions
    assert "ghost" not in api.state.profiles


def test_now_needs_dry_and_a_future_time(api: IntegrationService, clock: FakeClock) -> None:
    body = {"customerSession": {"cartItems": [BLOUSE]}}
    future = clock.now + timedelta(days=1)
    past = clock.now - timedelta(days=1)

    api.update_customer_session("s-1", body, dry=True, now=future)
    for dry, now in ((False, future), (True, past)):
        with pytest.raises(InvalidDataError) as caught:
            api.update_customer_session("s-1", body, dry=dry, now=now)
        assert caught.value.body()["errors"][0]["source"] == {"parameter": "now"}


def test_anonymous_session_has_no_profile(api: IntegrationService) -> None:
    response = put(api, cartItems=[BLOUSE], state="closed")

    assert "customerProfile" not in response
    assert response["customerSession"]["firstSession"] is True
    assert of_type(response, "addLoyaltyPoints") == []
    assert api.state.profiles == {}

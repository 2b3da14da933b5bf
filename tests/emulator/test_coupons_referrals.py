"""Coupons, referrals and campaign budgets through the session life cycle.

Driven through IntegrationService with JSON-shaped bodies and a campaign file made for the tests;
the clock is fixed at 2026-03-01, so coupon and referral dates are checked against it.
"""

from __future__ import annotations

from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.campaigns.file import CampaignSet, parse_campaigns
from talon_one_emulator.errors import InvalidDataError
from talon_one_emulator.store.state import EmulatorState

DOC: dict[str, Any] = {
    "attributes": {"CustomerProfile": {"tier": "string"}},
    "campaigns": [
        {
            "id": 1,
            "name": "Coupons",
            "rulesetId": 11,
            "coupons": [
                {"code": "xmas20", "usageLimit": 1},
                {"code": "EARLY-20", "startDate": "2026-06-01T00:00:00Z"},
                {"code": "LATE-20", "expiryDate": "2026-01-01T00:00:00Z"},
                {"code": "ADA-ONLY", "recipientIntegrationId": "ada"},
                {"code": "RESERVED", "isReservationMandatory": True},
            ],
            "rules": [
                {
                    "name": "20% off with a coupon",
                    "conditions": [{"couponValid": True}],
                    "effects": [{"setDiscount": {"name": "20% off", "percentage": 20}}],
                }
            ],
        },
        {
            "id": 2,
            "name": "Budgeted",
            "rulesetId": 21,
            "coupons": [{"code": "BUDGET-1"}, {"code": "BUDGET-2"}, {"code": "BUDGET-3"}],
            "budgets": {"couponRedemptions": 2, "profileCouponRedemptions": 1, "discount": 30},
            "rules": [
                {
                    "name": "25 off",
                    "conditions": [{"couponValid": True}],
                    "effects": [{"setDiscount": {"name": "25 off", "amount": 25}}],
                }
            ],
        },
        {
            "id": 3,
            "name": "Small discount budget",
            "rulesetId": 31,
            "coupons": [{"code": "SMALL-1"}],
            "budgets": {"discount": 25},
            "rules": [
                {
                    "name": "25 off",
                    "conditions": [{"couponValid": True}],
                    "effects": [{"setDiscount": {"name": "small 25 off", "amount": 25}}],
                }
            ],
        },
        {
            "id": 4,
            "name": "Refer a friend",
            "rulesetId": 41,
            "referrals": {"usageLimit": 2},
            "budgets": {
                "referralRedemptions": 3,
                "profileReferralRedemptions": 1,
                "referralCreations": 1,
            },
            "rules": [
                {
                    "name": "10% for friends",
                    "conditions": [{"referralValid": True}, {"cartSubtotalAtLeast": 20}],
                    "effects": [{"setDiscount": {"name": "friend 10%", "percentage": 10}}],
                },
                {
                    "name": "thank the advocate on close",
                    "conditions": [{"referralValid": True}, {"sessionState": "closed"}],
                    "effects": [
                        {
                            "createCoupon": {
                                "prefix": "THX-",
                                "recipient": "advocate",
                                "validityDays": 30,
                            }
                        }
                    ],
                },
            ],
        },
        {
            "id": 5,
            "name": "Become an advocate",
            "rulesetId": 51,
            "rules": [
                {
                    "name": "gold customers get a referral code on close",
                    "conditions": [
                        {"profileAttributeEquals": {"attribute": "tier", "value": "gold"}},
                        {"sessionState": "closed"},
                    ],
                    "effects": [{"createReferral": {"campaignId": 4}}],
                }
            ],
        },
    ],
}
CAMPAIGNS = parse_campaigns(DOC)
BLOUSE = {"sku": "rsb002", "quantity": 1, "price": 49}
TROUSERS = {"sku": "dtr003", "quantity": 1, "price": 74}
SOCKS = {"sku": "sock01", "quantity": 1, "price": 10}


@pytest.fixture
def campaigns() -> CampaignSet:
    return CAMPAIGNS


def put(api: IntegrationService, session_id: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("cartItems", [BLOUSE, TROUSERS])
    body = {
        "customerSession": fields,
        "responseContent": ["customerSession", "coupons", "referral"],
    }
    return api.update_customer_session(session_id, body)


def of_type(response: dict[str, Any], effect_type: str) -> list[dict[str, Any]]:
    return [effect for effect in response["effects"] if effect["effectType"] == effect_type]


def reasons(response: dict[str, Any], effect_type: str = "rejectCoupon") -> list[str]:
    return [effect["props"]["rejectionReason"] for effect in of_type(response, effect_type)]


def referral_for(api: IntegrationService, advocate: str, **extra: Any) -> str:
    created = api.promotions.create_referral(
        {"campaignId": 4, "advocateProfileIntegrationId": advocate, **extra}
    )
    return str(created["code"])


# --- coupons -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "profile", "reason"),
    [
        ("EARLY-20", "bob", "CouponStartDateInFuture"),
        ("LATE-20", "bob", "CouponExpired"),
        ("ADA-ONLY", "bob", "CouponRecipientDoesNotMatch"),
        ("ADA-ONLY", None, "CouponRecipientDoesNotMatch"),
        ("RESERVED", "bob", "CouponReservationRequired"),
        ("RESERVED", None, "ProfileRequired"),
        ("NOPE-123", "bob", "CouponNotFound"),
    ],
)
def test_coupon_rejection_reasons(
    api: IntegrationService, code: str, profile: str | None, reason: str
) -> None:
    fields = {"couponCodes": [code]} | ({"profileId": profile} if profile else {})

    response = put(api, "s-1", **fields)

    [rejected] = of_type(response, "rejectCoupon")
    assert rejected["props"] == {"value": code, "rejectionReason": reason}
    assert of_type(response, "acceptCoupon") == []
    assert of_type(response, "setDiscount") == []
    if reason != "CouponNotFound":
        assert rejected["campaignId"] == 1
        assert rejected["rulesetId"] == 11
        assert rejected["ruleName"] == "20% off with a coupon"
        assert isinstance(rejected["triggeredByCoupon"], int)


def test_recipient_and_reserved_coupons_are_accepted_for_their_customers(
    api: IntegrationService,
) -> None:
    api.promotions.create_coupon_reservation("RESERVED", {"integrationIDs": ["bob"]})

    personal = put(api, "s-1", profileId="ada", couponCodes=["ADA-ONLY"])
    reserved = put(api, "s-2", profileId="bob", couponCodes=["reserved"])

    assert [e["props"]["value"] for e in of_type(personal, "acceptCoupon")] == ["ADA-ONLY"]
    assert [e["props"]["value"] for e in of_type(reserved, "acceptCoupon")] == ["reserved"]
    assert of_type(reserved, "setDiscount")[0]["props"]["value"] == 24.6


def test_usage_limit_reached_after_close(api: IntegrationService) -> None:
    closed = put(api, "s-1", profileId="ada", couponCodes=["xmas20"], state="closed")

    refused = put(api, "s-2", profileId="bob", couponCodes=["xmas20"])

    assert of_type(closed, "acceptCoupon")
    assert closed["coupons"][0]["usageCounter"] == 1
    assert reasons(refused) == ["CouponLimitReached"]


def test_profile_budget_limits_each_customer(api: IntegrationService) -> None:
    put(api, "s-1", profileId="ada", couponCodes=["BUDGET-1"], state="closed")

    again = put(api, "s-2", profileId="ada", couponCodes=["BUDGET-2"])
    other = put(api, "s-3", profileId="bob", couponCodes=["BUDGET-2"])
    anonymous = put(api, "s-4", couponCodes=["BUDGET-2"])

    assert reasons(again) == ["ProfileLimitReached"]
    assert reasons(other) == []
    assert reasons(anonymous) == ["ProfileRequired"]


def test_campaign_budgets_cap_discounts_and_redemptions(api: IntegrationService) -> None:
    first = put(api, "s-1", profileId="ada", couponCodes=["BUDGET-1"], state="closed")
    second = put(api, "s-2", profileId="bob", couponCodes=["BUDGET-2"], state="closed")
    third = put(api, "s-3", profileId="cid", couponCodes=["BUDGET-3"])

    assert of_type(first, "setDiscount")[0]["props"] == {"name": "25 off", "value": 25}
    # 30 of discount budget: 5 left for the second order, which wanted 25.
    assert of_type(second, "setDiscount")[0]["props"] == {
        "name": "25 off",
        "value": 5,
        "desiredValue": 25,
    }
    assert reasons(third) == ["CampaignLimitReached"]


def test_cancel_gives_the_budgets_back(api: IntegrationService) -> None:
    put(api, "s-1", profileId="ada", couponCodes=["BUDGET-1"], state="closed")
    put(api, "s-2", profileId="bob", couponCodes=["BUDGET-2"], state="closed")

    cancelled = put(api, "s-1", state="cancelled")
    third = put(api, "s-3", profileId="cid", couponCodes=["BUDGET-3"])

    assert [e["props"]["value"] for e in of_type(cancelled, "rollbackCoupon")] == ["BUDGET-1"]
    assert of_type(cancelled, "rollbackDiscount")[0]["props"] == {"name": "25 off", "value": 25}
    assert reasons(third) == []
    assert of_type(third, "setDiscount")[0]["props"]["value"] == 25  # 30 - 5 spent


def test_spent_discount_budget_rejects_the_coupon(api: IntegrationService) -> None:
    put(api, "s-1", profileId="ada", couponCodes=["SMALL-1"], state="closed")

    response = put(api, "s-2", profileId="bob", couponCodes=["SMALL-1"])

    [rejected] = of_type(response, "rejectCoupon")
    assert rejected["props"]["rejectionReason"] == "EffectCouldNotBeApplied"
    assert rejected["props"]["effectIndex"] == 0
    assert of_type(response, "setDiscount") == []


def test_returns_give_back_the_returned_share_of_the_discount_budget(
    api: IntegrationService,
) -> None:
    put(api, "s-1", profileId="ada", couponCodes=["SMALL-1"], state="closed")
    api.return_cart_items("s-1", {"return": {"returnedCartItems": [{"position": 1}]}})

    response = put(api, "s-2", profileId="bob", couponCodes=["SMALL-1"])

    # 74 of 123 returned: 25 * 74 / 123 = 15.04 back in the budget.
    assert of_type(response, "setDiscount")[0]["props"] == {
        "name": "small 25 off",
        "value": 15.04,
        "desiredValue": 25,
    }


# --- referrals -----------------------------------------------------------------------------------


def test_referral_is_accepted_redeemed_on_close_and_rewards_the_advocate(
    api: IntegrationService,
) -> None:
    code = referral_for(api, "ada")

    opened = put(api, "s-1", profileId="bob", referralCode=code)
    closed = put(api, "s-1", state="closed")

    [accepted] = of_type(opened, "acceptReferral")
    assert accepted["props"] == {"value": code}
    assert (accepted["campaignId"], accepted["rulesetId"], accepted["ruleIndex"]) == (4, 41, 0)
    assert of_type(opened, "setDiscount")[0]["props"] == {"name": "friend 10%", "value": 12.3}
    assert of_type(opened, "couponCreated") == []
    assert opened["referral"]["usageCounter"] == 0
    [created] = of_type(closed, "couponCreated")
    assert created["props"]["profileId"] == "ada"
    assert created["props"]["value"].startswith("THX-")
    [coupon] = closed["createdCoupons"]
    assert coupon["value"] == created["props"]["value"]
    assert coupon["recipientIntegrationId"] == "ada"
    assert coupon["campaignId"] == 4
    assert coupon["referralId"] == opened["referral"]["id"]
    assert coupon["expiryDate"].startswith("2026-03-31")
    assert closed["referral"]["usageCounter"] == 1
    assert closed["referral"]["referredCustomers"] == ["bob"]


def test_created_coupon_is_a_real_coupon_for_its_recipient(api: IntegrationService) -> None:
    code = referral_for(api, "ada")
    closed = put(api, "s-1", profileId="bob", referralCode=code, state="closed")
    coupon_code = closed["createdCoupons"][0]["value"]

    for_ada = put(api, "s-2", profileId="ada", couponCodes=[coupon_code])
    for_bob = put(api, "s-3", profileId="bob", couponCodes=[coupon_code])

    # A coupon of campaign 4, which has no couponValid rule: valid but not used by any rule.
    assert reasons(for_ada) == ["CouponPartOfNotTriggeredCampaign"]
    assert reasons(for_bob) == ["CouponRecipientDoesNotMatch"]


@pytest.mark.parametrize(
    ("setup", "profile", "reason"),
    [
        ({}, "ada", "ReferralRecipientIdSameAsAdvocate"),
        ({"friendProfileIntegrationId": "cid"}, "bob", "ReferralRecipientDoesNotMatch"),
        ({"expiryDate": "2026-02-01T00:00:00Z"}, "bob", "ReferralExpired"),
        ({"startDate": "2026-04-01T00:00:00Z"}, "bob", "ReferralStartDateInFuture"),
    ],
)
def test_referral_rejection_reasons(
    api: IntegrationService, setup: dict[str, Any], profile: str, reason: str
) -> None:
    code = referral_for(api, "ada", **setup)

    response = put(api, "s-1", profileId=profile, referralCode=code)

    [rejected] = of_type(response, "rejectReferral")
    assert rejected["props"] == {"value": code, "rejectionReason": reason}
    assert rejected["campaignId"] == 4
    assert of_type(response, "acceptReferral") == []
    assert of_type(response, "setDiscount") == []


def test_unknown_referral_is_not_found(api: IntegrationService) -> None:
    response = put(api, "s-1", profileId="bob", referralCode="NOPE-REF")

    assert of_type(response, "rejectReferral") == [
        {
            "campaignId": 0,
            "rulesetId": 0,
            "ruleIndex": 0,
            "ruleName": "",
            "effectType": "rejectReferral",
            "props": {"value": "NOPE-REF", "rejectionReason": "ReferralNotFound"},
        }
    ]


def test_referral_rejected_by_condition(api: IntegrationService) -> None:
    code = referral_for(api, "ada")

    response = put(api, "s-1", profileId="bob", referralCode=code, cartItems=[SOCKS])

    [rejected] = of_type(response, "rejectReferral")
    assert rejected["props"]["rejectionReason"] == "ReferralRejectedByCondition"
    assert rejected["props"]["conditionIndex"] == 1


def test_referral_limits(api: IntegrationService) -> None:
    code = referral_for(api, "ada")  # usage limit 2 (the campaign's default)
    put(api, "s-1", profileId="bob", referralCode=code, state="closed")
    put(api, "s-2", profileId="cid", referralCode=code, state="closed")

    used_up = put(api, "s-3", profileId="dan", referralCode=code)
    again = put(api, "s-4", profileId="bob", referralCode=referral_for(api, "eve"))
    put(api, "s-5", profileId="fay", referralCode=referral_for(api, "eve"), state="closed")
    campaign_full = put(api, "s-6", profileId="gus", referralCode=referral_for(api, "eve"))

    assert reasons(used_up, "rejectReferral") == ["ReferralLimitReached"]
    assert reasons(again, "rejectReferral") == ["ProfileLimitReached"]
    assert reasons(campaign_full, "rejectReferral") == ["CampaignLimitReached"]


def test_cancel_rolls_back_the_referral_but_keeps_the_created_coupon(
    api: IntegrationService, state: EmulatorState
) -> None:
    code = referral_for(api, "ada", usageLimit=1)
    closed = put(api, "s-1", profileId="bob", referralCode=code, state="closed")
    coupon_code = closed["createdCoupons"][0]["value"]

    cancelled = put(api, "s-1", state="cancelled")
    reused = put(api, "s-2", profileId="cid", referralCode=code)

    assert [e["props"] for e in of_type(cancelled, "rollbackReferral")] == [{"value": code}]
    assert [e["props"]["name"] for e in of_type(cancelled, "rollbackDiscount")] == ["friend 10%"]
    assert cancelled["referral"]["usageCounter"] == 0
    assert of_type(reused, "acceptReferral")
    assert state.ledger.coupon_record(coupon_code) is not None
    assert state.ledger.counters(4).spent.coupons_created == 1


def test_reopen_rolls_back_redemptions_but_not_creations(
    api: IntegrationService, state: EmulatorState
) -> None:
    code = referral_for(api, "ada", usageLimit=1)
    closed = put(
        api, "s-1", profileId="bob", referralCode=code, couponCodes=["xmas20"], state="closed"
    )
    [thanks] = closed["createdCoupons"]

    reopened = api.reopen_customer_session("s-1")

    types = sorted(effect["effectType"] for effect in reopened["effects"])
    assert types == ["rollbackCoupon", "rollbackDiscount", "rollbackDiscount", "rollbackReferral"]
    assert state.ledger.referral_record(code) is not None
    assert state.ledger.referral_record(code).usage_counter == 0  # type: ignore[union-attr]
    assert state.ledger.coupon_record("xmas20").usage_counter == 0  # type: ignore[union-attr]
    assert state.ledger.counters(4).spent.coupons_created == 1
    # Closing again creates nothing new: the same coupon, stored once.
    again = put(api, "s-1", state="closed")
    assert again["createdCoupons"] == [thanks]
    assert state.ledger.counters(4).spent.coupons_created == 1


def test_create_referral_effect_and_its_budget(
    api: IntegrationService, state: EmulatorState
) -> None:
    api.update_customer_profile("ada", {"attributes": {"tier": "gold"}})
    api.update_customer_profile("bob", {"attributes": {"tier": "gold"}})

    first = put(api, "s-1", profileId="ada", state="closed")
    second = put(api, "s-2", profileId="bob", state="closed")
    put(api, "s-1", state="cancelled")
    third = put(api, "s-3", profileId="bob", state="closed")

    [created] = of_type(first, "referralCreated")
    [referral] = first["createdReferrals"]
    assert referral["code"] == created["props"]["value"]
    assert referral["advocateProfileIntegrationId"] == "ada"
    assert referral["campaignId"] == 4
    assert referral["usageLimit"] == 2
    assert second["createdReferrals"] == []  # the creation budget (1) is spent
    # The cancel gave the referral creation back (coupon creations never are): bob gets one.
    assert len(third["createdReferrals"]) == 1
    assert state.ledger.referral_record(referral["code"]) is not None  # the referral stays


def test_dry_requests_create_nothing(api: IntegrationService, state: EmulatorState) -> None:
    code = referral_for(api, "ada")
    body = {
        "customerSession": {
            "profileId": "bob",
            "referralCode": code,
            "cartItems": [BLOUSE],
            "state": "closed",
        }
    }

    response = api.update_customer_session("s-1", body, dry=True)

    [coupon] = response["createdCoupons"]
    assert coupon["id"] == 0
    assert state.ledger.coupon_record(coupon["value"]) is None
    assert state.ledger.referral_record(code).usage_counter == 0  # type: ignore[union-attr]


def test_create_referral_validates_the_campaign(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError) as not_referral:
        api.promotions.create_referral({"campaignId": 1, "advocateProfileIntegrationId": "a"})
    with pytest.raises(InvalidDataError) as unknown:
        api.promotions.create_referral({"campaignId": 99, "advocateProfileIntegrationId": "a"})
    with pytest.raises(InvalidDataError) as dates:
        api.promotions.create_referral(
            {
                "campaignId": 4,
                "advocateProfileIntegrationId": "a",
                "startDate": "2026-05-01T00:00:00Z",
                "expiryDate": "2026-04-01T00:00:00Z",
            }
        )

    assert not_referral.value.errors[0].pointer == "/campaignId"
    assert "not a referral campaign" in not_referral.value.errors[0].details
    assert "does not exist" in unknown.value.errors[0].details
    assert dates.value.errors[0].pointer == "/expiryDate"


def test_referrals_for_multiple_advocates(api: IntegrationService) -> None:
    body = {
        "campaignId": 4,
        "advocateProfileIntegrationIds": ["ada", "bob", "cid"],
        "referralPattern": "REF-###",
        "validCharacters": ["A", "B", "C"],
        "usageLimit": 5,
        "attributes": {"source": "newsletter"},
    }

    silent = api.promotions.create_referrals_for_multiple_advocates(body)
    loud = api.promotions.create_referrals_for_multiple_advocates(body, silent=False)

    assert silent is None
    assert loud is not None
    assert loud["totalResultSize"] == 3
    codes = [referral["code"] for referral in loud["data"]]
    assert len(set(codes)) == 3
    assert all(len(c) == 7 and c.startswith("REF-") and set(c[4:]) <= set("ABC") for c in codes)
    assert [r["advocateProfileIntegrationId"] for r in loud["data"]] == ["ada", "bob", "cid"]
    assert {r["usageLimit"] for r in loud["data"]} == {5}
    assert {r["batchId"] for r in loud["data"]} == {loud["data"][0]["batchId"]}
    assert loud["data"][0]["attributes"] == {"source": "newsletter"}


def test_referral_pattern_without_enough_combinations_is_rejected(
    api: IntegrationService,
) -> None:
    body = {
        "campaignId": 4,
        "advocateProfileIntegrationIds": ["ada", "bob", "cid"],
        "referralPattern": "RE#",
        "validCharacters": ["A", "B"],
    }

    with pytest.raises(InvalidDataError) as raised:
        api.promotions.create_referrals_for_multiple_advocates(body)

    assert raised.value.errors[0].pointer == "/referralPattern"

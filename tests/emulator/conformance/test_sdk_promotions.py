"""Coupons, referrals, audiences, catalogs and reservations, driven by the official Python SDK.

Every SDK call deserialises the response into the SDK's pydantic models (which raise on a missing
required field, a wrong type or a bad enum), and every effect's ``props`` is parsed with the
matching ``*EffectProps`` model, so a passing call proves the shape; the asserts check the values.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import talon_one as t
from talon_one.exceptions import (
    BadRequestException,
    ConflictException,
    NotFoundException,
)

from talon_one_emulator import EmulatorConfig, EmulatorServer, parse_campaigns
from tests.emulator.conformance.conftest import effects_of, new_id, sdk_api

KEY = "promotions-key"

# The tutorial coupon with a usage limit of one, a second campaign stacking 10% on top of it
# (cascading), and per-unit discounts on flattened cart items.
LIMITED_TUTORIAL = {
    "application": {"cartItemFlattening": True},
    "campaigns": [
        {
            "id": 1,
            "name": "Tutorial: 20% off with a coupon",
            "rulesetId": 101,
            "coupons": [{"code": "xmas20", "usageLimit": 1}, {"code": "SPRING20"}],
            "rules": [
                {
                    "name": "20% off the session total with a valid coupon",
                    "conditions": [{"couponValid": True}],
                    "effects": [{"setDiscount": {"name": "20% off with coupon", "percentage": 20}}],
                }
            ],
        },
        {
            "id": 2,
            "name": "10% on top",
            "rulesetId": 201,
            "rules": [
                {
                    "name": "10% of what is left",
                    "effects": [{"setDiscount": {"name": "10% more", "percentage": 10}}],
                }
            ],
        },
        {
            "id": 3,
            "name": "Trousers",
            "rulesetId": 301,
            "rules": [
                {
                    "name": "2 off each pair",
                    "effects": [
                        {
                            "setDiscountPerItem": {
                                "name": "2 off trousers",
                                "amount": 2,
                                "category": "Trousers",
                            }
                        }
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[KEY])) as running:
        yield running


@pytest.fixture(scope="module")
def limited() -> Iterator[t.IntegrationApi]:
    config = EmulatorConfig(api_keys=[KEY], campaigns=parse_campaigns(LIMITED_TUTORIAL))
    with EmulatorServer(config) as running:
        yield sdk_api(running)


def cart(*, trousers: int = 1, blouse_price: float | None = 49) -> list[t.CartItem]:
    return [
        t.CartItem(
            name="Red Spring Blouse",
            sku="rsb002",
            quantity=1,
            price=blouse_price,
            category="Blouses",
        ),
        t.CartItem(
            name="Denim Trousers", sku="dtr003", quantity=trousers, price=74, category="Trousers"
        ),
    ]


def session(
    api: t.IntegrationApi,
    session_id: str,
    content: list[str] | None = None,
    **fields: Any,
) -> t.IntegrationStateV2:
    fields.setdefault("cart_items", cart())
    request = t.IntegrationRequest(
        customer_session=t.NewCustomerSessionV2(**fields),
        response_content=content or ["customerSession", "customerProfile", "coupons", "referral"],
    )
    return api.update_customer_session_v2(session_id, request)


def close(api: t.IntegrationApi, session_id: str, **fields: Any) -> t.IntegrationStateV2:
    return session(api, session_id, state="closed", **fields)


def cancel(api: t.IntegrationApi, session_id: str) -> t.IntegrationStateV2:
    request = t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(state="cancelled"))
    return api.update_customer_session_v2(session_id, request)


# --- the tutorial coupon with a usage limit, cascading, flattening -------------------------------


def test_coupon_usage_limit_reached(limited: t.IntegrationApi) -> None:
    first = close(limited, new_id("sess"), profile_id=new_id("cust"), coupon_codes=["xmas20"])
    second = session(limited, new_id("sess"), profile_id=new_id("cust"), coupon_codes=["xmas20"])

    assert [c.value for c in effects_of(first.effects, "acceptCoupon")] == ["xmas20"]
    assert first.coupons is not None
    assert first.coupons[0].usage_counter == 1
    assert first.coupons[0].usage_limit == 1
    [rejected] = effects_of(second.effects, "rejectCoupon")
    assert rejected.value == "xmas20"
    assert rejected.rejection_reason == "CouponLimitReached"
    assert effects_of(second.effects, "acceptCoupon") == []
    assert [d.name for d in effects_of(second.effects, "setDiscount")] == ["10% more"]


def test_cascading_discounts_and_per_unit_effects(limited: t.IntegrationApi) -> None:
    response = session(
        limited, new_id("sess"), profile_id=new_id("cust"), cart_items=cart(trousers=2)
    )

    # 49 + 2 x 74 = 197: 10% = 19.7; then 2 off each pair of trousers (flattened units).
    assert [(d.name, d.value) for d in effects_of(response.effects, "setDiscount")] == [
        ("10% more", 19.7)
    ]
    per_unit = effects_of(response.effects, "setDiscountPerItem")
    assert [(p.position, p.sub_position, p.value) for p in per_unit] == [(1, 0, 2), (1, 1, 2)]


def test_cascading_after_the_tutorial_coupon(limited: t.IntegrationApi) -> None:
    response = session(limited, new_id("sess"), coupon_codes=["SPRING20"], cart_items=cart())

    # 20% of 123 = 24.6; then 10% of the 98.4 left = 9.84 (not 12.3); 2 off the trousers.
    assert [(d.name, d.value) for d in effects_of(response.effects, "setDiscount")] == [
        ("20% off with coupon", 24.6),
        ("10% more", 9.84),
    ]
    assert [d.value for d in effects_of(response.effects, "setDiscountPerItem")] == [2]


# --- referrals -----------------------------------------------------------------------------------


def test_referral_scenario(api: t.IntegrationApi) -> None:
    advocate, friend, other = new_id("adv"), new_id("friend"), new_id("other")

    referral = api.create_referral(
        t.NewReferral(campaign_id=9, advocate_profile_integration_id=advocate)
    )
    opened = session(api, new_id("sess"), profile_id=friend, referral_code=referral.code)
    friend_session = opened.customer_session
    assert friend_session is not None
    closed = close(api, friend_session.integration_id)
    reused = session(api, new_id("sess"), profile_id=other, referral_code=referral.code)
    cancelled = cancel(api, friend_session.integration_id)
    after_cancel = session(api, new_id("sess"), profile_id=other, referral_code=referral.code)

    assert isinstance(referral, t.Referral)
    assert referral.campaign_id == 9
    assert referral.advocate_profile_integration_id == advocate
    assert referral.usage_limit == 1
    assert referral.usage_counter == 0
    assert len(referral.code) >= 4
    assert [a.value for a in effects_of(opened.effects, "acceptReferral")] == [referral.code]
    assert [d.value for d in effects_of(opened.effects, "setDiscount")] == [12.3]
    assert opened.referral is not None
    assert opened.referral.code == referral.code
    # Closed: the referral is redeemed and the advocate gets a thank-you coupon.
    assert closed.referral is not None
    assert closed.referral.usage_counter == 1
    assert closed.referral.referred_customers == [friend]
    [created] = effects_of(closed.effects, "couponCreated")
    assert created.profile_id == advocate
    [coupon] = closed.created_coupons
    assert isinstance(coupon, t.Coupon)
    assert coupon.value == created.value
    assert coupon.recipient_integration_id == advocate
    assert coupon.campaign_id == 9
    assert coupon.referral_id == referral.id
    # Used up: the next friend is refused.
    [rejected] = effects_of(reused.effects, "rejectReferral")
    assert (rejected.value, rejected.rejection_reason) == (referral.code, "ReferralLimitReached")
    # Cancelled: the redemption and the discount are rolled back, the code is usable again.
    assert [r.value for r in effects_of(cancelled.effects, "rollbackReferral")] == [referral.code]
    assert [r.value for r in effects_of(cancelled.effects, "rollbackDiscount")] == [12.3]
    assert effects_of(after_cancel.effects, "acceptReferral")
    # The created coupon stays, and gives its recipient 15 off.
    thanks = session(api, new_id("sess"), profile_id=advocate, coupon_codes=[coupon.value])
    assert [c.value for c in effects_of(thanks.effects, "acceptCoupon")] == [coupon.value]
    assert 15 in [d.value for d in effects_of(thanks.effects, "setDiscount")]


def test_referral_rejections(api: t.IntegrationApi) -> None:
    advocate = new_id("adv")
    referral = api.create_referral(
        t.NewReferral(
            campaign_id=9,
            advocate_profile_integration_id=advocate,
            friend_profile_integration_id="the-friend",
            usage_limit=0,
            attributes={"channel": "email"},
        )
    )
    expired = api.create_referral(
        t.NewReferral(
            campaign_id=9,
            advocate_profile_integration_id=advocate,
            expiry_date=datetime.now(UTC) - timedelta(days=1),
        )
    )

    own = session(api, new_id("sess"), profile_id=advocate, referral_code=referral.code)
    stranger = session(api, new_id("sess"), profile_id=new_id("c"), referral_code=referral.code)
    late = session(api, new_id("sess"), profile_id=new_id("c"), referral_code=expired.code)
    unknown = session(api, new_id("sess"), profile_id=new_id("c"), referral_code="NO-SUCH-CODE")

    def reason(response: t.IntegrationStateV2) -> str:
        [rejected] = effects_of(response.effects, "rejectReferral")
        return str(rejected.rejection_reason)

    assert referral.attributes == {"channel": "email"}
    assert reason(own) == "ReferralRecipientIdSameAsAdvocate"
    assert reason(stranger) == "ReferralRecipientDoesNotMatch"
    assert reason(late) == "ReferralExpired"
    assert reason(unknown) == "ReferralNotFound"
    assert unknown.effects[-1].campaign_id == 0


def test_create_referral_for_a_campaign_without_referrals(api: t.IntegrationApi) -> None:
    with pytest.raises(BadRequestException) as raised:
        api.create_referral(t.NewReferral(campaign_id=1, advocate_profile_integration_id="a"))

    assert isinstance(raised.value.data, t.ErrorResponse)
    assert raised.value.data.errors is not None
    assert raised.value.data.errors[0].source.pointer == "/campaignId"


def test_referrals_for_multiple_advocates(api: t.IntegrationApi) -> None:
    advocates = [new_id("adv") for _ in range(3)]
    request = t.NewReferralsForMultipleAdvocates(
        campaign_id=9,
        advocate_profile_integration_ids=advocates,
        usage_limit=3,
        referral_pattern="FRIEND-####",
    )

    assert api.create_referrals_for_multiple_advocates(request) is None  # silent: 204
    response = api.create_referrals_for_multiple_advocates(request, silent="no")

    assert isinstance(response, t.CreateReferralsForMultipleAdvocates201Response)
    assert response.total_result_size == 3
    assert [r.advocate_profile_integration_id for r in response.data] == advocates
    assert all(r.code.startswith("FRIEND-") and len(r.code) == 11 for r in response.data)
    assert len({r.code for r in response.data}) == 3
    assert {r.usage_limit for r in response.data} == {3}


# --- more coupon rules ---------------------------------------------------------------------------


def test_coupon_reservations(api: t.IntegrationApi) -> None:
    reserved, other = new_id("res"), new_id("res")

    coupon = api.create_coupon_reservation(
        "RESERVED20", t.CouponReservations(integration_ids=[reserved, other])
    )
    api.delete_coupon_reservation("RESERVED20", t.CouponReservations(integration_ids=[other]))
    customers = api.get_reserved_customers("RESERVED20")
    accepted = session(api, new_id("sess"), profile_id=reserved, coupon_codes=["RESERVED20"])
    refused = session(api, new_id("sess"), profile_id=other, coupon_codes=["RESERVED20"])

    assert isinstance(coupon, t.Coupon)
    assert coupon.value == "RESERVED20"
    assert coupon.is_reservation_mandatory is True
    assert isinstance(customers, t.GetReservedCustomers200Response)
    assert reserved in [profile.integration_id for profile in customers.data]
    assert other not in [profile.integration_id for profile in customers.data]
    assert customers.total_result_size == len(customers.data)
    assert effects_of(accepted.effects, "acceptCoupon")
    [rejected] = effects_of(refused.effects, "rejectCoupon")
    assert rejected.rejection_reason == "CouponReservationRequired"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("NEXTYEAR20", "CouponStartDateInFuture"),
        ("LASTYEAR20", "CouponExpired"),
        ("ADA-VIP20", "CouponRecipientDoesNotMatch"),
        ("NOPE-9999", "CouponNotFound"),
    ],
)
def test_coupon_rejection_reasons(api: t.IntegrationApi, code: str, reason: str) -> None:
    response = session(api, new_id("sess"), profile_id=new_id("cust"), coupon_codes=[code])

    [rejected] = effects_of(response.effects, "rejectCoupon")
    assert (rejected.value, rejected.rejection_reason) == (code, reason)


def test_free_shipping_once_per_customer(api: t.IntegrationApi) -> None:
    order: dict[str, Any] = {
        "profile_id": new_id("cust"),
        "coupon_codes": ["FREESHIP"],
        "additional_costs": {"shipping": t.AdditionalCost(price=4.95)},
    }

    first = close(api, new_id("sess"), **order)
    again = session(api, new_id("sess"), **order)

    [free] = effects_of(first.effects, "setDiscountPerAdditionalCost")
    assert (free.additional_cost, free.additional_cost_id, free.value) == ("shipping", 1, 4.95)
    [rejected] = effects_of(again.effects, "rejectCoupon")
    assert rejected.rejection_reason == "ProfileLimitReached"


def test_free_item_and_giveaway(api: t.IntegrationApi) -> None:
    session_id = new_id("sess")
    content = ["awardedGiveaways", "customerSession"]

    opened = session(
        api, session_id, content, profile_id=new_id("cust"), store_integration_id="store-berlin"
    )
    closed = session(api, session_id, content, state="closed")

    [free] = effects_of(opened.effects, "addFreeItem")
    assert (free.sku, free.name) == ("tote01", "Canvas tote bag")
    [promise] = effects_of(opened.effects, "willAwardGiveaway")
    assert (promise.pool_id, promise.pool_name) == (1, "Gift cards")
    assert opened.awarded_giveaways == []
    [award] = effects_of(closed.effects, "awardGiveaway")
    assert award.code.startswith("GIFT-")
    assert closed.awarded_giveaways is not None
    [giveaway] = closed.awarded_giveaways
    assert isinstance(giveaway, t.Giveaway)
    assert (giveaway.id, giveaway.code, giveaway.pool_id) == (award.giveaway_id, award.code, 1)


# --- audiences -----------------------------------------------------------------------------------


def test_audiences(api: t.IntegrationApi) -> None:
    member, joiner = new_id("cust"), new_id("cust")
    created = api.create_audience_v2(
        t.NewAudience(name="VIP", integration="segment", integration_id=new_id("seg"))
    )
    renamed = api.update_audience_v2(created.id, t.UpdateAudience(name="VIP customers"))
    api.update_customer_profile_audiences(
        t.CustomerProfileAudienceRequest(
            data=[
                t.CustomerProfileAudienceRequestItem(
                    action="add", profile_integration_id=member, audience_id=created.id
                )
            ]
        )
    )
    api.update_audience_customers_attributes(created.id, {"tier": "gold"})
    profile = api.update_customer_profile_v2(
        member,
        t.CustomerProfileIntegrationRequestV2(response_content=["customerProfile"]),
        run_rule_engine=True,
    )
    joined = api.update_customer_profile_v2(
        joiner,
        t.CustomerProfileIntegrationRequestV2(
            audiences_changes={"adds": [created.id], "deletes": []},
            response_content=["customerProfile"],
        ),
        run_rule_engine=True,
    )
    api.delete_audience_memberships_v2(created.id)
    emptied = api.update_customer_profile_v2(
        member,
        t.CustomerProfileIntegrationRequestV2(response_content=["customerProfile"]),
        run_rule_engine=True,
    )
    api.delete_audience_v2(created.id)

    assert isinstance(created, t.Audience)
    assert created.name == "VIP"
    assert renamed.name == "VIP customers"
    assert profile.customer_profile is not None
    assert profile.customer_profile.attributes == {"tier": "gold"}
    memberships = profile.customer_profile.audience_memberships
    assert [(m.id, m.name) for m in memberships or []] == [(created.id, "VIP customers")]
    assert joined.customer_profile is not None
    assert [m.id for m in joined.customer_profile.audience_memberships or []] == [created.id]
    assert emptied.customer_profile is not None
    assert emptied.customer_profile.audience_memberships == []
    with pytest.raises(NotFoundException) as raised:
        api.update_audience_v2(created.id, t.UpdateAudience(name="gone"))
    assert isinstance(raised.value.data, t.ErrorResponseWithStatus)
    assert raised.value.data.status_code == 404


def test_duplicate_audience_is_a_conflict(api: t.IntegrationApi) -> None:
    audience = t.NewAudience(name="Dup", integration="mparticle", integration_id=new_id("mp"))
    api.create_audience_v2(audience)

    with pytest.raises(ConflictException) as raised:
        api.create_audience_v2(audience)

    assert isinstance(raised.value.data, t.ErrorResponseWithStatus)
    assert raised.value.data.status_code == 409


# --- catalogs ------------------------------------------------------------------------------------


def test_sync_catalog_and_catalog_prices(api: t.IntegrationApi) -> None:
    sku = new_id("sku")
    added = api.sync_catalog(
        1,
        t.CatalogSyncRequest(
            actions=[
                {
                    "type": "ADD",
                    "payload": {"sku": sku, "price": 25, "attributes": {"color": "green"}},
                }
            ]
        ),
    )
    patched = api.sync_catalog(
        1,
        t.CatalogSyncRequest(
            actions=[{"type": "PATCH", "payload": {"sku": sku, "price": 20}}],
            version=added.version,
        ),
    )
    response = session(
        api,
        new_id("sess"),
        profile_id=new_id("cust"),
        cart_items=[t.CartItem(sku=sku, quantity=2), t.CartItem(sku="rsb002", quantity=1)],
    )
    prices = api.best_prior_price(
        t.BestPriorPriceRequest(
            skus=[sku, "no-such-sku"],
            timeframe_end_date=datetime.now(UTC) + timedelta(days=1),
            timeframe="30",
            strict_end_date=True,
        )
    )

    assert isinstance(added, t.Catalog)
    assert (added.id, added.name) == (1, "Shop catalog")
    assert patched.version == added.version + 1
    assert response.customer_session is not None
    items = response.customer_session.cart_items or []
    assert [(item.price, item.catalog_item_id is not None) for item in items] == [
        (20, True),
        (49, True),
    ]
    assert response.customer_session.cart_item_total == 89
    assert [(p.sku, p.price) for p in prices] == [(sku, 20)]
    assert isinstance(prices[0], t.BestPriorPrice)
    nothing = api.best_prior_price(
        t.BestPriorPriceRequest(
            skus=["no-such-sku"],
            timeframe_end_date=datetime.now(UTC),
            timeframe="30",
            strict_end_date=True,
        )
    )
    assert nothing == []


def test_catalog_errors(api: t.IntegrationApi) -> None:
    mixed = t.CatalogSyncRequest(
        actions=[
            {"type": "ADD", "payload": {"sku": new_id("sku")}},
            {"type": "REMOVE", "payload": {"sku": "rsb002"}},
        ]
    )
    duplicate = t.CatalogSyncRequest(
        actions=[
            {"type": "ADD", "payload": {"sku": "dup-sku"}},
            {"type": "ADD", "payload": {"sku": "dup-sku"}},
        ]
    )

    with pytest.raises(BadRequestException) as mixed_error:
        api.sync_catalog(1, mixed)
    with pytest.raises(BadRequestException) as duplicate_error:
        api.sync_catalog(1, duplicate)
    with pytest.raises(NotFoundException) as unknown:
        api.sync_catalog(404, duplicate)

    assert isinstance(mixed_error.value.data, t.ErrorResponse)
    assert mixed_error.value.data.errors is not None
    assert "one type of action" in (mixed_error.value.data.errors[0].details or "")
    assert isinstance(duplicate_error.value.data, t.ErrorResponse)
    assert duplicate_error.value.data.errors is not None
    assert duplicate_error.value.data.errors[0].source.pointer == "/actions/1/payload/sku"
    assert isinstance(unknown.value.data, t.ErrorResponseWithStatus)
    assert unknown.value.data.status_code == 404


# --- raw HTTP ------------------------------------------------------------------------------------


async def test_raw_status_codes_and_error_shapes(server: EmulatorServer) -> None:
    headers = {"Authorization": f"ApiKey-v1 {KEY}"}
    base = server.base_url
    async with aiohttp.ClientSession(headers=headers) as client:
        async with client.delete(
            f"{base}/v1/coupon_reservations/RESERVED20", json={"integrationIDs": ["x"]}
        ) as deleted:
            assert deleted.status == 204
            assert await deleted.read() == b""
        async with client.post(
            f"{base}/v1/coupon_reservations/NO-SUCH-COUPON", json={"integrationIDs": ["x"]}
        ) as missing:
            assert missing.status == 404
            assert (await missing.json())["StatusCode"] == 404
        async with client.post(
            f"{base}/v1/coupon_reservations/RESERVED20", json={"integrationIDs": "x"}
        ) as invalid:
            assert invalid.status == 400
            body = await invalid.json()
            assert body["StatusCode"] == 400
            assert body["errors"][0]["source"]["pointer"] == "/integrationIDs"
        async with client.post(
            f"{base}/v1/referrals_for_multiple_advocates",
            json={"campaignId": 9, "advocateProfileIntegrationIds": ["a"]},
        ) as silent:
            assert silent.status == 204
        async with client.post(
            f"{base}/v1/referrals",
            json={"campaignId": 9, "advocateProfileIntegrationId": "a"},
        ) as created:
            assert created.status == 201
        async with client.post(f"{base}/v2/audiences", json={"name": "raw"}) as audience:
            assert audience.status == 201
            audience_id = (await audience.json())["id"]
        async with client.delete(f"{base}/v2/audiences/{audience_id}") as gone:
            assert gone.status == 204
        async with client.delete(f"{base}/v2/audiences/{audience_id}/memberships") as again:
            assert again.status == 404
        async with client.post(
            f"{base}/v1/best_prior_price",
            json={"skus": ["x"], "timeframeEndDate": "2026-01-01T00:00:00Z", "timeframe": "7"},
        ) as incomplete:
            assert incomplete.status == 400
    operations = [entry["operation"] for entry in server.state.request_log.entries()]
    assert "deleteCouponReservation" in operations
    assert "createReferralsForMultipleAdvocates" in operations

"""Query flags and request limits: dry, evaluableCampaignIds, now, runRuleEngine, silent,
responseContent, and the documented size limits. Driven through IntegrationService; no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.validation import parse_time
from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns, parse_campaigns
from talon_one_emulator.errors import InvalidDataError
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import PROFILE_CONTENT, SESSION_CONTENT, FakeClock

ITEM = {"sku": "rsb002", "quantity": 1, "price": 49, "category": "Blouses"}
TROUSERS = {"sku": "dtr003", "quantity": 1, "price": 74, "category": "Trousers"}


def service(campaigns: CampaignSet) -> IntegrationService:
    return IntegrationService(EmulatorState(campaigns, clock=FakeClock()))


def put(
    api: IntegrationService,
    session_id: str = "s-1",
    *,
    dry: bool = False,
    content: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"customerSession": fields}
    if content is not None:
        body["responseContent"] = content
    return api.update_customer_session(session_id, body, dry=dry)


def types_of(response: dict[str, Any]) -> list[str]:
    return [effect["effectType"] for effect in response["effects"]]


def invalid(call: Any) -> dict[str, Any]:
    with pytest.raises(InvalidDataError) as caught:
        call()
    assert caught.value.status == 400
    body = caught.value.body()
    assert body["message"] == "The submitted data was invalid"
    return body


# --- dry -------------------------------------------------------------------------------------


def test_dry_session_update_counts_only_the_payload(api: IntegrationService) -> None:
    put(api, profileId="cust-1", couponCodes=["xmas20"], cartItems=[ITEM, TROUSERS])

    # Cumulative: the stored coupon still applies to a real update without couponCodes.
    dry = put(api, dry=True, cartItems=[ITEM], content=["customerSession"])

    assert "acceptCoupon" not in types_of(dry)
    assert dry["customerSession"]["couponCodes"] == []
    assert dry["customerSession"]["profileId"] == ""
    assert dry["customerSession"]["cartItemTotal"] == 49
    real = put(api, cartItems=[ITEM])
    assert "acceptCoupon" in types_of(real)


def test_dry_session_update_persists_nothing(api: IntegrationService) -> None:
    state = api.state
    put(api, profileId="cust-1", cartItems=[ITEM])
    profile = state.profiles["cust-1"]
    before = (profile.closed_sessions, profile.total_sales, dict(profile.points))

    closed = put(
        api,
        dry=True,
        profileId="cust-1",
        couponCodes=["ONCE-20"],
        cartItems=[ITEM],
        state="closed",
        content=["customerSession", "customerProfile", "loyalty"],
    )

    assert "acceptCoupon" in types_of(closed)
    assert closed["customerSession"]["state"] == "closed"
    assert state.sessions["s-1"].state == "open"
    assert state.sessions["s-1"].update_count == 1
    assert (profile.closed_sessions, profile.total_sales, dict(profile.points)) == before
    # The single-use coupon was not redeemed by the dry close: a real close still accepts it.
    real = put(api, "s-2", profileId="cust-1", couponCodes=["ONCE-20"], cartItems=[ITEM])
    assert "acceptCoupon" in types_of(real)
    put(api, "dry-new", dry=True, profileId="nobody", cartItems=[ITEM])
    assert "dry-new" not in state.sessions
    assert "nobody" not in state.profiles


def test_dry_return_and_event_and_profile_persist_nothing(api: IntegrationService) -> None:
    state = api.state
    put(api, profileId="cust-1", cartItems=[ITEM, TROUSERS], state="closed")
    points = dict(state.profiles["cust-1"].points)
    returned = {"return": {"returnedCartItems": [{"position": 1}]}}

    response = api.return_cart_items("s-1", returned, dry=True)

    assert "rollbackAddedLoyaltyPoints" in types_of(response)
    assert state.sessions["s-1"].state == "closed"
    assert state.sessions["s-1"].returns == []
    event = {"type": "review_submitted", "profileId": "cust-1", "attributes": {"rating": 5}}
    assert api.track_event(event, silent=False, dry=True) is not None
    profile_update = {"attributes": {"newsletter": True}}
    api.update_customer_profile("cust-1", profile_update, run_rule_engine=True, dry=True)
    profile = state.profiles["cust-1"]
    assert profile.points == points
    assert "newsletter" not in profile.attributes


def test_dry_profile_update_needs_the_rule_engine(api: IntegrationService) -> None:
    body = invalid(lambda: api.update_customer_profile("p", {"attributes": {}}, dry=True))

    [error] = body["errors"]
    assert error["source"] == {"parameter": "dry"}
    assert "p" not in api.state.profiles


def test_profile_update_without_rule_engine(api: IntegrationService) -> None:
    response = api.update_customer_profile("p", {"attributes": {"newsletter": True}})

    assert response == {"effects": [], "createdCoupons": [], "createdReferrals": []}
    body = invalid(
        lambda: api.update_customer_profile("p", {"responseContent": ["customerProfile"]})
    )
    assert body["errors"][0]["source"] == {"pointer": "/responseContent"}


# --- evaluableCampaignIds --------------------------------------------------------------------


def _campaign(campaign_id: int, *, enabled: bool = True, coupon: str | None = None) -> Any:
    conditions: list[Any] = [{"couponValid": True}] if coupon else []
    document: dict[str, Any] = {
        "id": campaign_id,
        "name": f"Campaign {campaign_id}",
        "rulesetId": campaign_id * 10,
        "enabled": enabled,
        "rules": [
            {
                "name": f"rule {campaign_id}",
                "conditions": conditions,
                "effects": [
                    {
                        "showNotification": {
                            "title": f"c{campaign_id}",
                            "body": "fired",
                        }
                    }
                ],
            }
        ],
    }
    if coupon:
        document["coupons"] = [{"code": coupon}]
    return document


CAMPAIGNS = parse_campaigns(
    {
        "attributes": {"CustomerProfile": {"tier": "string"}},
        "eventTypes": {"ping": {}},
        "campaigns": [
            _campaign(1),
            _campaign(2, enabled=False, coupon="DRAFT-1"),
            _campaign(3, enabled=False),
        ],
    }
)


def fired(response: dict[str, Any]) -> list[int]:
    return [
        effect["campaignId"]
        for effect in response["effects"]
        if effect["effectType"] == "showNotification"
    ]


def test_campaigns_are_enabled_by_default() -> None:
    assert [campaign.enabled for campaign in CAMPAIGNS.campaigns] == [True, False, False]
    assert all(campaign.enabled for campaign in load_campaigns().campaigns)


def test_disabled_campaigns_run_only_when_a_dry_request_lists_them() -> None:
    api = service(CAMPAIGNS)
    session = {"cartItems": [ITEM], "couponCodes": ["DRAFT-1"], "evaluableCampaignIds": [2]}

    real = put(api, **session)
    dry = put(api, "s-2", dry=True, content=["triggeredCampaigns"], **session)

    assert fired(real) == [1]
    [rejected] = [e for e in real["effects"] if e["effectType"] == "rejectCoupon"]
    assert rejected["props"]["rejectionReason"] == "CouponPartOfNotRunningCampaign"
    # Only the listed campaigns run, the disabled one included.
    assert fired(dry) == [2]
    assert "acceptCoupon" in types_of(dry)
    [campaign] = dry["triggeredCampaigns"]
    assert (campaign["id"], campaign["state"]) == (2, "disabled")
    assert fired(put(api, "s-3", dry=True, cartItems=[ITEM])) == [1]


def test_evaluable_campaigns_on_events_and_profiles() -> None:
    api = service(CAMPAIGNS)
    event = {"type": "ping", "profileId": "p", "evaluableCampaignIds": [3]}
    profile = {"attributes": {"tier": "gold"}, "evaluableCampaignIds": [3]}

    assert fired(api.track_event(event, silent=False) or {}) == [1]
    assert fired(api.track_event(event, silent=False, dry=True) or {}) == [3]
    assert fired(api.update_customer_profile("p", profile, run_rule_engine=True)) == [1]
    dry_profile = api.update_customer_profile("p", profile, run_rule_engine=True, dry=True)
    assert fired(dry_profile) == [3]


# --- now -------------------------------------------------------------------------------------


def test_now_accepts_the_sdk_offset_form_and_needs_dry_and_the_future(
    api: IntegrationService,
) -> None:
    future = parse_time("now", "2030-01-02T03:04:05.000000+0000")
    assert future == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = {"customerSession": {"cartItems": [ITEM]}, "responseContent": ["customerSession"]}

    response = api.update_customer_session("s-1", body, dry=True, now=future)

    assert response["customerSession"]["updated"].startswith("2030-01-02T03:04:05")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    for dry, now in ((False, future), (True, past)):
        error = invalid(lambda d=dry, n=now: api.update_customer_session("s-1", body, dry=d, now=n))
        assert error["errors"][0]["source"] == {"parameter": "now"}
    assert "s-1" not in api.state.sessions


# --- responseContent -------------------------------------------------------------------------


def test_every_session_response_content_value_returns_its_key(api: IntegrationService) -> None:
    response = put(
        api, profileId="cust-1", couponCodes=["xmas20"], cartItems=[ITEM], content=SESSION_CONTENT
    )

    # referral only when the session carries a referral code.
    assert set(SESSION_CONTENT) - {"referral"} <= set(response)
    assert response["event"]["type"] == "talon_session_created"
    assert all(isinstance(effect, dict) for effect in response["event"]["effects"])
    assert response["event"]["effects"] == response["effects"]
    assert response["triggeredCampaigns"]
    assert response["coupons"][0]["value"] == "xmas20"
    assert "programs" in response["loyalty"]
    for key in ("awardedGiveaways", "ruleFailureReasons", "previousReturns"):
        assert isinstance(response[key], list)


def test_every_profile_and_event_response_content_value_returns_its_key(
    api: IntegrationService,
) -> None:
    profile = api.update_customer_profile(
        "p", {"responseContent": PROFILE_CONTENT}, run_rule_engine=True
    )
    event = api.track_event(
        {"type": "review_submitted", "profileId": "p", "responseContent": PROFILE_CONTENT},
        silent=False,
    )

    assert event is not None
    for response in (profile, event):
        assert set(PROFILE_CONTENT) <= set(response)
    assert event["event"]["type"] == "review_submitted"


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.update_customer_session(
            "s", {"customerSession": {}, "responseContent": ["everything"]}
        ),
        lambda api: api.return_cart_items(
            "s", {"return": {"returnedCartItems": []}, "responseContent": ["awardedGiveaways"]}
        ),
        lambda api: api.update_customer_profile(
            "p", {"responseContent": ["coupons"]}, run_rule_engine=True
        ),
        lambda api: api.track_event(
            {"type": "review_submitted", "profileId": "p", "responseContent": ["x"]}
        ),
    ],
)
def test_invalid_response_content_is_an_enum_error(api: IntegrationService, call: Any) -> None:
    body = invalid(lambda: call(api))

    [error] = body["errors"]
    assert error["title"] == "enum"
    assert error["source"]["pointer"].endswith("/responseContent/0")


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "pointer", "title"),
    [
        ({"cartItems": [ITEM] * 1001}, "/customerSession/cartItems", "maxItems"),
        (
            {"cartItems": [{**ITEM, "quantity": 5000}, {**ITEM, "quantity": 5001}]},
            "/customerSession/cartItems",
            "maximum",
        ),
        ({"loyaltyCards": ["a", "b"]}, "/customerSession/loyaltyCards", "maxItems"),
        ({"identifiers": list("abcdef")}, "/customerSession/identifiers", "maxItems"),
        ({"couponCodes": ["c" * 101]}, "/customerSession/couponCodes/0", "maxLength"),
        ({"referralCode": "r" * 101}, "/customerSession/referralCode", "maxLength"),
    ],
)
def test_session_limits(
    api: IntegrationService, session: dict[str, Any], pointer: str, title: str
) -> None:
    body = invalid(lambda: api.update_customer_session("s-1", {"customerSession": session}))

    assert [(e["source"]["pointer"], e["title"]) for e in body["errors"]] == [(pointer, title)]


def test_limits_at_the_boundary_are_accepted(api: IntegrationService) -> None:
    items = [{**ITEM, "quantity": 10}] * 1000  # 1000 items, Σ quantity = 10 000
    session = {
        "cartItems": items,
        "loyaltyCards": ["card-1"],
        "identifiers": list("abcde"),
        "couponCodes": ["c" * 100],
    }

    response = put(api, content=["customerSession"], **session)

    assert len(response["customerSession"]["cartItems"]) == 1000


def test_event_and_bulk_profile_limits(api: IntegrationService) -> None:
    event = {"type": "review_submitted", "profileId": "p", "loyaltyCards": ["a", "b"]}
    body = invalid(lambda: api.track_event(event))
    assert body["errors"][0]["source"] == {"pointer": "/loyaltyCards"}

    many = {"customerProfiles": [{"integrationId": f"p{i}"} for i in range(1001)]}
    body = invalid(lambda: api.update_customer_profiles(many))
    assert body["errors"][0]["source"] == {"pointer": "/customerProfiles"}
    long_id = {"customerProfiles": [{"integrationId": "x" * 1001}]}
    body = invalid(lambda: api.update_customer_profiles(long_id))
    assert body["errors"][0]["source"] == {"pointer": "/customerProfiles/0/integrationId"}


# --- bulk profile update and silent ----------------------------------------------------------


def test_bulk_profile_update(api: IntegrationService) -> None:
    body = {
        "customerProfiles": [
            {"integrationId": "a", "attributes": {"tier": "gold"}},
            {"integrationId": "b"},
        ]
    }

    assert api.update_customer_profiles(body) is None  # silent=yes: 204
    loud = api.update_customer_profiles(
        {"customerProfiles": [{"integrationId": "a", "attributes": {"Name": "Ann"}}]},
        silent=False,
    )

    assert loud is not None
    [state] = loud["integrationStates"]
    assert state["customerProfile"]["integrationId"] == "a"
    assert state["customerProfile"]["attributes"] == {"tier": "gold", "Name": "Ann"}
    assert set(api.state.profiles) == {"a", "b"}
    undeclared = {"customerProfiles": [{"integrationId": "c", "attributes": {"shoe": 1}}]}
    error = invalid(lambda: api.update_customer_profiles(undeclared))
    assert error["errors"][0]["source"] == {"pointer": "/customerProfiles/0/attributes/shoe"}
    assert "c" not in api.state.profiles

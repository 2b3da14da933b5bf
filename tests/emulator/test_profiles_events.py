"""Customer profile updates and custom events, without HTTP."""

from __future__ import annotations

from talon_one_emulator.api.operations import IntegrationService
from tests.emulator.support import PROFILE_CONTENT


def test_profile_update_without_rule_engine_only_stores_attributes(api: IntegrationService) -> None:
    response = api.update_customer_profile(
        "cust-1", {"attributes": {"Name": "Ann", "tier": "gold"}}
    )

    assert response == {"effects": [], "createdCoupons": [], "createdReferrals": []}
    assert api.state.profiles["cust-1"].attributes == {"Name": "Ann", "tier": "gold"}


def test_profile_attributes_merge(api: IntegrationService) -> None:
    api.update_customer_profile("cust-1", {"attributes": {"Name": "Ann"}})
    api.update_customer_profile("cust-1", {"attributes": {"tier": "gold"}})

    assert api.state.profiles["cust-1"].attributes == {"Name": "Ann", "tier": "gold"}


def test_profile_update_with_rule_engine(api: IntegrationService) -> None:
    response = api.update_customer_profile(
        "cust-1",
        {"attributes": {"tier": "gold", "newsletter": True}, "responseContent": PROFILE_CONTENT},
        run_rule_engine=True,
    )

    types = [effect["effectType"] for effect in response["effects"]]
    assert types == ["customEffect", "showNotification", "updateAttribute"]
    profile = response["customerProfile"]
    assert profile["attributes"] == {"tier": "gold", "newsletter": True, "memberOfferSent": True}
    assert response["event"]["type"] == "talon_profile_created"
    assert [campaign["id"] for campaign in response["triggeredCampaigns"]] == [7, 8]
    assert response["awardedGiveaways"] == []
    assert response["ruleFailureReasons"] == []

    again = api.update_customer_profile(
        "cust-1", {"responseContent": ["event"]}, run_rule_engine=True
    )
    assert again["event"]["type"] == "talon_profile_updated"


def test_dry_profile_update_stores_nothing(api: IntegrationService) -> None:
    response = api.update_customer_profile(
        "cust-1",
        {"attributes": {"tier": "gold"}, "responseContent": ["customerProfile"]},
        run_rule_engine=True,
        dry=True,
    )

    assert response["customerProfile"]["attributes"] == {"tier": "gold"}
    assert "cust-1" not in api.state.profiles


def test_silent_event_returns_nothing_but_is_evaluated(api: IntegrationService) -> None:
    response = api.track_event({"type": "review_submitted", "profileId": "cust-1"})

    assert response is None
    assert api.state.profiles["cust-1"].points == {1: 50}


def test_event_with_response(api: IntegrationService) -> None:
    response = api.track_event(
        {
            "type": "review_submitted",
            "profileId": "cust-1",
            "attributes": {"rating": 4},
            "responseContent": PROFILE_CONTENT,
        },
        silent=False,
    )

    assert response is not None
    assert [effect["effectType"] for effect in response["effects"]] == [
        "showNotification",
        "addLoyaltyPoints",
    ]
    assert response["event"]["type"] == "review_submitted"
    assert response["event"]["attributes"] == {"rating": 4}
    assert response["event"]["profileId"] == "cust-1"
    assert response["customerProfile"]["integrationId"] == "cust-1"
    assert response["loyalty"]["programs"]["1"]["ledger"]["currentBalance"] == 50


def test_dry_event_creates_no_profile(api: IntegrationService) -> None:
    response = api.track_event(
        {"type": "review_submitted", "profileId": "ghost"}, silent=False, dry=True
    )

    assert response is not None
    assert len(response["effects"]) == 2
    assert "ghost" not in api.state.profiles

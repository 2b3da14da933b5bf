"""The remaining profile operations: bulk update, deleting customer data, the customer inventory
and achievements. Through IntegrationService / ProfileService, and the HTTP routes."""

from __future__ import annotations

from importlib import resources
from typing import Any

import aiohttp
import pytest
import yaml

from talon_one_emulator.api.loyalty import LoyaltyService
from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.profile_data import (
    INVENTORY_FLAGS,
    AchievementFilter,
    HistoryFilter,
    ProfileService,
)
from talon_one_emulator.api.queries import Page
from talon_one_emulator.campaigns.file import CampaignSet, parse_campaigns
from talon_one_emulator.errors import CampaignFileError, NotFoundError
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import call

BLOUSE = {"name": "Red Spring Blouse", "sku": "rsb002", "quantity": 1, "price": 49}
TROUSERS = {"name": "Denim Trousers", "sku": "dtr003", "quantity": 1, "price": 74}

ACHIEVEMENTS = [
    {
        "id": 1,
        "name": "fiveOrders",
        "title": "Five orders",
        "description": "Order five times.",
        "campaignId": 5,
        "target": 5,
        "period": "30D",
    },
    {
        "id": 2,
        "name": "summerReviews",
        "title": "Summer reviews",
        "campaignId": 6,
        "target": 3,
        "activationPolicy": "fixed_schedule",
        "fixedStartDate": "2099-06-01T00:00:00Z",
    },
    {
        "id": 3,
        "name": "oldChallenge",
        "title": "Old challenge",
        "campaignId": 6,
        "target": 1,
        "endDate": "2020-01-01T00:00:00Z",
    },
]


def _default_document() -> dict[str, Any]:
    text = (
        resources.files("talon_one_emulator").joinpath("campaigns/default.yaml").read_text("utf-8")
    )
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@pytest.fixture
def campaigns() -> CampaignSet:
    return parse_campaigns({**_default_document(), "achievements": ACHIEVEMENTS})


@pytest.fixture
def profiles(api: IntegrationService) -> ProfileService:
    return ProfileService(api.state)


def put(api: IntegrationService, session_id: str, **session: Any) -> dict[str, Any]:
    return api.update_customer_session(session_id, {"customerSession": session})


# --- bulk update ------------------------------------------------------------------------------


def test_bulk_update_is_silent_by_default_and_never_runs_rules(api: IntegrationService) -> None:
    body = {
        "customerProfiles": [
            {"integrationId": "a", "attributes": {"newsletter": True}},
            {"integrationId": "b", "attributes": {"tier": "gold"}},
        ]
    }

    assert api.update_customer_profiles(body) is None
    loud = api.update_customer_profiles(body, silent=False)

    assert loud is not None
    states = loud["integrationStates"]
    assert [s["customerProfile"]["integrationId"] for s in states] == ["a", "b"]
    # The newsletter campaign would set memberOfferSent: the rule engine did not run.
    assert api.state.profiles["a"].attributes == {"newsletter": True}
    assert api.state.profiles["a"].points == {}


# --- deleteCustomerData -----------------------------------------------------------------------


def test_delete_customer_data_removes_attributes_everywhere(
    api: IntegrationService, profiles: ProfileService
) -> None:
    api.update_customer_profile("ann", {"attributes": {"Name": "Ann", "tier": "gold"}})
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE], attributes={"channel": "app"})
    put(api, "s-2", profileId="bob", cartItems=[BLOUSE], attributes={"channel": "web"})
    referral = api.promotions.create_referral(
        {"campaignId": 9, "advocateProfileIntegrationId": "ann", "attributes": {}}
    )
    record = api.state.ledger.referral_record(referral["code"])
    assert record is not None
    record.attributes["note"] = "private"

    profiles.delete_customer_data("ann")

    state = api.state
    assert state.profiles["ann"].attributes == {}
    assert state.sessions["s-1"].attributes == {}
    assert state.sessions["s-2"].attributes == {"channel": "web"}
    assert record.attributes == {}
    # The profile, its session and its points stay.
    assert state.profiles["ann"].closed_sessions == 0
    assert "s-1" in state.sessions


def test_delete_customer_data_of_an_unknown_profile_is_404(profiles: ProfileService) -> None:
    with pytest.raises(NotFoundError) as caught:
        profiles.delete_customer_data("nobody")
    assert caught.value.body()["StatusCode"] == 404


# --- inventory --------------------------------------------------------------------------------


def test_inventory_without_flags_is_empty(
    api: IntegrationService, profiles: ProfileService
) -> None:
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE])

    assert profiles.get_inventory("ann", []) == {}
    with pytest.raises(NotFoundError):
        profiles.get_inventory("nobody", INVENTORY_FLAGS)


def test_inventory_with_every_flag(api: IntegrationService, profiles: ProfileService) -> None:
    state = api.state
    put(
        api,
        "s-1",
        profileId="ada",
        cartItems=[BLOUSE, TROUSERS],
        couponCodes=["ADA-VIP20"],
        storeIntegrationId="store-berlin",
        state="closed",
    )
    api.promotions.create_coupon_reservation("SPRING20", {"integrationIDs": ["ada"]})
    referral = api.promotions.create_referral(
        {"campaignId": 9, "advocateProfileIntegrationId": "ada"}
    )
    card = LoyaltyService(state).generate_card("2", {"customerProfileIds": ["ada"]})

    inventory = profiles.get_inventory("ada", INVENTORY_FLAGS)

    assert inventory["profile"]["integrationId"] == "ada"
    assert inventory["profile"]["closedSessions"] == 1
    coupons = {c["value"]: c for c in inventory["coupons"]}
    assert set(coupons) == {"ADA-VIP20", "SPRING20"}
    assert (coupons["ADA-VIP20"]["state"], coupons["ADA-VIP20"]["profileRedemptionCount"]) == (
        "used",
        1,
    )
    assert (coupons["SPRING20"]["state"], coupons["SPRING20"]["profileRedemptionCount"]) == (
        "active",
        0,
    )
    [advocated] = inventory["referrals"]
    assert (advocated["code"], advocated["referredCustomers"]) == (referral["code"], [])
    [giveaway] = inventory["giveaways"]
    assert (giveaway["code"], giveaway["profileIntegrationId"]) == ("GIFT-0001", "ada")
    loyalty = inventory["loyalty"]
    assert loyalty["programs"]["1"]["ledger"]["currentBalance"] == 123
    assert [c["identifier"] for c in loyalty["cards"]] == [card["identifier"]]
    [achievement] = inventory["achievements"]
    assert (achievement["achievementId"], achievement["status"]) == (1, "not_started")
    assert achievement["achievementRecurrencePolicy"] == "no_recurrence"


def test_inventory_flags_one_by_one(api: IntegrationService, profiles: ProfileService) -> None:
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE])

    for flag in INVENTORY_FLAGS:
        assert set(profiles.get_inventory("ann", [flag])) == {flag}


def test_coupon_states_in_the_inventory(api: IntegrationService, profiles: ProfileService) -> None:
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE])
    for code in ("NEXTYEAR20", "LASTYEAR20"):
        api.promotions.create_coupon_reservation(code, {"integrationIDs": ["ann"]})

    coupons = {
        c["value"]: c["state"] for c in profiles.get_inventory("ann", ["coupons"])["coupons"]
    }

    assert coupons == {"NEXTYEAR20": "pending", "LASTYEAR20": "expired"}


# --- achievements -----------------------------------------------------------------------------


def _achievements(profiles: ProfileService, **query: Any) -> dict[str, Any]:
    return profiles.get_achievements("ann", AchievementFilter(page=Page(1000), **query))


def test_achievements_with_the_customers_progress(
    api: IntegrationService, profiles: ProfileService
) -> None:
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE])

    active = _achievements(profiles)
    [entry] = active["data"]
    assert active["totalResultSize"] == 1
    assert (entry["id"], entry["name"], entry["status"]) == (1, "fiveOrders", "active")
    assert entry["currentProgress"] == {"status": "not_started", "progress": 0}
    assert (entry["target"], entry["period"], entry["campaignId"]) == (5, "30D", 5)

    scheduled = _achievements(profiles, achievement_status=("scheduled",))
    assert [e["id"] for e in scheduled["data"]] == [2]
    both = _achievements(profiles, achievement_status=("active", "scheduled"))
    assert [e["id"] for e in both["data"]] == [1, 2]
    by_campaign = _achievements(
        profiles, achievement_status=("active", "scheduled"), campaign_ids=("6",)
    )
    assert [e["id"] for e in by_campaign["data"]] == [2]
    by_id = _achievements(profiles, achievement_ids=("2",))
    assert by_id["data"] == []  # scheduled, and only active ones are asked for
    assert _achievements(profiles, progress_status=("completed",))["data"] == []
    assert len(_achievements(profiles, progress_status=("not_started",))["data"]) == 1
    paged = profiles.get_achievements(
        "ann", AchievementFilter(page=Page(1, skip=1), achievement_status=("active", "scheduled"))
    )
    assert (paged["totalResultSize"], [e["id"] for e in paged["data"]]) == (2, [2])


def test_no_achievements_is_an_empty_list() -> None:
    state = EmulatorState(parse_campaigns(_default_document()))
    put(IntegrationService(state), "s-1", profileId="ann", cartItems=[BLOUSE])

    answer = ProfileService(state).get_achievements("ann", AchievementFilter(page=Page(50)))

    assert answer == {"totalResultSize": 0, "data": []}


def test_achievement_history(api: IntegrationService, profiles: ProfileService) -> None:
    put(api, "s-1", profileId="ann", cartItems=[BLOUSE])

    history = profiles.get_achievement_history("ann", "1", HistoryFilter(page=Page(50)))

    assert history == {"totalResultSize": 0, "data": []}
    with pytest.raises(NotFoundError):
        profiles.get_achievement_history("ann", "99", HistoryFilter(page=Page(50)))
    with pytest.raises(NotFoundError):
        profiles.get_achievement_history("nobody", "1", HistoryFilter(page=Page(50)))
    with pytest.raises(NotFoundError):
        profiles.get_achievements("nobody", AchievementFilter(page=Page(50)))


def test_achievements_need_a_known_campaign() -> None:
    document = {**_default_document(), "achievements": [{**ACHIEVEMENTS[0], "campaignId": 99}]}
    with pytest.raises(CampaignFileError) as caught:
        parse_campaigns(document)
    assert "unknown campaign 99" in caught.value.reason


# --- HTTP -------------------------------------------------------------------------------------


async def test_http_profile_routes(client: aiohttp.ClientSession) -> None:
    session = {"customerSession": {"profileId": "ann", "cartItems": [BLOUSE]}}
    await call(client, "PUT", "/v2/customer_sessions/s-1", session)
    customer = "/v1/customer_profiles/ann"

    status, body = await call(
        client, "GET", f"{customer}/inventory", params={"profile": "true", "loyalty": "false"}
    )
    assert (status, set(body)) == (200, {"profile"})
    status, body = await call(client, "GET", f"{customer}/inventory", params={"coupons": "maybe"})
    assert (status, body["errors"][0]["source"]) == (400, {"parameter": "coupons"})
    status, body = await call(client, "GET", "/v1/customer_profiles/nobody/inventory")
    assert (status, body["StatusCode"]) == (404, 404)

    status, body = await call(
        client,
        "GET",
        f"{customer}/achievements",
        params={"campaignIds": "5,6", "achievementStatus": "active,scheduled"},
    )
    assert (status, [e["id"] for e in body["data"]]) == (200, [1, 2])
    status, body = await call(
        client, "GET", f"{customer}/achievements", params={"achievementStatus": "done"}
    )
    assert (status, body["errors"][0]["title"]) == (400, "enum")
    status, body = await call(client, "GET", f"{customer}/achievements/1")
    assert (status, body) == (200, {"totalResultSize": 0, "data": []})
    status, body = await call(client, "GET", f"{customer}/achievements/one")
    assert (status, body["errors"][0]["source"]) == (400, {"parameter": "achievementId"})
    status, body = await call(
        client, "GET", f"{customer}/achievements/1", params={"progressStatus": "lost"}
    )
    assert status == 400

    status, body = await call(client, "DELETE", "/v1/customer_data/ann")
    assert (status, body) == (204, None)
    status, body = await call(client, "DELETE", "/v1/customer_data/nobody")
    assert (status, body["StatusCode"]) == (404, 404)

    bulk = {"customerProfiles": [{"integrationId": "x"}]}
    status, body = await call(client, "PUT", "/v2/customer_profiles", bulk)
    assert (status, body) == (204, None)
    status, body = await call(client, "PUT", "/v2/customer_profiles", bulk, {"silent": "no"})
    assert (status, body["integrationStates"][0]["customerProfile"]["integrationId"]) == (200, "x")


async def test_http_bulk_profiles_as_talon_one_answers(client: aiohttp.ClientSession) -> None:
    path = "/v2/customer_profiles"
    bulk = {
        "customerProfiles": [
            {"integrationId": "bulk-a", "attributes": {"Name": "Ann"}},
            {"integrationId": "bulk-b", "attributes": {"Name": 7, "pet": "cat"}},
            {"integrationId": "bulk-c", "attributes": {"shoe": 40}},
        ]
    }
    status, body = await call(client, "PUT", path, bulk, {"silent": "no"})
    # One error per bad attribute, each pointing at its entry; nothing is applied.
    assert status == 400
    assert body["message"] == "The submitted data was invalid"
    assert [(e["title"], e["source"]) for e in body["errors"]] == [
        ("Invalid type", {"pointer": "/customerProfiles/1/attributes/Name"}),
        ("Unknown", {"pointer": "/customerProfiles/1/attributes/pet"}),
        ("Unknown", {"pointer": "/customerProfiles/2/attributes/shoe"}),
    ]
    assert body["errors"][1]["details"] == (
        'The attribute "pet" is not defined on CustomerProfile entities.'
    )
    status, _ = await call(client, "GET", "/v1/customer_profiles/bulk-a/inventory")
    assert status == 404

    missing = {"customerProfiles": [{"attributes": {"Name": "Ann"}}]}
    status, body = await call(client, "PUT", path, missing)
    assert (status, body["errors"][0]["title"], body["errors"][0]["source"]) == (
        400,
        "required",
        {"pointer": "/customerProfiles/0/integrationId"},
    )
    status, body = await call(client, "PUT", path, bulk, {"silent": "maybe"})
    assert (status, body["errors"][0]["source"]) == (400, {"parameter": "silent"})

    good = {"customerProfiles": [{"integrationId": "bulk-a", "attributes": {"Name": "Ann"}}]}
    assert await call(client, "PUT", path, good, {"silent": "yes"}) == (204, None)
    status, body = await call(client, "PUT", path, good, {"silent": "no"})
    assert status == 200
    [state] = body["integrationStates"]
    assert (state["customerProfile"]["integrationId"], state["customerProfile"]["attributes"]) == (
        "bulk-a",
        {"Name": "Ann"},
    )

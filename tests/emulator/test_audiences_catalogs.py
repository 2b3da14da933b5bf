"""Audiences, catalogs, best prior price and coupon reservations, without HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.campaigns.file import CampaignSet
from talon_one_emulator.errors import (
    AlreadyExistsError,
    BadRequestError,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import FakeClock


@pytest.fixture
def state(campaigns: CampaignSet, clock: FakeClock) -> EmulatorState:
    return EmulatorState(campaigns, account_id=3, clock=clock)


def profile(api: IntegrationService, integration_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("responseContent", ["customerProfile"])
    response = api.update_customer_profile(integration_id, body, run_rule_engine=True)
    return dict(response["customerProfile"])


# --- audiences -----------------------------------------------------------------------------------


def test_audience_life_cycle(api: IntegrationService) -> None:
    created = api.audiences.create_audience(
        {
            "name": "VIP",
            "description": "Best customers",
            "integration": "segment",
            "integrationId": "seg-1",
        }
    )
    renamed = api.audiences.update_audience(str(created["id"]), {"name": "VIP customers"})
    api.audiences.update_customer_audiences(
        {
            "data": [
                {"action": "add", "profileIntegrationId": "ada", "audienceId": created["id"]},
                {"action": "add", "profileIntegrationId": "bob", "audienceId": created["id"]},
                {"action": "delete", "profileIntegrationId": "bob", "audienceId": created["id"]},
            ]
        }
    )

    assert created["accountId"] == 3
    assert created["name"] == "VIP"
    assert created["integrationId"] == "seg-1"
    assert renamed["name"] == "VIP customers"
    assert profile(api, "ada")["audienceMemberships"] == [
        {"id": created["id"], "name": "VIP customers"}
    ]
    assert profile(api, "bob")["audienceMemberships"] == []

    api.audiences.delete_memberships(str(created["id"]))
    assert profile(api, "ada")["audienceMemberships"] == []

    api.audiences.delete_audience(str(created["id"]))
    with pytest.raises(NotFoundError):
        api.audiences.update_audience(str(created["id"]), {"name": "gone"})


def test_duplicate_integration_id_is_a_conflict(api: IntegrationService) -> None:
    body = {"name": "A", "integration": "segment", "integrationId": "seg-1"}
    api.audiences.create_audience(body)

    with pytest.raises(AlreadyExistsError) as raised:
        api.audiences.create_audience(body)

    assert raised.value.status == 409
    assert raised.value.body()["StatusCode"] == 409
    api.audiences.create_audience({**body, "integration": "mparticle"})  # another integration


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.audiences.update_audience("99", {"name": "x"}),
        lambda api: api.audiences.delete_audience("99"),
        lambda api: api.audiences.delete_memberships("abc"),
        lambda api: api.audiences.update_members_attributes("99", {}),
        lambda api: api.audiences.update_customer_audiences(
            {"data": [{"action": "add", "profileIntegrationId": "a", "audienceId": 99}]}
        ),
    ],
)
def test_unknown_audiences_are_404(api: IntegrationService, call: Any) -> None:
    with pytest.raises(NotFoundError) as raised:
        call(api)

    assert raised.value.body()["StatusCode"] == 404


def test_audience_members_attributes(api: IntegrationService) -> None:
    audience = api.audiences.create_audience({"name": "Newsletter"})
    api.audiences.update_customer_audiences(
        {"data": [{"action": "add", "profileIntegrationId": "ada", "audienceId": audience["id"]}]}
    )

    api.audiences.update_members_attributes(str(audience["id"]), {"newsletter": True})

    assert profile(api, "ada")["attributes"]["newsletter"] is True
    with pytest.raises(InvalidDataError) as raised:
        api.audiences.update_members_attributes(str(audience["id"]), {"undeclared": 1})
    assert raised.value.errors[0].pointer == "/undeclared"


def test_profile_update_joins_and_leaves_audiences(api: IntegrationService) -> None:
    first = api.audiences.create_audience({"name": "First"})["id"]
    second = api.audiences.create_audience({"name": "Second"})["id"]

    joined = profile(api, "ada", audiencesChanges={"adds": [first, second], "deletes": []})
    left = profile(api, "ada", audiencesChanges={"adds": [], "deletes": [first]})
    api.update_customer_profile("bob", {"audiencesChanges": {"adds": [second], "deletes": []}})

    assert [m["name"] for m in joined["audienceMemberships"]] == ["First", "Second"]
    assert [m["name"] for m in left["audienceMemberships"]] == ["Second"]
    assert profile(api, "bob")["audienceMemberships"] == [{"id": second, "name": "Second"}]


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"adds": [42], "deletes": []}, "/audiencesChanges/adds/0"),
        ({"adds": []}, "/audiencesChanges/deletes"),
        ({"adds": ["1"], "deletes": []}, "/audiencesChanges/adds/0"),
    ],
)
def test_invalid_audience_changes_are_400(
    api: IntegrationService, changes: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(InvalidDataError) as raised:
        api.update_customer_profile("ada", {"audiencesChanges": changes})

    assert raised.value.errors[0].pointer == pointer
    assert "ada" not in api.state.profiles


# --- catalogs ------------------------------------------------------------------------------------


def sync(api: IntegrationService, *actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return api.catalogs.sync_catalog("1", {"actions": list(actions), **extra})


def items(state: EmulatorState) -> dict[str, Any]:
    return {
        sku: (item.price, item.attributes, item.product)
        for sku, item in state.catalogs.catalogs[1].items.items()
    }


def test_sync_actions(api: IntegrationService, state: EmulatorState) -> None:
    added = sync(
        api,
        {"type": "ADD", "payload": {"sku": "hat01", "price": 20, "attributes": {"color": "red"}}},
        {"type": "ADD", "payload": {"sku": "cap01", "price": 12, "product": {"name": "Cap"}}},
    )
    sync(api, {"type": "PATCH", "payload": {"sku": "hat01", "attributes": {"color": "blue"}}})
    sync(
        api,
        {
            "type": "PATCH_MANY",
            "payload": {"filters": [{"attr": "color", "op": "EQ", "value": "blue"}], "price": 18},
        },
    )
    sync(api, {"type": "REMOVE", "payload": {"sku": "cap01"}})
    last = sync(
        api,
        {
            "type": "REMOVE_MANY",
            "payload": {"filters": [{"attr": "color", "op": "IN", "value": "red,natural"}]},
        },
        version=5,
    )

    assert added["version"] == 2
    assert added["accountId"] == 3
    assert added["subscribedApplicationsIds"] == [1]
    assert last["version"] == 6
    assert items(state) == {
        "dtr003": (18, {"color": "blue"}, "Denim Trousers"),  # blue too: PATCH_MANY
        "hat01": (18, {"color": "blue"}, None),
    }


def test_numeric_filters(api: IntegrationService, state: EmulatorState) -> None:
    sync(
        api,
        *(
            {"type": "ADD", "payload": {"sku": f"shoe{size}", "attributes": {"shoeSize": size}}}
            for size in (40, 44, 46)
        ),
    )

    sync(
        api,
        {
            "type": "REMOVE_MANY",
            "payload": {"filters": [{"attr": "shoeSize", "op": "GT", "value": "45"}]},
        },
    )

    assert {sku for sku in items(state) if sku.startswith("shoe")} == {"shoe40", "shoe44"}
    with pytest.raises(InvalidDataError):
        sync(
            api,
            {
                "type": "REMOVE_MANY",
                "payload": {"filters": [{"attr": "shoeSize", "op": "LT", "value": "big"}]},
            },
        )


@pytest.mark.parametrize(
    ("actions", "pointer", "fragment"),
    [
        (
            [
                {"type": "ADD", "payload": {"sku": "a"}},
                {"type": "REMOVE", "payload": {"sku": "rsb002"}},
            ],
            "/actions",
            "one type of action",
        ),
        (
            [{"type": "ADD", "payload": {"sku": "a"}}, {"type": "ADD", "payload": {"sku": "a"}}],
            "/actions/1/payload/sku",
            "duplicate sku",
        ),
        ([{"type": "ADD", "payload": {"sku": "rsb002"}}], "/actions/0/payload/sku", "exists"),
        ([{"type": "PATCH", "payload": {"sku": "nope"}}], "/actions/0/payload/sku", "no item"),
        ([{"type": "REMOVE", "payload": {"sku": "nope"}}], "/actions/0/payload/sku", "no item"),
        ([{"type": "ADD", "payload": {"price": 1}}], "/actions/0/payload/sku", "required"),
        (
            [{"type": "ADD", "payload": {"sku": "a", "attributes": {"undeclared": 1}}}],
            "/actions/0/payload/attributes/undeclared",
            "not defined",
        ),
        ([{"type": "DELETE", "payload": {}}], "/actions/0/type", "one of"),
    ],
)
def test_invalid_syncs_change_nothing(
    api: IntegrationService,
    state: EmulatorState,
    actions: list[dict[str, Any]],
    pointer: str,
    fragment: str,
) -> None:
    before = items(state)

    with pytest.raises(InvalidDataError) as raised:
        sync(api, *actions)

    assert raised.value.errors[0].pointer == pointer
    assert fragment in raised.value.errors[0].details
    assert items(state) == before
    assert state.catalogs.catalogs[1].version == 1


def test_sync_version_mismatch_and_unknown_catalog(api: IntegrationService) -> None:
    with pytest.raises(BadRequestError):
        sync(api, {"type": "REMOVE", "payload": {"sku": "rsb002"}}, version=7)
    with pytest.raises(NotFoundError):
        api.catalogs.sync_catalog("42", {"actions": [{"type": "REMOVE", "payload": {"sku": "x"}}]})


def test_replace_and_create_if_missing(api: IntegrationService, state: EmulatorState) -> None:
    sync(api, {"type": "ADD", "payload": {"sku": "rsb002", "replaceIfExists": True}})
    sync(api, {"type": "PATCH", "payload": {"sku": "new01", "price": 5, "createIfNotExists": True}})

    # Replaced: the price is kept, attributes and product are the new (empty) ones.
    assert items(state)["rsb002"] == (49, {}, None)
    assert items(state)["new01"] == (5, {}, None)


def test_cart_items_without_price_take_the_catalog_price(api: IntegrationService) -> None:
    sync(api, {"type": "PATCH", "payload": {"sku": "rsb002", "price": 39}})

    response = api.update_customer_session(
        "s-1",
        {
            "customerSession": {
                "cartItems": [
                    {"sku": "rsb002", "quantity": 2},
                    {"sku": "dtr003", "quantity": 1, "price": 70},
                    {"sku": "unknown", "quantity": 1},
                ]
            },
            "responseContent": ["customerSession"],
        },
    )

    session = response["customerSession"]
    assert [item.get("price") for item in session["cartItems"]] == [39, 70, None]
    assert session["cartItems"][0]["catalogItemID"] == 1
    assert "catalogItemID" not in session["cartItems"][1]
    assert session["cartItemTotal"] == 148


def test_best_prior_price(api: IntegrationService, clock: FakeClock) -> None:
    clock.now += timedelta(days=10)
    sync(api, {"type": "PATCH", "payload": {"sku": "rsb002", "price": 29}})
    clock.now += timedelta(days=10)
    sync(api, {"type": "PATCH", "payload": {"sku": "rsb002", "price": 59}})
    end = clock.now + timedelta(days=10)

    def best(days: int, skus: list[str]) -> list[dict[str, Any]]:
        return api.catalogs.best_prior_price(
            {
                "skus": skus,
                "timeframeEndDate": end.isoformat(),
                "timeframe": str(days),
                "strictEndDate": True,
            }
        )

    recent = best(5, ["rsb002"])
    month = best(30, ["rsb002", "dtr003", "nope"])

    assert [(p["sku"], p["price"]) for p in recent] == [("rsb002", 59)]
    assert [(p["sku"], p["price"]) for p in month] == [("rsb002", 29), ("dtr003", 74)]
    assert month[0]["target"] == {"targetType": "NONE"}
    assert best(5, ["nope"]) == []
    with pytest.raises(InvalidDataError):
        best(-1, ["rsb002"])


# --- coupon reservations -------------------------------------------------------------------------


def test_coupon_reservations(api: IntegrationService) -> None:
    coupon = api.promotions.create_coupon_reservation(
        "reserved20", {"integrationIDs": ["ada", "bob"]}
    )
    api.promotions.delete_coupon_reservation("RESERVED20", {"integrationIDs": ["bob", "cid"]})
    reserved = api.promotions.get_reserved_customers("RESERVED20")

    assert coupon["value"] == "RESERVED20"
    assert coupon["isReservationMandatory"] is True
    assert coupon["reservationCounter"] == 2
    assert reserved["totalResultSize"] == 1
    assert [p["integrationId"] for p in reserved["data"]] == ["ada"]


def test_reservations_of_unknown_coupons_are_404(api: IntegrationService) -> None:
    with pytest.raises(NotFoundError):
        api.promotions.create_coupon_reservation("NOPE", {"integrationIDs": ["a"]})
    with pytest.raises(NotFoundError):
        api.promotions.delete_coupon_reservation("NOPE", {"integrationIDs": ["a"]})
    with pytest.raises(NotFoundError):
        api.promotions.get_reserved_customers("NOPE")

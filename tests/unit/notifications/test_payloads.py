"""Parsing Talon.One's notification bodies: every type to its category and key, one record per
element, unknown fields kept, and stable ids."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.notifications import PayloadError, parse_notifications

STRIKETHROUGH = {
    "applicationId": 322,
    "currentBatch": 1,
    "totalBatches": 1,
    "trigger": {"id": 1, "type": "CATALOG_SYNC", "payload": {"catalogId": 2}},
    "changedItems": [
        {"id": 1, "catalogId": 2, "sku": "SKU-1", "version": 6, "price": 100, "effects": []},
        {"id": 1, "catalogId": 2, "sku": "SKU-2", "version": 6, "price": 90, "newField": 1},
    ],
    "NotificationType": "StrikethroughPrice",
    "sentAt": "2025-05-27T09:05:27Z",
}
POINTS = {
    "ProfileIntegrationID": "URNGV8294NV",
    "LoyaltyProgramID": 5,
    "SubledgerID": "",
    "Amount": 10.5,
    "Reason": "Compensation",
    "TypeOfChange": "rule_engine",
    "Operation": "addition",
    "NotificationType": "LoyaltyPointsAdded",
}

CASES: list[tuple[dict[str, Any], str, list[str]]] = [
    (STRIKETHROUGH, "pricing", ["SKU-1", "SKU-2"]),
    (POINTS, "loyalty", ["URNGV8294NV"]),
    ({**POINTS, "NotificationType": "LoyaltyPointsDeducted"}, "loyalty", ["URNGV8294NV"]),
    (
        {
            "NotificationType": "LoyaltyAddedDeductedPointsBalances",
            "ProfileIntegrationID": "p1",
            "Actions": [],
            "CurrentPoints": 3,
        },
        "loyalty",
        ["p1"],
    ),
    (
        {
            "NotificationType": "LoyaltyCardPointsAdded",
            "CardIdentifier": "CARD-1",
            "ProfileIntegrationIDs": ["a", "b"],
        },
        "loyalty",
        ["CARD-1"],
    ),
    (
        {
            "NotificationType": "TierUpgrade",
            "TotalResultSize": 2,
            "Data": [
                {"CustomerProfileID": "a", "CurrentTier": "Gold"},
                {"CustomerProfileID": "b", "CurrentTier": "Silver"},
            ],
        },
        "loyalty",
        ["a", "b"],
    ),
    (
        {"NotificationType": "LoyaltyPointsExpiring", "Data": [{"CustomerProfileID": "c"}]},
        "loyalty",
        ["c"],
    ),
    (
        {"NotificationType": "LoyaltyPointsPendingToActive", "Data": [{"CustomerProfileID": "d"}]},
        "loyalty",
        ["d"],
    ),
    (
        {
            "NotificationType": "CouponCreated",
            "totalResultSize": 2,
            "data": [{"id": 1, "value": "73KXKKFP"}, {"id": 2, "value": "BH3CXXLW"}],
        },
        "coupons",
        ["73KXKKFP", "BH3CXXLW"],
    ),
    ({"NotificationType": "CouponCreated", "BatchID": "nqylhnni"}, "coupons", ["nqylhnni"]),
    ({"NotificationType": "CouponsDeleted", "BatchID": "b1", "CampaignID": 3}, "coupons", ["b1"]),
    (
        {"NotificationType": "CouponCodeExpiring", "Data": [{"CouponValue": "XMAS-20"}]},
        "coupons",
        ["XMAS-20"],
    ),
    (
        {
            "NotificationType": "CampaignNotification",
            "TotalResultSize": 1,
            "Data": [{"Event": "campaign_deleted", "campaign": {"id": 4}, "deletedAt": "x"}],
        },
        "campaigns",
        ["4"],
    ),
]


@pytest.mark.parametrize(("body", "category", "keys"), CASES)
def test_each_type_goes_to_its_category_keyed_by_what_it_concerns(
    body: dict[str, Any], category: str, keys: list[str]
) -> None:
    found = parse_notifications(orjson.dumps(body))
    assert [n.category for n in found] == [category] * len(keys)
    assert [n.key for n in found] == keys
    for notification in found:
        value = orjson.loads(notification.value)
        assert value["id"] == notification.id
        assert value["notificationType"] == body["NotificationType"]
        assert value["key"] == notification.key


def test_an_element_keeps_unknown_fields_and_its_context() -> None:
    _first, second = parse_notifications(orjson.dumps(STRIKETHROUGH))
    value = orjson.loads(second.value)
    assert value["notification"]["newField"] == 1
    assert value["context"]["trigger"]["type"] == "CATALOG_SYNC"
    assert "changedItems" not in value["context"]


def test_an_array_of_objects_is_every_object_in_order() -> None:
    other = {**POINTS, "ProfileIntegrationID": "second"}
    found = parse_notifications(orjson.dumps([POINTS, other, STRIKETHROUGH]))
    assert [n.key for n in found] == ["URNGV8294NV", "second", "SKU-1", "SKU-2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "empty array"),
        (b"[1]", "not a JSON object"),
        (b'{"Amount": 1}', "no NotificationType"),
        (b'{"NotificationType": "SomethingNew"}', "unknown NotificationType"),
        (orjson.dumps({**POINTS, "ProfileIntegrationID": ""}), "has no ProfileIntegrationID"),
        (orjson.dumps({**STRIKETHROUGH, "changedItems": {}}), "not an array"),
        (
            orjson.dumps({"NotificationType": "TierUpgrade", "Data": [{"x": 1}]}),
            "CustomerProfileID",
        ),
    ],
)
def test_what_routing_needs_is_required(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_notifications(body)


keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@given(profiles=st.lists(keys, min_size=1, max_size=5), uuid=st.none() | st.uuids().map(str))
def test_ids_are_stable_and_distinct_within_a_request(
    profiles: list[str], uuid: str | None
) -> None:
    body = orjson.dumps(
        [{**POINTS, "ProfileIntegrationID": p, "Amount": i} for i, p in enumerate(profiles)]
    )
    first = parse_notifications(body, uuid)
    again = parse_notifications(body, uuid)
    assert [n.id for n in first] == [n.id for n in again]  # a retry has the same ids
    assert len({n.id for n in first}) == len(first)


def test_the_message_id_decides_when_present() -> None:
    body = orjson.dumps(POINTS)
    (by_content,) = parse_notifications(body)
    (one,) = parse_notifications(body, "9aa05ee1-876f-42e6-9a5d-fc0bd424d9cb")
    (other,) = parse_notifications(body, "00000000-0000-0000-0000-000000000000")
    assert len({by_content.id, one.id, other.id}) == 3

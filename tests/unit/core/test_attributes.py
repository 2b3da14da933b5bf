"""Unknown attributes: what a pointer names, and the request without them."""

from __future__ import annotations

import copy

from talon_stream.core._attributes import (
    attribute_name,
    dropped_names,
    retry_key,
    without_attributes,
)
from talon_stream.core._calls import Operation

SESSION = Operation.UPDATE_CUSTOMER_SESSION


def test_a_pointer_names_an_entity_and_an_attribute() -> None:
    assert attribute_name(SESSION, "/customerSession/attributes/shoe") == (
        "CustomerSession",
        "shoe",
    )
    assert attribute_name(SESSION, "/customerSession/cartItems/3/attributes/a~1b") == (
        "CartItem",
        "a/b",
    )
    bulk = Operation.UPDATE_CUSTOMER_PROFILES
    assert attribute_name(bulk, "/customerProfiles/7/attributes/pet") == ("CustomerProfile", "pet")
    profile = Operation.UPDATE_CUSTOMER_PROFILE
    assert attribute_name(profile, "/attributes/pet") == ("CustomerProfile", "pet")
    assert attribute_name(Operation.TRACK_EVENT, "/attributes/mood") == ("Event", "mood")
    assert attribute_name(SESSION, "/attributes/x") is None  # not a field of a session update
    assert attribute_name(SESSION, "/customerSession/state") is None
    assert attribute_name(SESSION, "attributes/x") is None


def test_the_body_without_the_named_attributes_leaves_the_original_as_it_was() -> None:
    body = {
        "customerSession": {
            "attributes": {"channel": "web", "shoe": "boot"},
            "cartItems": [
                {"sku": "A", "attributes": {"color": "red"}},
                {"sku": "B", "attributes": {"color": "blue", "fabric": 1}},
            ],
        }
    }
    before = copy.deepcopy(body)
    stripped = without_attributes(
        SESSION,
        body,
        [
            "/customerSession/attributes/shoe",
            "/customerSession/cartItems/1/attributes/fabric",
            "/customerSession/cartItems/9/attributes/fabric",  # no such item: ignored
            "/customerSession/state",  # not an attribute: ignored
        ],
    )
    assert stripped is not None
    out, removed = stripped
    assert removed == [
        "/customerSession/attributes/shoe",
        "/customerSession/cartItems/1/attributes/fabric",
    ]
    assert out == {
        "customerSession": {
            "attributes": {"channel": "web"},
            "cartItems": [
                {"sku": "A", "attributes": {"color": "red"}},
                {"sku": "B", "attributes": {"color": "blue"}},
            ],
        }
    }
    assert body == before
    assert without_attributes(SESSION, body, ["/customerSession/attributes/nope"]) is None


def test_names_and_keys() -> None:
    pointers = ["/attributes/pet", "/attributes/pet", "/attributes/age"]
    profile = Operation.UPDATE_CUSTOMER_PROFILE
    assert dropped_names(profile, pointers) == ["CustomerProfile.pet", "CustomerProfile.age"]
    assert retry_key("k", ["/a", "/b"]) == retry_key("k", ["/b", "/a"])
    assert retry_key("k", ["/a"]) != retry_key("k", ["/b"])
    assert retry_key("k", ["/a"]) != "k"

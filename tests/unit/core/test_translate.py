"""Event → Talon.One call, exactly as the Integration API expects it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.core._calls import Operation
from talon_stream.core._events import decode_event
from talon_stream.core._translate import TranslationOptions, coalesce_session_updates, translate

# Asking for the profile too, so the filtering per operation shows.
OPTIONS = TranslationOptions(response_content=("customerSession", "customerProfile"))


def event(**fields: Any) -> Any:
    return decode_event(
        orjson.dumps({"eventId": "e-1", "occurredAt": "2026-11-22T10:00:00Z", **fields})
    )


def test_cart_update_is_an_open_session_update_with_everything_set() -> None:
    call = translate(
        event(
            type="cart.updated",
            profileId="c-1",
            sessionId="s/1",
            payload={
                "cartItems": [
                    {
                        "sku": "A",
                        "name": "Blouse",
                        "quantity": 1,
                        "price": 49.0,
                        "category": "shirts",
                    }
                ],
                "couponCodes": ["xmas20"],
                "referralCode": "R1",
                "loyaltyCards": ["L1"],
                "additionalCosts": {"shipping": {"price": 4.5}},
                "identifiers": ["ip-hash"],
                "storeIntegrationId": "store-9",
                "attributes": {"channel": "web"},
            },
        ),
        OPTIONS,
    )
    assert call.operation is Operation.UPDATE_CUSTOMER_SESSION
    assert call.method == "PUT"
    assert call.path == "/v2/customer_sessions/s%2F1"
    assert call.query == {}
    assert call.body == {
        "customerSession": {
            "state": "open",
            "profileId": "c-1",
            "cartItems": [
                {"sku": "A", "quantity": 1, "name": "Blouse", "price": 49.0, "category": "shirts"}
            ],
            "couponCodes": ["xmas20"],
            "referralCode": "R1",
            "loyaltyCards": ["L1"],
            "additionalCosts": {"shipping": {"price": 4.5}},
            "identifiers": ["ip-hash"],
            "storeIntegrationId": "store-9",
            "attributes": {"channel": "web"},
        },
        "responseContent": ["customerSession", "customerProfile"],
    }
    assert (call.profile_id, call.session_id) == ("c-1", "s/1")


def test_coupons_are_only_sent_when_the_event_sets_them() -> None:
    without = translate(
        event(type="cart.updated", sessionId="s", payload={"cartItems": []}), OPTIONS
    )
    assert without.body is not None
    assert "couponCodes" not in without.body["customerSession"]
    assert "referralCode" not in without.body["customerSession"]
    cleared = translate(
        event(type="cart.updated", sessionId="s", payload={"couponCodes": []}), OPTIONS
    )
    assert cleared.body is not None
    assert cleared.body["customerSession"]["couponCodes"] == []


@pytest.mark.parametrize(
    ("event_type", "state"),
    [("cart.updated", "open"), ("order.placed", "closed"), ("order.cancelled", "cancelled")],
)
def test_state_is_always_explicit(event_type: str, state: str) -> None:
    call = translate(event(type=event_type, sessionId="s"), OPTIONS)
    assert call.body is not None
    assert call.body["customerSession"]["state"] == state
    assert "profileId" not in call.body["customerSession"]  # anonymous: keep what Talon.One has


def test_returns_reopen() -> None:
    returns = translate(
        event(
            type="order.items_returned",
            sessionId="s",
            profileId="c",
            payload={"items": [{"position": 1, "quantity": 2}, {"sku": "B", "quantity": 1}]},
        ),
        TranslationOptions(response_content=("customerSession", "awardedGiveaways")),
    )
    assert (returns.method, returns.path) == ("POST", "/v2/customer_sessions/s/returns")
    assert returns.body == {
        "return": {
            "returnedCartItems": [{"quantity": 2, "position": 1}, {"quantity": 1, "sku": "B"}]
        },
        "responseContent": ["customerSession"],  # awardedGiveaways is not allowed on returns
    }
    reopen = translate(event(type="order.reopened", sessionId="s"), OPTIONS)
    assert (reopen.method, reopen.path, reopen.body) == (
        "PUT",
        "/v2/customer_sessions/s/reopen",
        None,
    )


def test_profile_update_runs_the_rule_engine_by_default() -> None:
    call = translate(
        event(
            type="customer.updated",
            profileId="c 1",
            payload={"attributes": {"tier": "gold"}, "audiencesChanges": {"adds": [3]}},
        ),
        OPTIONS,
    )
    assert (call.method, call.path) == ("PUT", "/v2/customer_profiles/c%201")
    assert call.query == {"runRuleEngine": "true"}
    assert call.body == {
        "attributes": {"tier": "gold"},
        "audiencesChanges": {"adds": [3], "deletes": []},
        "responseContent": ["customerProfile"],
    }


def test_profile_update_without_rules_sends_no_response_content_and_no_dry() -> None:
    call = translate(
        event(type="customer.updated", profileId="c", payload={"runRuleEngine": False}),
        TranslationOptions(dry=True),
    )
    assert call.query == {"runRuleEngine": "false"}
    assert call.body == {}


def test_track_event_asks_for_effects() -> None:
    call = translate(
        event(
            type="customer.event",
            profileId="c",
            payload={"eventType": "review_submitted", "attributes": {"rating": 4}},
        ),
        TranslationOptions(dry=True, response_content=OPTIONS.response_content),
    )
    assert (call.method, call.path) == ("POST", "/v2/events")
    assert call.query == {"silent": "no", "dry": "true"}
    assert call.body == {
        "type": "review_submitted",
        "profileId": "c",
        "attributes": {"rating": 4},
        "responseContent": ["customerProfile"],
    }


def test_dry_runs_are_configurable_on_sessions() -> None:
    call = translate(event(type="cart.updated", sessionId="s"), TranslationOptions(dry=True))
    assert call.query == {"dry": "true"}


ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@given(
    session_id=ids, profile_id=ids, coupons=st.none() | st.lists(st.text(max_size=100), max_size=3)
)
def test_session_calls_always_carry_state_and_encode_the_id(
    session_id: str, profile_id: str, coupons: list[str] | None
) -> None:
    payload: dict[str, Any] = {} if coupons is None else {"couponCodes": coupons}
    call = translate(
        event(type="cart.updated", sessionId=session_id, profileId=profile_id, payload=payload),
        OPTIONS,
    )
    assert call.body is not None
    session = call.body["customerSession"]
    assert session["state"] == "open"
    assert ("couponCodes" in session) == (coupons is not None)
    encoded = call.path.removeprefix("/v2/customer_sessions/")
    assert "/" not in encoded
    assert call.integration_id == session_id


def test_by_default_only_the_session_is_asked_for() -> None:
    """The envelope publishes the session's summary and nothing of the profile."""
    defaults = TranslationOptions()
    cart = translate(
        event(type="cart.updated", profileId="c", sessionId="s", payload={"cartItems": []}),
        defaults,
    )
    assert cart.body is not None
    assert cart.body["responseContent"] == ["customerSession"]
    profile = translate(
        event(type="customer.updated", profileId="c", payload={"attributes": {"tier": "gold"}}),
        defaults,
    )
    assert profile.body == {"attributes": {"tier": "gold"}}


def cart_update(n: int, **payload: Any) -> Any:
    return translate(
        event(
            eventId=f"c{n}", type="cart.updated", sessionId="s1", profileId="ada", payload=payload
        ),
        OPTIONS,
    )


def item(sku: str) -> dict[str, Any]:
    return {"sku": sku, "name": sku, "price": 5.0, "quantity": 1, "category": "c"}


def test_coalesced_cart_updates_keep_the_latest_of_each_field_and_merge_attributes() -> None:
    calls = [
        cart_update(1, cartItems=[item("A")], couponCodes=["SPRING"], attributes={"a": 1, "b": 1}),
        cart_update(2, cartItems=[item("A"), item("B")], referralCode="REF-1"),
        cart_update(3, cartItems=[item("B")], attributes={"b": 2, "c": 3}),
    ]
    merged = coalesce_session_updates(calls)
    session = merged.body["customerSession"]
    assert [line["sku"] for line in session["cartItems"]] == ["B"]  # the last cart
    assert session["couponCodes"] == ["SPRING"]  # from the latest that carries them
    assert session["referralCode"] == "REF-1"
    assert session["attributes"] == {"a": 1, "b": 2, "c": 3}
    assert session["state"] == "open"
    assert (merged.operation, merged.integration_id) == (Operation.UPDATE_CUSTOMER_SESSION, "s1")
    assert merged.body["responseContent"] == calls[-1].body["responseContent"]
    # An empty list is a value: it clears the coupons, as the record that sent it asked.
    cleared = coalesce_session_updates([calls[0], cart_update(4, couponCodes=[])])
    assert cleared.body["customerSession"]["couponCodes"] == []


def test_only_updates_of_one_session_coalesce() -> None:
    other = translate(
        event(eventId="x", type="cart.updated", sessionId="s2", profileId="ada", payload={}),
        OPTIONS,
    )
    with pytest.raises(ValueError, match="not an update of session s2"):
        coalesce_session_updates([cart_update(1), other])
    with pytest.raises(ValueError, match="nothing"):
        coalesce_session_updates([])

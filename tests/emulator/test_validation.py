"""Invalid bodies and query flags answer Talon.One's 400 "The submitted data was invalid"."""

from __future__ import annotations

from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.validation import parse_bool, parse_json, parse_silent, parse_time
from talon_one_emulator.errors import InvalidDataError
from tests.emulator.support import UNDECLARED_SESSION_ATTRIBUTE

ITEM = {"sku": "rsb002", "quantity": 1, "price": 49}


def session_error(api: IntegrationService, session: Any, **extra: Any) -> dict[str, Any]:
    with pytest.raises(InvalidDataError) as caught:
        api.update_customer_session("s-1", {"customerSession": session, **extra})
    body = caught.value.body()
    assert caught.value.status == 400
    assert body["message"] == "The submitted data was invalid"
    assert body["errors"]
    for error in body["errors"]:
        assert error["title"]
        assert error["details"]
        assert "pointer" in error["source"] or "parameter" in error["source"]
    return body


def test_undeclared_session_attribute(api: IntegrationService) -> None:
    body = session_error(api, {"attributes": {"channel": "web", "MyAttribute": 1}})

    assert body == UNDECLARED_SESSION_ATTRIBUTE
    assert "s-1" not in api.state.sessions


def test_undeclared_cart_item_attribute(api: IntegrationService) -> None:
    items = [ITEM, {**ITEM, "attributes": {"color": "red", "size": "M"}}]

    body = session_error(api, {"cartItems": items})

    [error] = body["errors"]
    assert error["title"] == "Unknown"
    assert error["details"] == 'The attribute "size" is not defined on CartItem entities.'
    assert error["source"]["pointer"] == "/customerSession/cartItems/1/attributes/size"


def test_wrongly_typed_attribute(api: IntegrationService) -> None:
    body = session_error(api, {"attributes": {"channel": False}})

    [error] = body["errors"]
    assert error["title"] == "Invalid type"
    assert error["details"] == 'Value of "channel" attribute (false) is not a string'
    assert error["source"]["pointer"] == "/customerSession/attributes/channel"


@pytest.mark.parametrize(
    ("session", "pointer", "title"),
    [
        (
            {"cartItems": [{**ITEM, "quantity": 0}]},
            "/customerSession/cartItems/0/quantity",
            "minimum",
        ),
        (
            {"cartItems": [{**ITEM, "quantity": 1.5}]},
            "/customerSession/cartItems/0/quantity",
            "Invalid type",
        ),
        (
            {"cartItems": [{**ITEM, "quantity": "2"}]},
            "/customerSession/cartItems/0/quantity",
            "Invalid type",
        ),
        (
            {"cartItems": [{**ITEM, "price": "9.99"}]},
            "/customerSession/cartItems/0/price",
            "Invalid type",
        ),
        ({"cartItems": [{**ITEM, "sku": ""}]}, "/customerSession/cartItems/0/sku", "minLength"),
        ({"cartItems": [{"quantity": 1}]}, "/customerSession/cartItems/0/sku", "required"),
        (
            {"identifiers": ["a", "b", "c", "d", "e", "f"]},
            "/customerSession/identifiers",
            "maxItems",
        ),
        ({"loyaltyCards": ["a", "b"]}, "/customerSession/loyaltyCards", "maxItems"),
        ({"couponCodes": ["x" * 101]}, "/customerSession/couponCodes/0", "maxLength"),
        ({"state": "done"}, "/customerSession/state", "enum"),
        ({"profileId": 42}, "/customerSession/profileId", "Invalid type"),
        ({"attributes": []}, "/customerSession/attributes", "Invalid type"),
        ({"cartItems": [{**ITEM, "quantity": 10_001}]}, "/customerSession/cartItems", "maximum"),
    ],
)
def test_schema_violations(
    api: IntegrationService, session: dict[str, Any], pointer: str, title: str
) -> None:
    body = session_error(api, session)

    assert [(error["source"]["pointer"], error["title"]) for error in body["errors"]] == [
        (pointer, title)
    ]


def test_enum_details_list_the_allowed_values(api: IntegrationService) -> None:
    body = session_error(api, {"state": "done"})

    assert body["errors"][0]["details"] == (
        "state must be one of the following: open, closed, partially_returned, cancelled"
    )


def test_invalid_response_content(api: IntegrationService) -> None:
    body = session_error(api, {}, responseContent=["everything"])

    assert body["errors"][0]["source"]["pointer"] == "/responseContent/0"
    assert body["errors"][0]["title"] == "enum"


def test_missing_customer_session(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.update_customer_session("s-1", {"responseContent": []})

    assert caught.value.body()["errors"][0]["source"]["pointer"] == "/customerSession"


def test_body_must_be_an_object(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError):
        api.update_customer_session("s-1", [1, 2])


def test_every_problem_is_reported(api: IntegrationService) -> None:
    body = session_error(api, {"state": "done", "identifiers": list("abcdef")})

    assert len(body["errors"]) == 2


def test_undeclared_profile_attribute(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.update_customer_profile("cust-1", {"attributes": {"Name": "Ann", "shoeSize": 38}})

    assert caught.value.body()["errors"] == [
        {
            "title": "Unknown",
            "details": 'The attribute "shoeSize" is not defined on CustomerProfile entities.',
            "source": {"pointer": "/attributes/shoeSize"},
        }
    ]
    assert "cust-1" not in api.state.profiles


def test_response_content_needs_the_rule_engine(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.update_customer_profile("cust-1", {"responseContent": ["customerProfile"]})

    assert caught.value.body()["errors"][0]["source"] == {"pointer": "/responseContent"}


@pytest.mark.parametrize(
    ("event", "pointer", "title"),
    [
        ({"type": "review_submitted"}, "/profileId", "required"),
        ({"type": "review_submitted", "profileId": ""}, "/profileId", "required"),
        ({"type": "unknown_event", "profileId": "c"}, "/type", "Unknown"),
        ({"type": "", "profileId": "c"}, "/type", "minLength"),
        (
            {"type": "review_submitted", "profileId": "c", "attributes": {"stars": 5}},
            "/attributes/stars",
            "Unknown",
        ),
        (
            {"type": "review_submitted", "profileId": "c", "attributes": {"rating": "5"}},
            "/attributes/rating",
            "Invalid type",
        ),
        (
            {"type": "review_submitted", "profileId": "c", "loyaltyCards": ["a", "b"]},
            "/loyaltyCards",
            "maxItems",
        ),
    ],
)
def test_invalid_events(
    api: IntegrationService, event: dict[str, Any], pointer: str, title: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.track_event(event, silent=False)

    errors = caught.value.body()["errors"]
    assert [(error["source"]["pointer"], error["title"]) for error in errors] == [(pointer, title)]


def test_undeclared_event_attribute_message(api: IntegrationService) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.track_event({"type": "review_submitted", "profileId": "c", "attributes": {"stars": 5}})

    details = caught.value.body()["errors"][0]["details"]
    assert details == 'The attribute "stars" is not defined on Event entities.'


def test_malformed_json() -> None:
    with pytest.raises(InvalidDataError) as caught:
        parse_json(b"{nope")

    assert caught.value.body()["errors"][0]["title"] == "Invalid JSON"
    with pytest.raises(InvalidDataError):
        parse_json(b"")


def test_query_flags() -> None:
    assert parse_bool("dry", None) is False
    assert parse_bool("dry", "true") is True
    assert parse_bool("dry", "False") is False
    assert parse_silent(None) is True
    assert parse_silent("yes") is True
    assert parse_silent("no") is False
    assert parse_time("now", "2030-01-02T03:04:05.000000+0000") is not None
    assert parse_time("now", "2030-01-02T03:04:05Z") is not None
    for call in (
        lambda: parse_bool("dry", "maybe"),
        lambda: parse_silent("sometimes"),
        lambda: parse_time("now", "tomorrow"),
        lambda: parse_time("now", "2030-01-02T03:04:05"),
    ):
        with pytest.raises(InvalidDataError) as caught:
            call()
        assert "parameter" in caught.value.body()["errors"][0]["source"]

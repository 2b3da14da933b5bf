"""Routing records to Talon.One Applications, and the settings that describe them."""

from __future__ import annotations

import orjson
import pytest

from talon_stream._exceptions import ConfigurationError, InvalidSettingsError, TranslationError
from talon_stream.config import load_settings
from talon_stream.core._applications import ApplicationRouter
from talon_stream.core._events import decode_event
from talon_stream.core._records import InputRecord

CART = {
    "eventId": "e-1",
    "type": "cart.updated",
    "occurredAt": "2026-11-22T10:00:00Z",
    "profileId": "c-1",
    "sessionId": "s-1",
    "payload": {"attributes": {"market": "fr"}, "storeIntegrationId": "store-7"},
}


def record(headers: list[tuple[str, bytes]] | None = None) -> InputRecord:
    return InputRecord("shop.carts", 0, 1, b"c-1", orjson.dumps(CART), headers or [], None)


def test_a_header_names_the_application_and_no_header_means_the_default() -> None:
    router = ApplicationRouter("header:X-Market", ["default", "fr", "de"], "default")
    event = decode_event(orjson.dumps(CART))
    assert router.route(record([("x-market", b"de")]), event) == "de"
    assert router.route(record(), event) == "default"
    assert router.route(record([("x-market", b"")]), event) == "default"
    with pytest.raises(TranslationError, match="'it', which is not an Application"):
        router.route(record([("X-MARKET", b"it")]), event)


def test_a_path_reads_the_event_by_its_camel_case_names_and_object_keys() -> None:
    event = decode_event(orjson.dumps(CART))
    assert (
        ApplicationRouter("payload.attributes.market", ["default", "fr"], "default").route(
            record(), event
        )
        == "fr"
    )
    missing = ApplicationRouter("payload.attributes.currency", ["default", "fr"], "default")
    assert missing.route(record(), event) == "default"
    store = ApplicationRouter("payload.storeIntegrationId", ["default", "store-7"], "default")
    assert store.route(record(), event) == "store-7"
    with pytest.raises(ConfigurationError, match="needs a header name"):
        ApplicationRouter("header:", ["default"], "default")


def test_applications_need_a_field_a_key_and_a_name_of_their_own() -> None:
    settings = load_settings(
        talon_api_key="k",
        applications={"fr": {"api_key": "fr-key", "catalog_id": 3}},
        application_field="header:x-market",
    )
    assert settings.applications["fr"].catalog_id == 3
    assert "fr-key" not in repr(settings)
    with pytest.raises(InvalidSettingsError, match="needs TALON_STREAM_APPLICATION_FIELD"):
        load_settings(talon_api_key="k", applications={"fr": {"api_key": "fr-key"}})
    with pytest.raises(InvalidSettingsError, match="give the others other names"):
        load_settings(
            talon_api_key="k",
            applications={"default": {"api_key": "x"}},
            application_field="header:m",
        )
    with pytest.raises(InvalidSettingsError, match="api_key must not be empty"):
        load_settings(
            talon_api_key="k", applications={"fr": {"api_key": ""}}, application_field="header:m"
        )

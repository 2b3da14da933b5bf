"""What-if with several Talon.One Applications: one is evaluated, with its own key, and the
records of the others are left out."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from talon_stream._exceptions import ConfigurationError
from talon_stream.config import load_settings
from talon_stream.core._events import decode_event
from talon_stream.core._records import InputRecord
from talon_stream.whatif import WhatIfOptions
from talon_stream.whatif._run import _application, _router

SETTINGS = {
    "talon_api_key": "default-key",
    "talon_base_url": "https://shop.europe-west1.talon.one",
    "applications": {"us": {"api_key": "us-key", "base_url": "https://shop.us-east1.talon.one"}},
    "application_field": "header:x-market",
}


def options(application: str) -> WhatIfOptions:
    return WhatIfOptions(
        since=datetime(2026, 11, 1, tzinfo=UTC),
        until=datetime(2026, 11, 2, tzinfo=UTC),
        campaigns=(2,),
        application=application,
    )


def test_the_evaluated_application_gives_its_url_and_key() -> None:
    settings = load_settings(**SETTINGS)
    assert _application(settings, "us") == ("https://shop.us-east1.talon.one", "us-key")
    assert _application(settings, "default") == (
        "https://shop.europe-west1.talon.one",
        "default-key",
    )
    with pytest.raises(ConfigurationError, match="'fr' is not one of default, us"):
        _application(settings, "fr")


def test_records_are_told_apart_by_the_workers_routing() -> None:
    settings = load_settings(**SETTINGS)
    routing = _router(settings, options("us"))
    assert routing is not None
    router, evaluated = routing
    event = decode_event(
        orjson.dumps(
            {
                "eventId": "e",
                "type": "customer.updated",
                "occurredAt": "2026-11-01T10:00:00Z",
                "profileId": "c",
            }
        )
    )

    def record(headers: list[tuple[str, bytes]]) -> InputRecord:
        return InputRecord("t", 0, 0, b"c", b"{}", headers, None)

    assert evaluated == "us"
    assert router.route(record([("x-market", b"us")]), event) == "us"
    assert router.route(record([]), event) == "default"
    assert _router(load_settings(talon_api_key="k"), options("default")) is None

"""Advanced events (trackEventV3, getEventV3): without HTTP through IntegrationService, then over
HTTP for the status codes, error bodies, the request log, the per-profile 409 and the
Idempotency-Key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.app import EmulatorApp, create_app
from talon_one_emulator.campaigns.file import CampaignSet
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import AlreadyExistsError, InvalidDataError, NotFoundError
from talon_one_emulator.http.faults import FaultSettings
from talon_one_emulator.server import serve
from talon_one_emulator.store.state import EmulatorState
from tests.emulator.support import HTTP_KEY, call

# The specification's responseContent values of trackEventV3.
V3_CONTENT = [
    "customerProfile",
    "triggeredCampaigns",
    "loyalty",
    "advancedEvent",
    "awardedGiveaways",
    "ruleFailureReasons",
]
BLOUSE = {"sku": "rsb002", "quantity": 1, "price": 49}


def review(event_id: str, profile_id: str = "cust-1", **extra: Any) -> dict[str, Any]:
    """A trackEventV3 body: the default campaigns' review event (50 points, a notification)."""
    return {
        "integrationId": event_id,
        "profileId": profile_id,
        "type": "review_submitted",
        "attributes": {"rating": 5},
        **extra,
    }


def close_session(api: IntegrationService, session_id: str, profile_id: str = "cust-1") -> None:
    for state in ("open", "closed"):
        body = {"customerSession": {"profileId": profile_id, "state": state, "cartItems": [BLOUSE]}}
        api.update_customer_session(session_id, body)


# --- without HTTP ----------------------------------------------------------------------------


def test_advanced_event_is_evaluated_stored_and_answered(api: IntegrationService) -> None:
    response = api.track_advanced_event(
        review("ev-1", storeIntegrationId="store-berlin", responseContent=V3_CONTENT),
        silent=False,
    )

    assert response is not None
    types = [effect["effectType"] for effect in response["effects"]]
    assert types == ["showNotification", "addLoyaltyPoints"]
    assert response["createdCoupons"] == []
    assert response["createdReferrals"] == []
    event = response["advancedEvent"]
    assert event == {
        "id": 1,
        "created": event["created"],
        "applicationId": 1,
        "integrationId": "ev-1",
        "profileId": "cust-1",
        "type": "review_submitted",
        "attributes": {"rating": 5},
        "effects": response["effects"],
        "storeIntegrationId": "store-berlin",
    }
    assert "event" not in response
    assert response["customerProfile"]["integrationId"] == "cust-1"
    assert [campaign["id"] for campaign in response["triggeredCampaigns"]] == [6]
    assert response["loyalty"]["programs"]["1"]["ledger"]["currentBalance"] == 50
    assert response["awardedGiveaways"] == []
    assert response["ruleFailureReasons"] == []
    # Stored: the event, the new profile and its points.
    assert api.get_advanced_event("ev-1") == event
    assert api.state.profiles["cust-1"].points == {1: 50}


def test_silent_by_default(api: IntegrationService) -> None:
    assert api.track_advanced_event(review("ev-1")) is None
    assert "ev-1" in api.state.events


def test_only_the_asked_parts_are_answered(api: IntegrationService) -> None:
    response = api.track_advanced_event(review("ev-1"), silent=False)

    assert response is not None
    assert set(response) == {"effects", "createdCoupons", "createdReferrals"}


def test_a_second_event_with_the_same_id_is_a_conflict(api: IntegrationService) -> None:
    api.track_advanced_event(review("ev-1"))

    with pytest.raises(AlreadyExistsError) as caught:
        api.track_advanced_event(review("ev-1", profile_id="someone-else"), silent=False)

    assert caught.value.status == 409
    assert caught.value.body() == {
        "message": 'An advanced event with integrationId "ev-1" already exists',
        "StatusCode": 409,
    }
    # Nothing of the second call happened: no profile, no second 50 points.
    assert "someone-else" not in api.state.profiles
    assert api.state.profiles["cust-1"].points == {1: 50}


def test_dry_event_stores_nothing(api: IntegrationService) -> None:
    response = api.track_advanced_event(
        review("ev-dry", profile_id="ghost", responseContent=["advancedEvent"]),
        silent=False,
        dry=True,
    )

    assert response is not None
    assert len(response["effects"]) == 2
    assert response["advancedEvent"]["id"] == 0
    assert "ev-dry" not in api.state.events
    assert "ghost" not in api.state.profiles
    with pytest.raises(NotFoundError):
        api.get_advanced_event("ev-dry")
    # The ID is still free: the real call is accepted.
    assert api.track_advanced_event(review("ev-dry", profile_id="ghost")) is None
    assert api.state.profiles["ghost"].points == {1: 50}


def test_dry_event_with_a_taken_id_is_a_conflict_too(api: IntegrationService) -> None:
    api.track_advanced_event(review("ev-1"))

    with pytest.raises(AlreadyExistsError):
        api.track_advanced_event(review("ev-1"), dry=True)


def test_unknown_event_is_not_found(api: IntegrationService) -> None:
    with pytest.raises(NotFoundError) as caught:
        api.get_advanced_event("nope")

    assert caught.value.status == 404
    assert caught.value.body() == {"message": 'Advanced event "nope" not found', "StatusCode": 404}


def test_event_may_reference_a_closed_session(api: IntegrationService) -> None:
    close_session(api, "s-1")

    response = api.track_advanced_event(
        review("ev-1", connectedSessionId="s-1", responseContent=["advancedEvent"]),
        silent=False,
    )

    assert response is not None
    assert response["advancedEvent"]["connectedSessionId"] == "s-1"
    assert api.get_advanced_event("ev-1")["connectedSessionId"] == "s-1"


def test_the_sdk_spelling_of_the_connected_session_is_read_too(api: IntegrationService) -> None:
    close_session(api, "s-1")

    api.track_advanced_event(review("ev-1", connectedSessionID="s-1"))
    api.track_advanced_event(review("ev-2", connectedSessionId="s-1", connectedSessionID="s-1"))

    assert api.get_advanced_event("ev-1")["connectedSessionId"] == "s-1"
    with pytest.raises(InvalidDataError) as caught:
        api.track_advanced_event(review("ev-3", connectedSessionId="s-1", connectedSessionID="x"))
    [error] = caught.value.body()["errors"]
    assert error["source"] == {"pointer": "/connectedSessionID"}


@pytest.mark.parametrize("session_state", ["open", "cancelled", "unknown"])
def test_the_connected_session_must_exist_and_be_closed(
    api: IntegrationService, session_state: str
) -> None:
    if session_state != "unknown":
        api.update_customer_session(
            "s-1", {"customerSession": {"profileId": "cust-1", "state": "open"}}
        )
        if session_state == "cancelled":
            api.update_customer_session(
                "s-1", {"customerSession": {"profileId": "cust-1", "state": "cancelled"}}
            )

    with pytest.raises(InvalidDataError) as caught:
        api.track_advanced_event(review("ev-1", connectedSessionId="s-1"))

    [error] = caught.value.body()["errors"]
    assert error["title"] == "Invalid"
    assert error["source"] == {"pointer": "/connectedSessionId"}
    assert "ev-1" not in api.state.events


def event(**fields: Any) -> dict[str, Any]:
    """A valid trackEventV3 body, changed by ``fields`` (``None`` drops a key)."""
    body = {"integrationId": "e", "profileId": "p", "type": "review_submitted", **fields}
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "title", "where"),
    [
        (event(integrationId=None), "required", "/integrationId"),
        (event(integrationId=""), "minLength", "/integrationId"),
        (event(profileId=None), "required", "/profileId"),
        (event(profileId=""), "required", "/profileId"),
        (event(type="unknown_event"), "Unknown", "/type"),
        (event(attributes={"x": 1}), "Unknown", "/attributes/x"),
        (event(attributes={"rating": "five"}), "Invalid type", "/attributes/rating"),
        (event(connectedSessionId=""), "minLength", "/connectedSessionId"),
        # SDK 26.2 asks for "event"; the specification has "advancedEvent" instead.
        (event(responseContent=["event"]), "enum", "/responseContent/0"),
        (event(loyaltyCards=["a", "b"]), "maxItems", "/loyaltyCards"),
    ],
)
def test_invalid_bodies(api: IntegrationService, body: Any, title: str, where: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        api.track_advanced_event(body)

    assert [(e["title"], e["source"]["pointer"]) for e in caught.value.body()["errors"]] == [
        (title, where)
    ]


def test_events_beyond_the_cap_are_forgotten(campaigns: CampaignSet) -> None:
    api = IntegrationService(EmulatorState(campaigns, max_events=2))
    for number in range(3):
        api.track_advanced_event(review(f"ev-{number}"))

    assert len(api.state.events) == 2
    with pytest.raises(NotFoundError):
        api.get_advanced_event("ev-0")
    assert api.get_advanced_event("ev-2")["id"] == 3
    # A forgotten ID is one the emulator has never seen.
    api.track_advanced_event(review("ev-0"))
    assert "ev-1" not in api.state.events


# --- over HTTP -------------------------------------------------------------------------------


async def test_http_answers(client: aiohttp.ClientSession) -> None:
    status, body = await call(client, "POST", "/v3/events", review("ev-1"))
    assert (status, body) == (204, None)

    status, body = await call(
        client,
        "POST",
        "/v3/events",
        review("ev-2", responseContent=["advancedEvent"]),
        params={"silent": "no"},
    )
    assert status == 200
    assert body["advancedEvent"]["integrationId"] == "ev-2"

    status, stored = await call(client, "GET", "/v3/events/ev-2")
    assert (status, stored) == (200, body["advancedEvent"])

    status, duplicate = await call(client, "POST", "/v3/events", review("ev-2"))
    assert status == 409
    assert duplicate == {
        "message": 'An advanced event with integrationId "ev-2" already exists',
        "StatusCode": 409,
    }

    status, missing = await call(client, "GET", "/v3/events/unknown")
    assert status == 404
    assert missing == {"message": 'Advanced event "unknown" not found', "StatusCode": 404}

    status, invalid = await call(client, "POST", "/v3/events", review("ev-3", type="nope"))
    assert status == 400
    assert invalid["StatusCode"] == 400
    assert invalid["errors"][0]["source"] == {"pointer": "/type"}


async def test_http_query_flags(client: aiohttp.ClientSession) -> None:
    status, body = await call(
        client, "POST", "/v3/events", review("ev-1"), params={"forceCompleteEvaluation": "true"}
    )
    assert status == 400
    assert body["errors"][0]["source"] == {"parameter": "forceCompleteEvaluation"}

    status, body = await call(
        client,
        "POST",
        "/v3/events",
        review("ev-1"),
        params={"dry": "true", "forceCompleteEvaluation": "true", "silent": "no"},
    )
    assert status == 200
    assert len(body["effects"]) == 2
    assert (await call(client, "GET", "/v3/events/ev-1"))[0] == 404

    status, body = await call(
        client, "POST", "/v3/events", review("ev-1"), params={"silent": "maybe"}
    )
    assert status == 400
    assert body["errors"][0]["source"] == {"parameter": "silent"}


# --- the handler: request log, 409, Idempotency-Key -----------------------------------------


class HeldSleep:
    """An injected latency that holds every request until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()

    async def __call__(self, _delay: float) -> None:
        self.arrived.set()
        await self.release.wait()


@dataclass
class Held:
    client: aiohttp.ClientSession
    sleep: HeldSleep
    app: EmulatorApp


@pytest.fixture
async def held(state: EmulatorState) -> AsyncIterator[Held]:
    """An emulator whose calls have 1 ms of latency, which lasts until released."""
    sleep = HeldSleep()
    config = EmulatorConfig(
        api_keys=[HTTP_KEY], faults=FaultSettings.model_validate({"latency": {"ms": 1}})
    )
    app = create_app(config, state=state, sleep=sleep)
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        yield Held(client, sleep, app)


async def test_three_calls_per_profile_then_409(held: Held) -> None:
    client, sleep, state = held.client, held.sleep, held.app.state
    # The key is the profile, shared with trackEventV2: one v2 and two v3 events are in flight.
    first = [
        asyncio.create_task(call(client, "POST", "/v2/events", review("v2"))),
        asyncio.create_task(call(client, "POST", "/v3/events", review("ev-1"))),
        asyncio.create_task(call(client, "POST", "/v3/events", review("ev-2"))),
    ]
    await asyncio.wait_for(sleep.arrived.wait(), 5)
    await asyncio.sleep(0.05)  # the other two arrive and queue behind the first

    refused = await call(client, "POST", "/v3/events", review("ev-3"))
    other = asyncio.create_task(call(client, "POST", "/v3/events", review("ev-4", "cust-2")))
    sleep.release.set()
    results = await asyncio.gather(*first, other)

    assert refused == (
        409,
        {
            "message": "Too many requests are updating this profile at the same time",
            "StatusCode": 409,
        },
    )
    assert [status for status, _ in results] == [204, 204, 204, 204]
    assert "ev-3" not in state.events
    assert all(event in state.events for event in ("ev-1", "ev-2", "ev-4"))
    [entry] = [entry for entry in state.request_log.entries() if entry["status"] == 409]
    assert (entry["operation"], entry["profileId"]) == ("trackEventV3", "cust-1")
    assert entry["body"]["integrationId"] == "ev-3"


async def test_idempotency_key_is_logged_not_replayed(held: Held) -> None:
    held.sleep.release.set()
    headers = {"Authorization": f"ApiKey-v1 {HTTP_KEY}", "Idempotency-Key": "k-1"}
    statuses = []
    for _ in range(2):
        async with held.client.post("/v3/events", json=review("ev-1"), headers=headers) as answer:
            statuses.append(answer.status)

    # The event's own integrationId makes it idempotent: a repeat is refused, not replayed.
    assert statuses == [204, 409]
    assert len(held.app.idempotency) == 0
    log = held.app.state.request_log.entries()
    assert [(e["idempotencyKey"], e["replayed"]) for e in log] == [("k-1", False)] * 2
    assert held.app.state.profiles["cust-1"].points == {1: 50}


async def test_request_log_entries(held: Held) -> None:
    held.sleep.release.set()
    await call(held.client, "POST", "/v3/events", review("ev-1"), params={"silent": "no"})
    await call(held.client, "GET", "/v3/events/ev-1")

    entries = held.app.state.request_log.entries()
    assert [(e["operation"], e["status"], e["profileId"]) for e in entries] == [
        ("trackEventV3", 200, "cust-1"),
        ("getEventV3", 200, None),
    ]
    assert entries[0]["query"] == {"silent": "no"}
    assert entries[0]["body"] == review("ev-1")
    assert entries[1]["path"] == "/v3/events/ev-1"

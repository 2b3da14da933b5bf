"""The operations of the newer specification that SDK 26.2 has no methods for: trackEventV3,
getEventV3, integrationGetAllCampaigns and joinLoyaltyProgram.

They are called through the SDK's own client exactly as its generated methods call theirs
(``param_serialize``, ``call_api``, ``response_deserialize`` with the specification's response
map), so every answer, the errors included, is parsed by the SDK's models:
IntegrationEventV3Response and EventV3 (which SDK 26.2 has), ErrorResponseWithStatus, and the 409
model of track event.
IntegrationCampaign and RuleMetadata are not in SDK 26.2: campaign lists are checked against
strict models of their specification schemas written here.

SDK 26.2's event models predate the specification in two names: they spell the connection
``connectedSessionID`` (the emulator reads both spellings) and call the answered event ``event``
(the specification: ``advancedEvent``, parsed here with the SDK's EventV3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import talon_one as t
from pydantic import BaseModel, ConfigDict, Field
from talon_one.exceptions import (
    BadRequestException,
    ConflictException,
    NotFoundException,
    UnauthorizedException,
)

from talon_one_emulator import EmulatorConfig, EmulatorServer
from tests.emulator.conformance.conftest import effects_of, new_id, sdk_api

KEY = "newer-operations-key"

# The response maps of the specification (the 409 of trackEventV3 has track event's schema,
# which SDK 26.2 names UpdateCustomerProfileV2409Response).
TRACK_EVENT_V3 = {
    "200": "IntegrationEventV3Response",
    "400": "ErrorResponseWithStatus",
    "401": "ErrorResponseWithStatus",
    "409": "UpdateCustomerProfileV2409Response",
}
GET_EVENT_V3 = {
    "200": "EventV3",
    "401": "ErrorResponseWithStatus",
    "404": "ErrorResponseWithStatus",
}
ALL_CAMPAIGNS = {
    "200": "object",
    "400": "ErrorResponseWithStatus",
    "401": "ErrorResponseWithStatus",
    "404": "ErrorResponseWithStatus",
}
JOIN = {
    "200": None,
    "400": "ErrorResponseWithStatus",
    "401": "ErrorResponseWithStatus",
    "404": "ErrorResponseWithStatus",
}
V3_CONTENT = [
    "customerProfile",
    "triggeredCampaigns",
    "loyalty",
    "advancedEvent",
    "awardedGiveaways",
    "ruleFailureReasons",
]


class RuleMetadata(BaseModel):
    """The specification's RuleMetadata."""

    model_config = ConfigDict(extra="forbid", strict=True)
    title: str
    display_name: str | None = Field(default=None, alias="displayName")
    display_description: str | None = Field(default=None, alias="displayDescription")
    related_data: str | None = Field(default=None, alias="relatedData")


class IntegrationCampaign(BaseModel):
    """The specification's IntegrationCampaign (IntegrationCampaignBase and its rules)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    application_id: int = Field(alias="applicationId")
    id: int
    name: str = Field(min_length=1)
    description: str | None = None
    start_time: str | None = Field(default=None, alias="startTime")
    end_time: str | None = Field(default=None, alias="endTime")
    attributes: dict[str, Any] | None = None
    state: str = Field(pattern="^enabled$")
    tags: list[str] = Field(max_length=50)
    features: list[str]
    rules: list[RuleMetadata]
    linked_store_ids: list[int] | None = Field(default=None, alias="linkedStoreIds")
    linked_audience_ids: list[int] | None = Field(default=None, alias="linkedAudienceIds")


class CampaignPage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    has_more: bool = Field(alias="hasMore")
    data: list[IntegrationCampaign]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[KEY])) as running:
        yield running


def sdk_call(
    api: t.IntegrationApi,
    method: str,
    path: str,
    types: Mapping[str, str | None],
    *,
    path_params: dict[str, str] | None = None,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
) -> t.ApiResponse[Any]:
    """One call through the SDK's client, as a generated method of the SDK makes it."""
    client = api.api_client
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    serialized = client.param_serialize(
        method=method,
        resource_path=path,
        path_params=path_params or {},
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["api_key_v1"],
        collection_formats={"campaignIds": "csv"},
    )
    response = client.call_api(*serialized)
    response.read()
    answer: t.ApiResponse[Any] = client.response_deserialize(
        response_data=response, response_types_map=dict(types)
    )
    return answer


def track(api: t.IntegrationApi, body: Any, **query: Any) -> t.ApiResponse[Any]:
    return sdk_call(api, "POST", "/v3/events", TRACK_EVENT_V3, body=body, query=list(query.items()))


def get_event(api: t.IntegrationApi, integration_id: str) -> t.ApiResponse[Any]:
    return sdk_call(
        api,
        "GET",
        "/v3/events/{integrationId}",
        GET_EVENT_V3,
        path_params={"integrationId": integration_id},
    )


def review(event_id: str, profile_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "integrationId": event_id,
        "profileId": profile_id,
        "type": "review_submitted",
        "attributes": {"rating": 4},
        **extra,
    }


def close_session(api: t.IntegrationApi, session_id: str, profile_id: str) -> None:
    cart = [t.CartItem(name="Blouse", sku="rsb002", quantity=1, price=49)]
    for state in ("open", "closed"):
        request = t.IntegrationRequest(
            customer_session=t.NewCustomerSessionV2(
                profile_id=profile_id, state=state, cart_items=cart
            )
        )
        api.update_customer_session_v2(session_id, request)


# --- trackEventV3, getEventV3 -----------------------------------------------------------------


def test_track_advanced_event_and_get_it(api: t.IntegrationApi) -> None:
    event_id, profile_id = new_id("ev"), new_id("cust")

    answer = track(
        api, review(event_id, profile_id, responseContent=V3_CONTENT), silent="no", dry=False
    )

    assert answer.status_code == 200
    response = answer.data
    assert isinstance(response, t.IntegrationEventV3Response)
    assert [n.title for n in effects_of(response.effects, "showNotification")] == [
        "Thank you for your review"
    ]
    assert [p.value for p in effects_of(response.effects, "addLoyaltyPoints")] == [50]
    assert response.created_coupons == []
    assert response.created_referrals == []
    assert response.customer_profile is not None
    assert response.customer_profile.integration_id == profile_id
    assert response.triggered_campaigns is not None
    assert [campaign.id for campaign in response.triggered_campaigns] == [6]
    assert response.loyalty is not None
    assert response.loyalty.programs["1"].ledger.current_balance == 50
    assert response.awarded_giveaways == []
    assert response.rule_failure_reasons == []
    raw = json.loads(answer.raw_data)
    advanced = t.EventV3.from_dict(raw["advancedEvent"])
    assert advanced is not None
    assert (advanced.integration_id, advanced.profile_id, advanced.type) == (
        event_id,
        profile_id,
        "review_submitted",
    )
    assert advanced.attributes == {"rating": 4}
    assert [effect["effectType"] for effect in raw["advancedEvent"]["effects"]] == [
        "showNotification",
        "addLoyaltyPoints",
    ]

    stored = get_event(api, event_id)
    assert stored.status_code == 200
    assert isinstance(stored.data, t.EventV3)
    assert stored.data == advanced
    assert json.loads(stored.raw_data) == raw["advancedEvent"]


def test_silent_is_the_default(api: t.IntegrationApi) -> None:
    event_id = new_id("ev")

    answer = track(api, review(event_id, new_id("cust")))

    assert (answer.status_code, answer.data, answer.raw_data) == (204, None, b"")
    assert isinstance(get_event(api, event_id).data, t.EventV3)


def test_the_sdk_request_model_is_accepted(api: t.IntegrationApi) -> None:
    session_id, profile_id, event_id = new_id("sess"), new_id("cust"), new_id("ev")
    close_session(api, session_id, profile_id)
    request = t.IntegrationEventV3Request(
        profile_id=profile_id,
        integration_id=event_id,
        type="review_submitted",
        attributes={"rating": 5},
        connected_session_id=session_id,
    )

    answer = track(api, request, silent="no")

    assert isinstance(answer.data, t.IntegrationEventV3Response)
    assert len(answer.data.effects) == 2
    stored = json.loads(get_event(api, event_id).raw_data)
    assert stored["connectedSessionId"] == session_id


def test_duplicate_event_is_a_conflict(api: t.IntegrationApi) -> None:
    event_id, profile_id = new_id("ev"), new_id("cust")
    track(api, review(event_id, profile_id))

    with pytest.raises(ConflictException) as caught:
        track(api, review(event_id, profile_id), silent="no")

    assert caught.value.status == 409
    conflict = caught.value.data
    assert isinstance(conflict, t.UpdateCustomerProfileV2409Response)
    assert conflict.message == f'An advanced event with integrationId "{event_id}" already exists'
    assert conflict.status_code == 409


def test_dry_event_is_not_stored(api: t.IntegrationApi) -> None:
    event_id = new_id("ev")

    answer = track(
        api,
        review(event_id, new_id("cust"), responseContent=["advancedEvent"]),
        silent="no",
        dry=True,
        forceCompleteEvaluation=True,
    )

    assert isinstance(answer.data, t.IntegrationEventV3Response)
    assert json.loads(answer.raw_data)["advancedEvent"]["id"] == 0
    with pytest.raises(NotFoundException):
        get_event(api, event_id)


def test_closed_session_only(api: t.IntegrationApi) -> None:
    profile_id, closed, still_open = new_id("cust"), new_id("sess"), new_id("sess")
    close_session(api, closed, profile_id)
    api.update_customer_session_v2(
        still_open,
        t.IntegrationRequest(customer_session=t.NewCustomerSessionV2(profile_id=profile_id)),
    )

    accepted = track(
        api,
        review(new_id("ev"), profile_id, connectedSessionId=closed, responseContent=V3_CONTENT),
        silent="no",
    )
    assert json.loads(accepted.raw_data)["advancedEvent"]["connectedSessionId"] == closed

    with pytest.raises(BadRequestException) as caught:
        track(api, review(new_id("ev"), profile_id, connectedSessionId=still_open))
    error = caught.value.data
    assert isinstance(error, t.ErrorResponseWithStatus)
    assert error.status_code == 400
    assert error.errors is not None
    assert error.errors[0].source.pointer == "/connectedSessionId"


def test_event_errors_parse(api: t.IntegrationApi, server: EmulatorServer) -> None:
    with pytest.raises(NotFoundException) as missing:
        get_event(api, new_id("never"))
    assert isinstance(missing.value.data, t.ErrorResponseWithStatus)
    assert missing.value.data.status_code == 404

    with pytest.raises(BadRequestException) as invalid:
        track(api, {"profileId": new_id("cust"), "type": "review_submitted"})
    assert isinstance(invalid.value.data, t.ErrorResponseWithStatus)
    assert invalid.value.data.errors is not None
    assert invalid.value.data.errors[0].source.pointer == "/integrationId"

    with pytest.raises(BadRequestException) as forced:
        track(api, review(new_id("ev"), new_id("cust")), forceCompleteEvaluation=True)
    assert isinstance(forced.value.data, t.ErrorResponseWithStatus)
    assert forced.value.data.errors is not None
    assert forced.value.data.errors[0].source.parameter == "forceCompleteEvaluation"

    stranger = sdk_api(server, key="wrong-key")
    with pytest.raises(UnauthorizedException) as unauthorized:
        track(stranger, review(new_id("ev"), new_id("cust")))
    assert isinstance(unauthorized.value.data, t.ErrorResponseWithStatus)
    with pytest.raises(UnauthorizedException):
        get_event(stranger, "any")


# --- integrationGetAllCampaigns -------------------------------------------------------------


def list_campaigns(api: t.IntegrationApi, **query: Any) -> CampaignPage:
    answer = sdk_call(
        api, "GET", "/v1/integration/campaigns", ALL_CAMPAIGNS, query=list(query.items())
    )
    assert answer.status_code == 200
    return CampaignPage.model_validate(answer.data)


def test_running_campaigns(api: t.IntegrationApi) -> None:
    everything = list_campaigns(api)
    assert [campaign.id for campaign in everything.data] == list(range(1, 15))
    assert everything.has_more is False
    assert everything.data[0].rules == [
        RuleMetadata(title="20% off the session total with a valid coupon")
    ]

    page = list_campaigns(api, pageSize=2, skip=4)
    assert [campaign.id for campaign in page.data] == [5, 6]
    assert page.has_more is True

    chosen = list_campaigns(api, campaignIds=["9", "11"])
    assert [(c.id, c.features) for c in chosen.data] == [
        (9, ["coupons", "referrals"]),
        (11, ["giveaways"]),
    ]
    assert list_campaigns(api, startAfter="2024-05-29T15:04:05+07:00").data == []
    assert list_campaigns(api, storeId=23).data == []


def test_campaign_list_errors_parse(api: t.IntegrationApi, server: EmulatorServer) -> None:
    with pytest.raises(BadRequestException) as caught:
        list_campaigns(api, pageSize=0)
    error = caught.value.data
    assert isinstance(error, t.ErrorResponseWithStatus)
    assert error.errors is not None
    assert error.errors[0].source.parameter == "pageSize"

    with pytest.raises(UnauthorizedException) as unauthorized:
        list_campaigns(sdk_api(server, key="wrong-key"))
    assert isinstance(unauthorized.value.data, t.ErrorResponseWithStatus)


# --- joinLoyaltyProgram ---------------------------------------------------------------------


def join(api: t.IntegrationApi, program: str, profile_id: str) -> t.ApiResponse[Any]:
    return sdk_call(
        api,
        "POST",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/join",
        JOIN,
        path_params={"loyaltyProgramId": program, "integrationId": profile_id},
    )


def test_join_loyalty_program(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")

    joined = join(api, "1", profile_id)

    assert (joined.status_code, joined.data, joined.raw_data) == (200, None, b"")
    balances = api.get_loyalty_balances(1, profile_id)
    assert isinstance(balances, t.LoyaltyBalancesWithTiers)
    assert balances.balance is not None
    assert balances.balance.active_points == 0
    inventory = api.get_customer_inventory(profile_id, loyalty=True)
    assert inventory.loyalty is not None
    assert inventory.loyalty.programs["1"].join_date is not None

    with pytest.raises(BadRequestException) as again:
        join(api, "1", profile_id)
    assert isinstance(again.value.data, t.ErrorResponseWithStatus)
    assert again.value.data.message == (
        f'Customer profile "{profile_id}" has already joined loyalty program 1'
    )
    assert again.value.data.status_code == 400


def test_join_errors_parse(api: t.IntegrationApi, server: EmulatorServer) -> None:
    with pytest.raises(NotFoundException) as unknown:
        join(api, "99", new_id("cust"))
    assert isinstance(unknown.value.data, t.ErrorResponseWithStatus)
    assert unknown.value.data.status_code == 404

    with pytest.raises(BadRequestException) as card_based:
        join(api, "2", new_id("cust"))
    assert isinstance(card_based.value.data, t.ErrorResponseWithStatus)
    assert card_based.value.data.message == "Loyalty program 2 is not a profile-based program"

    with pytest.raises(UnauthorizedException) as unauthorized:
        join(sdk_api(server, key="wrong-key"), "1", new_id("cust"))
    assert isinstance(unauthorized.value.data, t.ErrorResponseWithStatus)

"""joinLoyaltyProgram: a customer profile (created if unknown) joins a profile-based program."""

from __future__ import annotations

import aiohttp
import pytest

from talon_one_emulator.api.loyalty import LoyaltyService
from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.errors import BadRequestError, InvalidDataError, NotFoundError
from tests.emulator.support import HTTP_KEY, call

AUTH = {"Authorization": f"ApiKey-v1 {HTTP_KEY}"}


def join_path(program: str | int, profile: str) -> str:
    return f"/v1/loyalty_programs/{program}/profile/{profile}/join"


def test_an_unknown_profile_is_created_and_joins(api: IntegrationService) -> None:
    LoyaltyService(api.state).join_program("1", "newbie")

    profile = api.state.profiles["newbie"]
    assert profile.attributes == {}
    account = api.state.loyalty.profile_account(1, "newbie")
    assert account is not None
    assert account.ledgers == {}
    # The loyalty response content now has the join date, and no points.
    response = api.update_customer_profile(
        "newbie", {"responseContent": ["loyalty"]}, run_rule_engine=True
    )
    program = response["loyalty"]["programs"]["1"]
    assert program["joinDate"] == profile.created  # joined when it was created
    assert program["ledger"]["currentBalance"] == 0


def test_an_existing_profile_joins_once(api: IntegrationService) -> None:
    api.update_customer_profile("ann", {"attributes": {"Name": "Ann"}})
    loyalty = LoyaltyService(api.state)

    loyalty.join_program("1", "ann")

    assert api.state.profiles["ann"].attributes == {"Name": "Ann"}
    with pytest.raises(BadRequestError) as caught:
        loyalty.join_program("1", "ann")
    assert caught.value.message == 'Customer profile "ann" has already joined loyalty program 1'


def test_earning_points_joins_the_program(api: IntegrationService) -> None:
    api.track_event({"type": "review_submitted", "profileId": "reviewer"})

    with pytest.raises(BadRequestError):
        LoyaltyService(api.state).join_program("1", "reviewer")


def test_joined_profile_then_earns_points(api: IntegrationService) -> None:
    LoyaltyService(api.state).join_program("1", "member")
    api.track_event({"type": "review_submitted", "profileId": "member"})

    assert api.state.profiles["member"].points == {1: 50}


@pytest.mark.parametrize(
    ("program", "error"),
    [("9", NotFoundError), ("2", BadRequestError), ("one", InvalidDataError)],
)
def test_program_errors(api: IntegrationService, program: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        LoyaltyService(api.state).join_program(program, "cust-1")

    assert "cust-1" not in api.state.profiles


async def test_http_answers(client: aiohttp.ClientSession) -> None:
    async with client.post(join_path(1, "cust-1"), headers=AUTH) as answer:
        assert answer.status == 200
        assert await answer.read() == b""
        assert answer.headers["Content-Length"] == "0"

    status, body = await call(client, "GET", "/v1/loyalty_programs/1/profile/cust-1/balances")
    assert status == 200
    assert body["balance"]["activePoints"] == 0

    status, again = await call(client, "POST", join_path(1, "cust-1"))
    assert (status, again) == (
        400,
        {
            "message": 'Customer profile "cust-1" has already joined loyalty program 1',
            "StatusCode": 400,
        },
    )
    status, unknown = await call(client, "POST", join_path(9, "cust-1"))
    assert (status, unknown) == (404, {"message": "Loyalty program 9 not found", "StatusCode": 404})
    status, card_based = await call(client, "POST", join_path(2, "cust-1"))
    assert status == 400
    assert card_based["StatusCode"] == 400
    status, not_a_number = await call(client, "POST", join_path("x", "cust-1"))
    assert status == 400
    assert not_a_number["errors"][0]["source"] == {"parameter": "loyaltyProgramId"}


async def test_a_body_is_ignored(client: aiohttp.ClientSession) -> None:
    # The specification declares no request body; a client that sends one anyway is not refused.
    async with client.post(join_path(1, "p"), headers=AUTH, data=b"not json") as answer:
        assert answer.status == 200

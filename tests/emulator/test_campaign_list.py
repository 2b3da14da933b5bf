"""integrationGetAllCampaigns: the running campaigns of the campaign file, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from talon_one_emulator.app import create_app
from talon_one_emulator.campaigns.file import parse_campaigns
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.server import serve
from tests.emulator.support import HTTP_KEY, call, rule

PATH = "/v1/integration/campaigns"


async def test_every_running_campaign_in_file_order(client: aiohttp.ClientSession) -> None:
    status, body = await call(client, "GET", PATH)

    assert status == 200
    assert body["hasMore"] is False
    assert [campaign["id"] for campaign in body["data"]] == list(range(1, 15))
    assert body["data"][0] == {
        "id": 1,
        "applicationId": 1,
        "name": "Tutorial: 20% off with a coupon",
        "attributes": {},
        "state": "enabled",
        "tags": ["tutorial"],
        "features": ["coupons"],
        "rules": [{"title": "20% off the session total with a valid coupon"}],
    }
    referral = body["data"][8]
    assert referral["features"] == ["coupons", "referrals"]


async def test_paging(client: aiohttp.ClientSession) -> None:
    status, first = await call(client, "GET", PATH, params={"pageSize": "5"})
    assert status == 200
    assert [campaign["id"] for campaign in first["data"]] == [1, 2, 3, 4, 5]
    assert first["hasMore"] is True

    status, last = await call(client, "GET", PATH, params={"pageSize": "5", "skip": "10"})
    assert [campaign["id"] for campaign in last["data"]] == [11, 12, 13, 14]
    assert last["hasMore"] is False


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"campaignIds": "3,11"}, [3, 11]),
        ([("campaignIds", "3"), ("campaignIds", "5")], [3, 5]),
        ({"campaignIds": "99"}, []),
        # The campaign file has no schedules, linked stores or audiences: nothing matches.
        ({"startAfter": "2024-05-29T15:04:05+07:00"}, []),
        ({"startBefore": "2099-01-01"}, []),
        ({"endAfter": "2024-05-29T00:00:00Z"}, []),
        ({"endBefore": "2099-01-01T00:00:00Z"}, []),
        ({"storeId": "23"}, []),
        ({"audienceId": "7"}, []),
    ],
)
async def test_filters(client: aiohttp.ClientSession, params: Any, expected: list[int]) -> None:
    status, body = await call(client, "GET", PATH, params=params)

    assert status == 200
    assert [campaign["id"] for campaign in body["data"]] == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "1001"}, "pageSize"),
        ({"skip": "-1"}, "skip"),
        ({"startAfter": "yesterday"}, "startAfter"),
        ({"endBefore": "2024-13-01"}, "endBefore"),
        ({"storeId": "berlin"}, "storeId"),
        ({"audienceId": "1.5"}, "audienceId"),
    ],
)
async def test_invalid_query(client: aiohttp.ClientSession, params: Any, parameter: str) -> None:
    status, body = await call(client, "GET", PATH, params=params)

    assert status == 400
    assert body["StatusCode"] == 400
    assert [error["source"] for error in body["errors"]] == [{"parameter": parameter}]


@pytest.fixture
async def disabled_client() -> AsyncIterator[aiohttp.ClientSession]:
    campaigns = parse_campaigns(
        {
            "campaigns": [
                {
                    "id": 7,
                    "name": "Running",
                    "description": "Shown",
                    "rulesetId": 1,
                    "rules": [
                        rule("first", [{"customEffect": _custom()}]),
                        rule("second", [{"customEffect": _custom()}]),
                    ],
                },
                {
                    "id": 3,
                    "name": "Switched off",
                    "rulesetId": 2,
                    "enabled": False,
                    "rules": [rule("r", [{"customEffect": _custom()}])],
                },
            ]
        }
    )
    app = create_app(EmulatorConfig(api_keys=[HTTP_KEY], campaigns=campaigns))
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as running:
        yield running


def _custom() -> dict[str, Any]:
    return {"effectId": 1, "name": "x", "payload": {}}


async def test_disabled_campaigns_do_not_run(disabled_client: aiohttp.ClientSession) -> None:
    status, body = await call(disabled_client, "GET", PATH)

    assert status == 200
    assert body["data"] == [
        {
            "id": 7,
            "applicationId": 1,
            "name": "Running",
            "description": "Shown",
            "attributes": {},
            "state": "enabled",
            "tags": [],
            "features": [],
            "rules": [{"title": "first"}, {"title": "second"}],
        }
    ]
    _, by_id = await call(disabled_client, "GET", PATH, params={"campaignIds": "3"})
    assert by_id == {"hasMore": False, "data": []}

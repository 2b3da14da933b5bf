"""The emulator driven by Talon.One's official Python SDK (talon-one-sdk), plus raw-HTTP checks.

Every SDK call deserialises the response into the SDK's pydantic models, which raise on any
missing required field, wrong type or bad enum; so a passing call proves the shape. Effect
``props`` are additionally parsed with the matching ``*EffectProps`` model.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import talon_one as t
from talon_one.exceptions import BadRequestException, NotFoundException, UnauthorizedException

from talon_one_emulator import EmulatorConfig, EmulatorError, EmulatorServer
from tests.emulator.conformance.conftest import effects_of, free_port, new_id, props, sdk_api
from tests.emulator.support import SESSION_CONTENT, UNDECLARED_SESSION_ATTRIBUTE

KEY = "conformance-key"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[KEY, "second-key"])) as running:
        yield running


def tutorial_request(
    profile_id: str,
    state: str = "open",
    coupons: list[str] | None = None,
    content: list[str] | None = None,
) -> t.IntegrationRequest:
    return t.IntegrationRequest(
        customer_session=t.NewCustomerSessionV2(
            profile_id=profile_id,
            coupon_codes=["xmas20"] if coupons is None else coupons,
            state=state,
            cart_items=[
                t.CartItem(
                    name="Red Spring Blouse", sku="rsb002", quantity=1, price=49, category="Blouses"
                ),
                t.CartItem(
                    name="Denim Trousers", sku="dtr003", quantity=1, price=74, category="Trousers"
                ),
            ],
            attributes={"channel": "web"},
        ),
        response_content=content or [part for part in SESSION_CONTENT if part != "referral"],
    )


def test_tutorial_open_close_cancel(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")

    opened = api.update_customer_session_v2(session_id, tutorial_request(profile_id))

    assert isinstance(opened, t.IntegrationStateV2)
    [discount] = effects_of(opened.effects, "setDiscount")
    assert discount.value == 24.6
    assert [accepted.value for accepted in effects_of(opened.effects, "acceptCoupon")] == ["xmas20"]
    assert opened.created_coupons == []
    assert opened.created_referrals == []
    assert opened.customer_session is not None
    assert opened.customer_session.integration_id == session_id
    assert opened.customer_session.state == "open"
    assert opened.customer_session.total == 123
    assert opened.customer_session.first_session is True
    assert opened.customer_profile is not None
    assert opened.customer_profile.integration_id == profile_id
    assert opened.event is not None
    assert opened.event.type == "talon_session_created"
    assert opened.coupons is not None
    assert opened.coupons[0].value == "xmas20"
    assert opened.triggered_campaigns

    closed = api.update_customer_session_v2(session_id, tutorial_request(profile_id, "closed"))

    assert closed.customer_profile is not None
    assert closed.customer_profile.closed_sessions == 1
    assert closed.customer_profile.total_sales == 123
    assert closed.customer_session is not None
    assert closed.customer_session.state == "closed"
    assert closed.customer_session.update_count == 2

    cancelled = api.update_customer_session_v2(
        session_id, tutorial_request(profile_id, "cancelled")
    )

    rollback = effects_of(cancelled.effects, "rollbackDiscount")
    assert [(r.name, r.value) for r in rollback] == [("20% off with coupon", 24.6)]
    assert [r.value for r in effects_of(cancelled.effects, "rollbackCoupon")] == ["xmas20"]
    assert cancelled.customer_profile is not None
    assert cancelled.customer_profile.closed_sessions == 0
    assert cancelled.customer_session is not None
    assert cancelled.customer_session.state == "cancelled"

    stored = api.get_customer_session(session_id)
    assert isinstance(stored, t.IntegrationCustomerSessionResponse)
    assert stored.customer_session is not None
    assert stored.customer_session.state == "cancelled"
    assert stored.effects == []


def test_unknown_coupon_is_rejected(api: t.IntegrationApi) -> None:
    response = api.update_customer_session_v2(
        new_id("sess"), tutorial_request(new_id("cust"), coupons=["NOT-A-COUPON"])
    )

    [rejected] = effects_of(response.effects, "rejectCoupon")
    assert rejected.value == "NOT-A-COUPON"
    assert rejected.rejection_reason == "CouponNotFound"
    assert effects_of(response.effects, "setDiscount") == []


def test_get_session(api: t.IntegrationApi) -> None:
    session_id = new_id("sess")
    api.update_customer_session_v2(session_id, tutorial_request(new_id("cust")))

    stored = api.get_customer_session(session_id)

    assert stored.customer_session is not None
    assert stored.customer_session.cart_items is not None
    assert [item.position for item in stored.customer_session.cart_items] == [0, 1]
    assert effects_of(stored.effects, "setDiscount")[0].value == 24.6


def test_get_unknown_session(api: t.IntegrationApi) -> None:
    with pytest.raises(NotFoundException):
        api.get_customer_session(new_id("missing"))


def test_return_cart_items(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")
    api.update_customer_session_v2(session_id, tutorial_request(profile_id, "closed"))
    request = t.ReturnIntegrationRequest(
        var_return=t.NewReturn(returned_cart_items=[t.ReturnedCartItem(position=1, quantity=1)]),
        response_content=["customerSession", "customerProfile", "previousReturns"],
    )

    returned = api.return_cart_items(session_id, request)

    assert isinstance(returned, t.IntegrationStateV2)
    assert [r.value for r in effects_of(returned.effects, "rollbackDiscount")] == [14.8]
    assert effects_of(returned.effects, "rollbackAddedLoyaltyPoints")[0].value == 74
    assert returned.var_return is not None
    assert returned.var_return.session_integration_id == session_id
    assert returned.var_return.returned_cart_items[0].sku == "dtr003"
    assert returned.customer_session is not None
    assert returned.customer_session.state == "partially_returned"
    items = returned.customer_session.cart_items
    assert items is not None
    assert [(i.returned_quantity, i.remaining_quantity) for i in items] == [(0, 1), (1, 0)]
    assert returned.customer_profile is not None
    assert returned.customer_profile.total_sales == 49
    assert returned.previous_returns == []

    second = api.return_cart_items(
        session_id,
        t.ReturnIntegrationRequest(
            var_return=t.NewReturn(returned_cart_items=[t.ReturnedCartItem(sku="rsb002")]),
            response_content=["previousReturns"],
        ),
    )
    assert [r.value for r in effects_of(second.effects, "rollbackDiscount")] == [9.8]
    assert second.previous_returns is not None
    assert len(second.previous_returns) == 1


def test_reopen(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")
    api.update_customer_session_v2(session_id, tutorial_request(profile_id, "closed"))

    reopened = api.reopen_customer_session(session_id)

    assert isinstance(reopened, t.ReopenSessionResponse)
    types = sorted(effect.effect_type for effect in reopened.effects)
    assert types == ["rollbackAddedLoyaltyPoints", "rollbackCoupon", "rollbackDiscount"]
    for effect in reopened.effects:
        props(effect)
    stored = api.get_customer_session(session_id)
    assert stored.customer_session is not None
    assert stored.customer_session.state == "open"

    again = api.update_customer_session_v2(session_id, tutorial_request(profile_id, "closed"))
    assert again.customer_profile is not None
    assert again.customer_profile.closed_sessions == 1


def test_forbidden_transition(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")
    api.update_customer_session_v2(session_id, tutorial_request(profile_id, "closed"))

    with pytest.raises(BadRequestException) as caught:
        # The SDK's default state is "open": a late update of a closed session.
        api.update_customer_session_v2(session_id, tutorial_request(profile_id))

    assert caught.value.status == 400
    assert isinstance(caught.value.data, t.ErrorResponse)
    assert "closed" in caught.value.data.message
    with pytest.raises(BadRequestException):
        api.reopen_customer_session(new_id("missing"))


def test_dry_run_with_now(api: t.IntegrationApi) -> None:
    session_id = new_id("sess")
    future = datetime.now(UTC) + timedelta(days=30)

    response = api.update_customer_session_v2(
        session_id, tutorial_request(new_id("cust")), dry=True, now=future
    )

    assert effects_of(response.effects, "setDiscount")[0].value == 24.6
    with pytest.raises(NotFoundException):
        api.get_customer_session(session_id)


def test_track_event(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    request = t.IntegrationEventV2Request(
        type="review_submitted",
        profile_id=profile_id,
        attributes={"rating": 5},
        response_content=["customerProfile", "triggeredCampaigns", "loyalty", "event"],
    )

    response = api.track_event_v2(request, silent="no")

    assert isinstance(response, t.TrackEventV2Response)
    notes = effects_of(response.effects, "showNotification")
    assert [note.title for note in notes] == ["Thank you for your review"]
    assert effects_of(response.effects, "addLoyaltyPoints")[0].value == 50
    assert response.event is not None
    assert response.event.type == "review_submitted"
    assert response.event.attributes == {"rating": 5}
    assert response.customer_profile is not None
    assert response.customer_profile.integration_id == profile_id
    assert response.loyalty is not None
    assert response.loyalty.programs["1"].ledger.current_balance == 50
    assert response.triggered_campaigns is not None
    assert [campaign.id for campaign in response.triggered_campaigns] == [6]

    assert api.track_event_v2(request) is None  # silent defaults to "yes": 204


def test_update_customer_profile(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    silent_update = api.update_customer_profile_v2(
        profile_id,
        t.CustomerProfileIntegrationRequestV2(attributes={"Name": "Ann", "tier": "gold"}),
    )
    assert isinstance(silent_update, t.CustomerProfileIntegrationResponseV2)
    assert silent_update.effects == []

    response = api.update_customer_profile_v2(
        profile_id,
        t.CustomerProfileIntegrationRequestV2(
            attributes={"newsletter": True},
            response_content=[
                "customerProfile",
                "triggeredCampaigns",
                "event",
                "loyalty",
                "awardedGiveaways",
                "ruleFailureReasons",
            ],
        ),
        run_rule_engine=True,
    )

    assert [custom.name for custom in effects_of(response.effects, "customEffect")] == [
        "free_shipping"
    ]
    assert effects_of(response.effects, "updateAttribute")[0].path == (
        "Profile.Attributes.memberOfferSent"
    )
    assert response.customer_profile is not None
    assert response.customer_profile.attributes == {
        "Name": "Ann",
        "tier": "gold",
        "newsletter": True,
        "memberOfferSent": True,
    }
    assert response.event is not None
    assert response.event.type == "talon_profile_updated"


def test_wrong_key_is_unauthorized(server: EmulatorServer) -> None:
    with pytest.raises(UnauthorizedException) as caught:
        sdk_api(server, "wrong-key").get_customer_session("anything")

    assert caught.value.status == 401
    body = json.loads(caught.value.body or "")
    assert body["StatusCode"] == 401
    assert body["message"]
    assert (
        sdk_api(server, "second-key").track_event_v2(
            t.IntegrationEventV2Request(type="review_submitted", profile_id=new_id("cust"))
        )
        is None
    )


def test_undeclared_attribute_is_bad_request(api: t.IntegrationApi) -> None:
    request = tutorial_request(new_id("cust"))
    request.customer_session.attributes = {"MyAttribute": "x"}

    with pytest.raises(BadRequestException) as caught:
        api.update_customer_session_v2(new_id("sess"), request)

    assert json.loads(caught.value.body or "") == UNDECLARED_SESSION_ATTRIBUTE
    assert isinstance(caught.value.data, t.ErrorResponse)


def test_request_log_records_sdk_calls(api: t.IntegrationApi, server: EmulatorServer) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")

    api.update_customer_session_v2(
        session_id, tutorial_request(profile_id), _headers={"Idempotency-Key": "idem-1"}
    )
    api.get_customer_session(session_id)

    entries = [e for e in server.state.request_log.entries() if e["sessionId"] == session_id]
    assert [e["operation"] for e in entries] == ["updateCustomerSessionV2", "getCustomerSession"]
    assert entries[0]["method"] == "PUT"
    assert entries[0]["path"] == f"/v2/customer_sessions/{session_id}"
    assert entries[0]["profileId"] == profile_id
    assert entries[1]["profileId"] == profile_id
    assert entries[0]["idempotencyKey"] == "idem-1"
    assert entries[0]["body"]["customerSession"]["couponCodes"] == ["xmas20"]
    assert entries[0]["status"] == 200
    assert entries[1]["body"] is None
    assert entries[0]["started"] <= entries[0]["ended"]


# --- raw HTTP --------------------------------------------------------------------------------

AUTH = {"Authorization": f"ApiKey-v1 {KEY}"}


async def test_raw_wire_details(server: EmulatorServer) -> None:
    base = server.base_url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/v2/events",
            headers=AUTH,
            json={"type": "review_submitted", "profileId": "raw-1"},
        ) as resp:
            assert resp.status == 204
            assert await resp.read() == b""
        async with http.get(f"{base}/v2/nowhere", headers=AUTH) as resp:
            assert resp.status == 404
            assert (await resp.json())["StatusCode"] == 404
        async with http.get(f"{base}/v2/customer_sessions/x") as resp:
            assert resp.status == 401
            assert (await resp.json())["StatusCode"] == 401
        async with http.put(
            f"{base}/v2/customer_sessions/x", json={}, headers={"Authorization": f"Bearer {KEY}"}
        ) as resp:
            assert resp.status == 401
        async with http.put(
            f"{base}/v2/customer_sessions/a%2Fb",
            headers=AUTH,
            json={
                "customerSession": {"cartItems": [{"sku": "s", "quantity": 2, "price": 9.5}]},
                "responseContent": ["customerSession"],
            },
        ) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["customerSession"]["integrationId"] == "a/b"
            assert body["customerSession"]["total"] == 19
            assert isinstance(body["customerSession"]["id"], int)
            assert body["customerSession"]["created"].endswith("Z")


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        (
            {"customerSession": {"cartItems": [{"sku": "s", "quantity": 0}]}},
            "/customerSession/cartItems/0/quantity",
        ),
        (
            {"customerSession": {"cartItems": [{"sku": "", "quantity": 1}]}},
            "/customerSession/cartItems/0/sku",
        ),
        (
            {"customerSession": {"identifiers": ["1", "2", "3", "4", "5", "6"]}},
            "/customerSession/identifiers",
        ),
        ({"customerSession": {"loyaltyCards": ["1", "2"]}}, "/customerSession/loyaltyCards"),
        ({"customerSession": {"couponCodes": ["c" * 101]}}, "/customerSession/couponCodes/0"),
        ({"customerSession": {"state": "paid"}}, "/customerSession/state"),
        ({"customerSession": {}, "responseContent": ["all"]}, "/responseContent/0"),
    ],
)
async def test_raw_invalid_bodies(
    server: EmulatorServer, payload: dict[str, Any], pointer: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{server.base_url}/v2/customer_sessions/{new_id('bad')}", headers=AUTH, json=payload
        ) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert body["message"] == "The submitted data was invalid"
    assert [error["source"]["pointer"] for error in body["errors"]] == [pointer]
    assert t.ErrorResponse.from_dict(body) is not None


async def test_raw_invalid_json_and_query(server: EmulatorServer) -> None:
    url = f"{server.base_url}/v2/customer_sessions/{new_id('bad')}"
    async with aiohttp.ClientSession() as http:
        async with http.put(url, headers=AUTH, data=b"{not json") as resp:
            assert resp.status == 400
        async with http.put(
            f"{url}?dry=perhaps", headers=AUTH, json={"customerSession": {}}
        ) as resp:
            assert resp.status == 400
            body = await resp.json()
            assert body["errors"][0]["source"] == {"parameter": "dry"}


async def test_admin_endpoints(server: EmulatorServer) -> None:
    base = server.base_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/__emulator/health") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"
        async with http.put(
            f"{base}/v2/customer_profiles/admin-check",
            headers=AUTH,
            json={"attributes": {"Name": "Bo"}},
        ) as resp:
            assert resp.status == 200
        async with http.get(f"{base}/__emulator/requests") as resp:
            entries = await resp.json()
        mine = [entry for entry in entries if entry["profileId"] == "admin-check"]
        assert [entry["operation"] for entry in mine] == ["updateCustomerProfileV2"]
        since = mine[-1]["seq"]
        async with http.get(f"{base}/__emulator/requests", params={"since": since}) as resp:
            assert all(entry["seq"] > since for entry in await resp.json())
        async with http.delete(f"{base}/__emulator/requests") as resp:
            assert resp.status == 204
        assert server.state.request_log.entries(since) == []


async def test_latency_and_per_id_concurrency_limit() -> None:
    config = EmulatorConfig(api_keys=[KEY], latency_ms=150)
    with EmulatorServer(config) as slow:
        url = f"{slow.base_url}/v2/customer_sessions/busy"
        body = {"customerSession": {"cartItems": [{"sku": "s", "quantity": 1, "price": 1}]}}

        async with aiohttp.ClientSession() as http:

            async def put() -> tuple[int, Any]:
                async with http.put(url, headers=AUTH, json=body) as resp:
                    return resp.status, await resp.json()

            started = time.monotonic()
            results = await asyncio.gather(*(put() for _ in range(5)))
            elapsed = time.monotonic() - started

    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 200, 409, 409]
    conflict = next(body for status, body in results if status == 409)
    assert conflict == {
        "message": "Too many requests are updating this session at the same time",
        "StatusCode": 409,
    }
    assert elapsed >= 0.45  # the three admitted requests ran one after another


# --- running the emulator --------------------------------------------------------------------


def test_server_lifecycle() -> None:
    server = EmulatorServer(EmulatorConfig(api_keys=[KEY]))
    with pytest.raises(EmulatorError):
        _ = server.base_url
    with server:
        with pytest.raises(EmulatorError):
            server.start()
        assert server.base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.base_url}/__emulator/health") as resp:
            assert json.load(resp)["status"] == "ok"
    server.stop()  # stopping twice is harmless
    with pytest.raises(EmulatorError):
        _ = server.port


def test_run_forever_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    campaigns = tmp_path / "campaigns.yaml"
    campaigns.write_text("campaigns: []\n", encoding="utf-8")
    script = (
        "import logging, sys; from pathlib import Path; "
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
        "from talon_one_emulator import run_forever; "
        f"run_forever('127.0.0.1', {port}, ['cli-key'], Path({str(campaigns)!r}), latency_ms=1)"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        health = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/__emulator/health") as resp:
                    health = json.load(resp)
                break
            except OSError:
                time.sleep(0.1)
        assert health is not None
        assert health["campaigns"] == 0
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/customer_sessions/cli-1",
            data=b'{"customerSession": {}}',
            method="PUT",
            headers={"Authorization": "ApiKey-v1 cli-key", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as resp:
            assert json.load(resp) == {"effects": [], "createdCoupons": [], "createdReferrals": []}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    startup = [line for line in stderr.splitlines() if "emulator listening" in line]
    assert len(startup) == 1
    assert "cli-key" not in stderr

"""Request semantics, Idempotency-Key replay and injected faults, seen through the official SDK.

Each answer is deserialised by the SDK's models (which raise on a wrong shape); error bodies are
parsed with ``ErrorResponseWithStatus``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import talon_one as t
from talon_one.exceptions import ApiException, BadRequestException, ServiceException

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_one_emulator.http.faults import FaultSettings
from tests.emulator.conformance.conftest import free_port, new_id, sdk_api
from tests.emulator.support import PROFILE_CONTENT, RETURN_CONTENT, SESSION_CONTENT

KEY = "semantics-key"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_keys=[KEY])) as running:
        yield running


@pytest.fixture
def api(server: EmulatorServer) -> Iterator[t.IntegrationApi]:
    yield sdk_api(server)
    server.faults.apply(FaultSettings())


def session_request(profile_id: str, state: str = "open") -> t.IntegrationRequest:
    return t.IntegrationRequest(
        customer_session=t.NewCustomerSessionV2(
            profile_id=profile_id,
            state=state,
            coupon_codes=["xmas20"],
            cart_items=[
                t.CartItem(name="Blouse", sku="rsb002", quantity=1, price=49, category="Blouses"),
                t.CartItem(name="Denim", sku="dtr003", quantity=1, price=74, category="Trousers"),
            ],
        ),
        response_content=SESSION_CONTENT,
    )


def test_every_response_content_value_deserialises(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")

    state = api.update_customer_session_v2(session_id, session_request(profile_id, "closed"))

    assert state.customer_session is not None
    assert state.customer_profile is not None
    assert state.coupons is not None
    assert state.loyalty is not None
    assert state.awarded_giveaways == []
    assert state.rule_failure_reasons is not None
    assert state.previous_returns == []
    assert state.triggered_campaigns
    assert all(isinstance(c, t.Campaign) for c in state.triggered_campaigns)
    assert state.event is not None
    assert state.event.effects
    assert all(isinstance(effect, dict) for effect in state.event.effects)

    returned = api.return_cart_items(
        session_id,
        t.ReturnIntegrationRequest(
            var_return=t.NewReturn(returned_cart_items=[t.ReturnedCartItem(position=0)]),
            response_content=RETURN_CONTENT,
        ),
    )
    assert returned.event is not None
    assert returned.previous_returns == []

    profile = api.update_customer_profile_v2(
        profile_id,
        t.CustomerProfileIntegrationRequestV2(
            attributes={"newsletter": True}, response_content=PROFILE_CONTENT
        ),
        run_rule_engine=True,
    )
    event = api.track_event_v2(
        t.IntegrationEventV2Request(
            type="review_submitted", profile_id=profile_id, response_content=PROFILE_CONTENT
        ),
        silent="no",
    )
    for answer in (profile, event):
        assert answer.customer_profile is not None
        assert answer.loyalty is not None
        assert answer.event is not None
        assert answer.triggered_campaigns is not None
        assert answer.awarded_giveaways == []
        assert answer.rule_failure_reasons is not None


def test_dry_with_now_and_evaluable_campaigns(api: t.IntegrationApi) -> None:
    session_id = new_id("sess")
    request = session_request(new_id("cust"))
    request.customer_session.evaluable_campaign_ids = [1]
    future = datetime.now(UTC) + timedelta(days=2)

    dry = api.update_customer_session_v2(session_id, request, dry=True, now=future)

    # Only campaign 1 (the coupon campaign) was evaluated.
    assert {effect.campaign_id for effect in dry.effects} == {1}
    assert dry.customer_session is not None
    assert dry.customer_session.updated.date() == future.date()
    with pytest.raises(BadRequestException):
        api.update_customer_session_v2(session_id, request, dry=False, now=future)
    with pytest.raises(BadRequestException):
        api.update_customer_profile_v2(
            new_id("cust"), t.CustomerProfileIntegrationRequestV2(attributes={}), dry=True
        )


def test_bulk_profile_update(api: t.IntegrationApi) -> None:
    ids = [new_id("bulk") for _ in range(3)]
    request = t.MultipleCustomerProfileIntegrationRequest(
        customer_profiles=[
            t.MultipleCustomerProfileIntegrationRequestItem(
                integration_id=integration_id, attributes={"tier": "gold"}
            )
            for integration_id in ids
        ]
    )

    assert api.update_customer_profiles_v2(request) is None
    answer = api.update_customer_profiles_v2(request, silent="no")

    assert isinstance(answer, t.MultipleCustomerProfileIntegrationResponseV2)
    assert answer.integration_states is not None
    assert [s.customer_profile.integration_id for s in answer.integration_states] == ids


def test_idempotency_key_through_the_sdk(api: t.IntegrationApi, server: EmulatorServer) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")
    headers = {"Idempotency-Key": str(uuid.uuid4())}

    first = api.update_customer_session_v2(
        session_id, session_request(profile_id, "closed"), _headers=headers
    )
    again = api.update_customer_session_v2(
        session_id, session_request(profile_id, "closed"), _headers=headers
    )

    assert again == first
    assert again.customer_profile is not None
    assert again.customer_profile.closed_sessions == 1
    with pytest.raises(BadRequestException) as caught:
        api.update_customer_session_v2(
            new_id("sess"), session_request(profile_id), _headers=headers
        )
    assert isinstance(caught.value.data, t.ErrorResponse)
    [error] = caught.value.data.errors or []
    assert error.source.parameter == "Idempotency-Key"
    log = server.state.request_log.entries()
    mine = [entry for entry in log if entry["idempotencyKey"] == headers["Idempotency-Key"]]
    assert [(entry["status"], entry["replayed"]) for entry in mine] == [
        (200, False),
        (200, True),
        (400, False),
    ]


def test_injected_faults_reach_the_sdk_as_talon_errors(
    api: t.IntegrationApi, server: EmulatorServer
) -> None:
    # urllib3 (under the SDK) retries a 429 carrying Retry-After three times, after waiting.
    server.faults.apply(FaultSettings(error_rates={429: 1.0}, retry_after_s=0))
    with pytest.raises(ApiException) as too_many:
        api.update_customer_session_v2(new_id("sess"), session_request(new_id("cust")))
    server.faults.apply(FaultSettings())
    server.faults.start_outage(seconds=60)
    with pytest.raises(ServiceException) as outage:
        api.get_customer_session(new_id("sess"))
    server.faults.end_outages()

    assert too_many.value.status == 429
    assert too_many.value.headers is not None
    assert too_many.value.headers["Retry-After"] == "0"
    assert outage.value.status == 503
    for caught in (too_many, outage):
        body = t.ErrorResponseWithStatus.from_json(caught.value.body or "")
        assert body is not None
        assert body.status_code == caught.value.status
        assert body.message


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"ApiKey-v1 {KEY}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_cli_fault_options_and_runtime_switch() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "talon_stream.cli",
        "emulator",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--latency",
        "uniform:0:1",
        "--seed",
        "1",
        "--outage",
        "0:",
        "--error-rate",
        "502=0.5",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    status = 0
    try:
        for _ in range(100):
            try:
                status, _ = _request(f"{base}/__emulator/health")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        session = b'{"customerSession": {}}'
        assert _request(f"{base}/v2/customer_sessions/cli-1", "PUT", session)[0] == 503
        status, raw = _request(f"{base}/__emulator/faults")
        faults = json.loads(raw)
        assert faults["latency"] == {"distribution": "uniform", "minMs": 0.0, "maxMs": 1.0}
        assert faults["errorRates"] == {"502": 0.5}
        assert faults["outageActive"] is True
        assert _request(f"{base}/__emulator/outage", "POST", b'{"active": false}')[0] == 200
        statuses = {
            _request(f"{base}/v2/customer_sessions/cli-{i}", "PUT", session)[0] for i in range(40)
        }
        assert statuses == {200, 502}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "1 outage window(s)" in stderr

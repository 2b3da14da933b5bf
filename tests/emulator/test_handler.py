"""Idempotency-Key replay, fault injection and the admin API, through the aiohttp application
on an in-process test server (injected sleep and clocks, so nothing waits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse

from talon_one_emulator.app import create_app
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.http.faults import FaultInjector, FaultSettings, UniformLatency
from talon_one_emulator.http.idempotency import IdempotencyStore
from talon_one_emulator.server import serve
from talon_one_emulator.store.state import EmulatorState

KEY = "handler-key"
AUTH = {"Authorization": f"ApiKey-v1 {KEY}"}
ITEM = {"sku": "rsb002", "quantity": 1, "price": 49, "category": "Blouses"}
TROUSERS = {"sku": "dtr003", "quantity": 1, "price": 74, "category": "Trousers"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """An injected sleep that records the delays and can hold callers until released."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.gate: asyncio.Event | None = None
        self.called = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()


@dataclass
class Emulator:
    client: aiohttp.ClientSession
    state: EmulatorState
    faults: FaultInjector
    idempotency: IdempotencyStore
    sleeps: Sleeps
    wall: Clock
    monotonic: Clock

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, bytes, ClientResponse]:
        headers = dict(AUTH)
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.client.request(
            method, path, json=body, headers=headers, params=params
        ) as response:
            return response.status, await response.read(), response


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state = EmulatorState(EmulatorConfig(api_keys=[KEY]).campaigns)
    wall, monotonic = Clock(1_800_000_000.0), Clock(50.0)
    faults = FaultInjector(clock=wall)
    idempotency = IdempotencyStore(clock=monotonic)
    sleeps = Sleeps()
    app = create_app(
        EmulatorConfig(api_keys=[KEY]),
        state=state,
        sleep=sleeps,
        faults=faults,
        idempotency=idempotency,
    )
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        yield Emulator(client, state, faults, idempotency, sleeps, wall, monotonic)


def session_body(state: str = "open", **extra: Any) -> dict[str, Any]:
    return {
        "customerSession": {
            "profileId": "cust-1",
            "cartItems": [ITEM, TROUSERS],
            "state": state,
            **extra,
        },
        "responseContent": ["customerSession", "customerProfile"],
    }


# --- Idempotency-Key -------------------------------------------------------------------------


async def test_session_update_is_processed_once_per_key(emulator: Emulator) -> None:
    first = await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body(), key="k-1")
    again = await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body(), key="k-1")

    assert first[0] == again[0] == 200
    assert first[1] == again[1]
    assert emulator.state.sessions["s-1"].update_count == 1
    new_key = await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body(), key="k-2")
    assert new_key[0] == 200
    assert emulator.state.sessions["s-1"].update_count == 2
    log = emulator.state.request_log.entries()
    assert [(e["idempotencyKey"], e["replayed"]) for e in log] == [
        ("k-1", False),
        ("k-1", True),
        ("k-2", False),
    ]


async def test_replayed_close_does_not_count_the_sale_twice(emulator: Emulator) -> None:
    path = "/v2/customer_sessions/s-1"
    body = session_body("closed", couponCodes=["ONCE-20"])

    first = await emulator.call("PUT", path, body, key="close-1")
    again = await emulator.call("PUT", path, body, key="close-1")

    assert first[:2] == again[:2]
    profile = emulator.state.profiles["cust-1"]
    assert profile.closed_sessions == 1
    assert profile.total_sales == 123


async def test_every_documented_operation_replays(emulator: Emulator) -> None:
    sessions = "/v2/customer_sessions"
    await emulator.call("PUT", f"{sessions}/s-1", session_body("closed"))
    calls: list[tuple[str, str, Any, dict[str, str] | None]] = [
        (
            "POST",
            f"{sessions}/s-1/returns",
            {"return": {"returnedCartItems": [{"position": 1}]}},
            None,
        ),
        ("PUT", f"{sessions}/s-2", session_body("closed"), None),
        ("PUT", f"{sessions}/s-2/reopen", None, None),
        ("PUT", "/v2/customer_profiles/cust-2", {"attributes": {"tier": "gold"}}, None),
        (
            "PUT",
            "/v2/customer_profiles",
            {"customerProfiles": [{"integrationId": "cust-3", "attributes": {"Name": "Bo"}}]},
            {"silent": "no"},
        ),
        (
            "POST",
            "/v2/events",
            {"type": "review_submitted", "profileId": "cust-4", "attributes": {"rating": 5}},
            {"silent": "no"},
        ),
    ]
    for index, (method, path, body, params) in enumerate(calls):
        key = f"op-{index}"
        first = await emulator.call(method, path, body, key=key, params=params)
        before = _snapshot(emulator.state)
        again = await emulator.call(method, path, body, key=key, params=params)

        assert first[0] == again[0], path
        assert first[1] == again[1], path
        assert _snapshot(emulator.state) == before, path

    state = emulator.state
    assert state.sessions["s-1"].state == "partially_returned"
    assert len(state.sessions["s-1"].returns) == 1
    assert state.sessions["s-2"].state == "open"  # reopened once; the replay did not fail
    points = state.profiles["cust-4"].points
    assert points == {1: 50.0}  # the review event's 50 points, credited once
    replayed = [e["replayed"] for e in state.request_log.entries() if e["idempotencyKey"]]
    assert replayed.count(True) == len(calls)


def _snapshot(state: EmulatorState) -> Any:
    return (
        {key: (s.state, s.update_count, len(s.returns)) for key, s in state.sessions.items()},
        {
            key: (p.closed_sessions, p.total_sales, dict(p.points), dict(p.attributes))
            for key, p in state.profiles.items()
        },
    )


async def test_silent_answers_replay_as_204(emulator: Emulator) -> None:
    body = {"type": "review_submitted", "profileId": "cust-1", "attributes": {"rating": 4}}

    first = await emulator.call("POST", "/v2/events", body, key="e")
    again = await emulator.call("POST", "/v2/events", body, key="e")

    assert (first[0], first[1]) == (again[0], again[1]) == (204, b"")
    assert emulator.state.profiles["cust-1"].points == {1: 50.0}


async def test_errors_from_the_operation_replay_too(emulator: Emulator) -> None:
    path = "/v2/customer_sessions/s-1"
    await emulator.call("PUT", path, session_body("closed"))

    first = await emulator.call("PUT", path, session_body("open"), key="late")
    await emulator.call("PUT", path, session_body("cancelled"))
    again = await emulator.call("PUT", path, session_body("open"), key="late")

    assert first[0] == again[0] == 400
    assert first[1] == again[1]


async def test_a_key_reused_for_a_different_request_is_refused(emulator: Emulator) -> None:
    await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body(), key="same")

    status, raw, _ = await emulator.call(
        "PUT", "/v2/customer_sessions/s-1", session_body(couponCodes=["xmas20"]), key="same"
    )
    other_path = await emulator.call("PUT", "/v2/customer_sessions/s-9", session_body(), key="same")
    with_query = await emulator.call(
        "PUT", "/v2/customer_sessions/s-1", session_body(), key="same", params={"dry": "true"}
    )

    assert status == other_path[0] == with_query[0] == 400
    assert b'"parameter":"Idempotency-Key"' in raw
    assert emulator.state.sessions["s-1"].coupon_codes == []
    assert "s-9" not in emulator.state.sessions


async def test_invalid_keys_and_operations_without_replay(emulator: Emulator) -> None:
    status, raw, _ = await emulator.call(
        "PUT", "/v2/customer_sessions/s-1", session_body(), key="x" * 256
    )
    assert status == 400
    assert b"maxLength" in raw
    assert "s-1" not in emulator.state.sessions
    # getCustomerSession has no Idempotency-Key support: the header is only logged.
    await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body())
    await emulator.call("GET", "/v2/customer_sessions/s-1", key="get")
    await emulator.call("GET", "/v2/customer_sessions/s-1", key="get")
    assert len(emulator.idempotency) == 0


async def test_answers_expire_after_24_hours(emulator: Emulator) -> None:
    path = "/v2/customer_sessions/s-1"
    await emulator.call("PUT", path, session_body(), key="day")

    emulator.monotonic.now += 24 * 3600
    await emulator.call("PUT", path, session_body(), key="day")

    assert emulator.state.sessions["s-1"].update_count == 2


async def test_concurrent_requests_with_one_key_are_processed_once(emulator: Emulator) -> None:
    emulator.faults.apply(FaultSettings.model_validate({"latency": {"ms": 5}}))
    emulator.sleeps.gate = asyncio.Event()
    path = "/v2/customer_sessions/s-1"

    calls = [
        asyncio.create_task(emulator.call("PUT", path, session_body(), key="race"))
        for _ in range(3)
    ]
    await asyncio.wait_for(emulator.sleeps.called.wait(), 5)
    await asyncio.sleep(0.05)  # the other two arrive and wait for the first
    assert len(emulator.sleeps.delays) == 1
    emulator.sleeps.gate.set()
    results = await asyncio.gather(*calls)

    assert {(status, raw) for status, raw, _ in results} == {(200, results[0][1])}
    assert emulator.state.sessions["s-1"].update_count == 1
    replayed = sorted(e["replayed"] for e in emulator.state.request_log.entries())
    assert replayed == [False, True, True]


# --- faults ----------------------------------------------------------------------------------


async def test_outage_through_the_admin_api(emulator: Emulator) -> None:
    client = emulator.client
    async with client.post("/__emulator/outage", json={"seconds": 30}) as response:
        assert response.status == 200
        assert (await response.json())["active"] is True

    status, raw, _ = await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body())
    async with client.get("/__emulator/health") as response:
        health = await response.json()
    emulator.wall.now += 30
    after = await emulator.call("PUT", "/v2/customer_sessions/s-2", session_body())

    assert status == 503
    assert raw == b'{"message":"Service unavailable (emulated outage)","StatusCode":503}'
    assert health["outageActive"] is True
    assert "s-1" not in emulator.state.sessions
    assert after[0] == 200
    faulted = [e["fault"] for e in emulator.state.request_log.entries()]
    assert faulted == ["outage", None]


async def test_outage_switch_and_scheduled_window(emulator: Emulator) -> None:
    client = emulator.client
    async with client.post("/__emulator/outage", json={}):
        pass
    emulator.wall.now += 3600
    assert (await emulator.call("GET", "/v2/customer_sessions/x"))[0] == 503
    async with client.post("/__emulator/outage", json={"active": False}) as response:
        assert (await response.json()) == {"active": False, "windows": []}
    assert (await emulator.call("GET", "/v2/customer_sessions/x"))[0] == 404

    body = {"startAfterSeconds": 10, "seconds": 5}
    async with client.post("/__emulator/outage", json=body) as response:
        assert (await response.json())["windows"] == [
            {"start": emulator.wall.now + 10, "end": emulator.wall.now + 15}
        ]
    assert (await emulator.call("GET", "/v2/customer_sessions/x"))[0] == 404
    emulator.wall.now += 12
    assert (await emulator.call("GET", "/v2/customer_sessions/x"))[0] == 503
    async with client.delete("/__emulator/outage") as response:
        assert response.status == 204
    async with client.get("/__emulator/outage") as response:
        assert (await response.json()) == {"active": False, "windows": []}
    async with client.post("/__emulator/outage", json={"seconds": -1}) as response:
        assert response.status == 400


async def test_error_rates_through_the_admin_api(emulator: Emulator) -> None:
    client = emulator.client
    settings = {"errorRates": {"429": 1}, "retryAfterSeconds": 7, "seed": 3}
    async with client.put("/__emulator/faults", json=settings) as response:
        assert response.status == 200
        snapshot = await response.json()
    assert snapshot["errorRates"] == {"429": 1.0}
    assert snapshot["retryAfterSeconds"] == 7

    status, raw, response = await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body())

    assert status == 429
    assert raw == b'{"message":"Too many requests","StatusCode":429}'
    assert response.headers["Retry-After"] == "7"
    assert "s-1" not in emulator.state.sessions
    for status_code, message in ((500, "Internal server error"), (502, "Bad gateway")):
        async with client.put(
            "/__emulator/faults", json={"errorRates": {str(status_code): 1}}
        ) as response:
            assert response.status == 200
        status, raw, response = await emulator.call("GET", "/v2/customer_sessions/s-1")
        assert status == status_code
        assert message in raw.decode()
        assert "Retry-After" not in response.headers
    async with client.get("/__emulator/faults") as response:
        assert (await response.json())["errorRates"] == {"502": 1.0}


async def test_invalid_fault_settings_are_400_with_pointers(emulator: Emulator) -> None:
    async with emulator.client.put(
        "/__emulator/faults", json={"errorRates": {"503": 2}}
    ) as response:
        assert response.status == 400
        body = await response.json()
    assert body["StatusCode"] == 400
    assert body["errors"][0]["source"]["pointer"] == "/errorRates/503"
    async with emulator.client.put("/__emulator/faults", data=b"{oops") as response:
        assert response.status == 400
    assert emulator.faults.idle


async def test_error_after_processing_then_the_retry_replays(emulator: Emulator) -> None:
    emulator.faults.apply(FaultSettings(error_rates={502: 1.0}, error_phase="after"))
    path = "/v2/customer_sessions/s-1"

    lost = await emulator.call("PUT", path, session_body("closed"), key="retry-me")
    emulator.faults.apply(FaultSettings())
    retried = await emulator.call("PUT", path, session_body("closed"), key="retry-me")
    fresh = await emulator.call("PUT", path, session_body("closed"), key="new-key")

    assert lost[0] == 502
    assert retried[0] == 200  # the stored answer of the processed request
    assert emulator.state.profiles["cust-1"].closed_sessions == 1
    assert fresh[0] == 400  # without the key, the retry hits the closed session
    log = emulator.state.request_log.entries()
    assert [(e["fault"], e["replayed"]) for e in log] == [
        ("error-after", False),
        (None, True),
        (None, False),
    ]


async def test_error_before_processing_is_not_stored(emulator: Emulator) -> None:
    emulator.faults.apply(FaultSettings(error_rates={500: 1.0}))
    path = "/v2/customer_sessions/s-1"

    failed = await emulator.call("PUT", path, session_body(), key="k")
    emulator.faults.apply(FaultSettings())
    retried = await emulator.call("PUT", path, session_body(), key="k")

    assert failed[0] == 500
    assert retried[0] == 200
    assert emulator.state.sessions["s-1"].update_count == 1
    [faulted, processed] = emulator.state.request_log.entries()
    assert faulted["fault"] == "error-before"
    assert faulted["body"] == session_body()  # the faulted request's body is still logged
    assert processed["replayed"] is False


async def test_latency_distribution_is_applied_to_every_talon_call(emulator: Emulator) -> None:
    settings = FaultSettings(latency=UniformLatency(min_ms=10, max_ms=20), seed=1)
    async with emulator.client.put("/__emulator/faults", json=settings.to_json()) as response:
        assert response.status == 200

    for index in range(20):
        await emulator.call("PUT", f"/v2/customer_sessions/s-{index}", session_body())
    await emulator.call("GET", "/v2/customer_sessions/s-1")
    async with emulator.client.get("/__emulator/health"):
        pass  # admin calls are never delayed

    assert len(emulator.sleeps.delays) == 21
    assert all(0.010 <= delay <= 0.020 for delay in emulator.sleeps.delays)
    assert len(set(emulator.sleeps.delays)) > 1


# --- request log and health ------------------------------------------------------------------


async def test_request_log_over_the_admin_api(emulator: Emulator) -> None:
    client = emulator.client
    await emulator.call("PUT", "/v2/customer_sessions/s-1", session_body(), key="log-key")
    await emulator.call("GET", "/v2/customer_sessions/s-1")

    async with client.get("/__emulator/requests") as response:
        entries = await response.json()
    async with client.get("/__emulator/requests", params={"since": entries[0]["seq"]}) as r:
        later = await r.json()
    async with client.get("/__emulator/requests", params={"since": "x"}) as response:
        assert response.status == 400
        assert (await response.json())["errors"][0]["source"] == {"parameter": "since"}
    async with client.delete("/__emulator/requests") as response:
        assert response.status == 204
    async with client.get("/__emulator/health") as response:
        health = await response.json()

    first = entries[0]
    assert first["operation"] == "updateCustomerSessionV2"
    assert first["idempotencyKey"] == "log-key"
    assert first["started"] <= first["ended"]
    assert (first["replayed"], first["fault"]) == (False, None)
    assert [entry["operation"] for entry in later] == ["getCustomerSession"]
    assert health["requests"] == 0
    assert health["idempotencyKeys"] == 1
    assert health["outageActive"] is False
    async with client.delete("/__emulator/idempotency") as response:
        assert response.status == 204
    assert len(emulator.idempotency) == 0


async def test_bulk_profile_route_and_force_complete_evaluation(emulator: Emulator) -> None:
    body = {"customerProfiles": [{"integrationId": "a", "attributes": {"tier": "gold"}}]}

    silent = await emulator.call("PUT", "/v2/customer_profiles", body)
    loud = await emulator.call("PUT", "/v2/customer_profiles", body, params={"silent": "no"})
    event = {"type": "review_submitted", "profileId": "a"}
    forced = await emulator.call(
        "POST", "/v2/events", event, params={"forceCompleteEvaluation": "true"}
    )
    forced_dry = await emulator.call(
        "POST", "/v2/events", event, params={"forceCompleteEvaluation": "true", "dry": "true"}
    )

    assert (silent[0], silent[1]) == (204, b"")
    assert loud[0] == 200
    assert b'"integrationStates"' in loud[1]
    assert forced[0] == 400
    assert b'"parameter":"forceCompleteEvaluation"' in forced[1]
    assert forced_dry[0] == 204


async def test_api_keys_can_be_replaced_through_the_admin_api(emulator: Emulator) -> None:
    client = emulator.client
    status, _, _ = await emulator.call("GET", "/v2/customer_sessions/s-1")
    assert status == 404  # the configured key is accepted (the session just doesn't exist)
    async with client.put("/__emulator/api-keys", json={"keys": ["rotated"]}) as response:
        assert response.status == 200
        assert await response.json() == {"keys": 1}  # the count, never the keys
    status, body, _ = await emulator.call("GET", "/v2/customer_sessions/s-1")
    assert status == 401
    assert b"Unauthorized: invalid or missing API key" in body
    headers = {"Authorization": "ApiKey-v1 rotated"}
    async with client.get("/v2/customer_sessions/s-1", headers=headers) as response:
        assert response.status == 404
    for bad in ({"keys": []}, {"keys": [""]}, {"keys": "k"}, {"other": 1}):
        async with client.put("/__emulator/api-keys", json=bad) as response:
            assert response.status == 400, bad
    async with client.put("/__emulator/api-keys", json={"keys": [KEY]}) as response:
        assert response.status == 200
    status, _, _ = await emulator.call("GET", "/v2/customer_sessions/s-1")
    assert status == 404

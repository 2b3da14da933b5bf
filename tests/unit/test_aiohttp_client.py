"""The aiohttp Talon.One client against a real HTTP server on loopback: the same contract as the
httpx client — request shape, percent-encoded ids, statuses mapped to the exception tree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from workers.calls import Operation, TalonCall
from workers.exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonTransportError,
)
from workers.subprocesses import free_port
from workers.talon_client import AiohttpTalonClient

SEEN: list[dict[str, object]] = []


async def handler(request: web.Request) -> web.Response:
    body = await request.read()
    SEEN.append(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": dict(request.headers),
            "body": orjson.loads(body) if body else None,
        }
    )
    status = int(request.headers.get("X-Answer", "200"))
    if status == 204:
        return web.Response(status=204)
    if status >= 300:
        return web.json_response(
            {"message": "The submitted data was invalid", "StatusCode": status},
            status=status,
            headers={"Retry-After": "2"},
        )
    return web.json_response({"effects": [{"effectType": "acceptCoupon"}], "createdCoupons": []})


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    SEEN.clear()
    yield test_server
    await test_server.close()


def call(session_id: str = "s/1 ü") -> TalonCall:
    return TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION,
        session_id,
        {"customerSession": {"state": "open"}},
        query={"dry": "true"},
    )


async def test_request_shape_and_answer(server: TestServer) -> None:
    async with AiohttpTalonClient(str(server.make_url("")), "secret") as client:
        response = await client.send(call(), idempotency_key="idem-1")
    assert response.status == 200
    assert response.effects == [{"effectType": "acceptCoupon"}]
    [seen] = SEEN
    assert seen["method"] == "PUT"
    assert seen["raw_path"] == "/v2/customer_sessions/s%2F1%20%C3%BC?dry=true"
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["Authorization"] == "ApiKey-v1 secret"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "idem-1"
    assert seen["body"] == {"customerSession": {"state": "open"}}


async def test_a_call_without_body_sends_none(server: TestServer) -> None:
    reopen = TalonCall(Operation.REOPEN_CUSTOMER_SESSION, "s1", None)
    async with AiohttpTalonClient(str(server.make_url("")), "secret") as client:
        await client.send(reopen)
    [seen] = SEEN
    assert seen["body"] is None
    assert "Idempotency-Key" not in seen["headers"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, TalonPermanentError),
        (404, TalonPermanentError),
        (401, TalonFatalError),
        (403, TalonFatalError),
        (409, TalonRetryableError),
        (429, TalonRetryableError),
        (503, TalonRetryableError),
    ],
)
async def test_statuses(server: TestServer, status: int, kind: type[Exception]) -> None:
    client = AiohttpTalonClient(str(server.make_url("")), "secret")
    client._headers["X-Answer"] = str(status)
    try:
        with pytest.raises(kind) as caught:
            await client.send(call())
    finally:
        await client.aclose()
    error = caught.value
    assert error.status == status  # type: ignore[attr-defined]
    assert error.retry_after == 2.0  # type: ignore[attr-defined]
    assert "The submitted data was invalid" in str(error)
    assert "secret" not in str(error)


async def test_no_content(server: TestServer) -> None:
    client = AiohttpTalonClient(str(server.make_url("")), "secret")
    client._headers["X-Answer"] = "204"
    try:
        response = await client.send(call())
    finally:
        await client.aclose()
    assert (response.status, response.body) == (204, {})


async def test_nobody_listening_is_a_transport_error() -> None:
    async with AiohttpTalonClient(f"http://127.0.0.1:{free_port()}", "secret") as client:
        with pytest.raises(TalonTransportError, match="no answer"):
            await client.send(call())

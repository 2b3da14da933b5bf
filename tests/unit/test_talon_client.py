"""The Talon.One client over a mock transport: headers, bodies, and errors mapped to our tree."""

from __future__ import annotations

import httpx
import orjson
import pytest

from workers.calls import Operation, TalonCall
from workers.exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonTransportError,
)
from workers.talon_client import TalonClient

CALL = TalonCall(
    operation=Operation.UPDATE_CUSTOMER_SESSION,
    integration_id="s 1",
    body={"customerSession": {"state": "open"}},
    query={"dry": "true"},
    session_id="s 1",
)


def client(handler: httpx.MockTransport) -> TalonClient:
    return TalonClient("https://shop.example.talon.one", "secret-key", transport=handler)


async def test_sends_the_documented_request() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"effects": [{"effectType": "setDiscount"}], "createdCoupons": []}
        )

    async with client(httpx.MockTransport(handle)) as talon:
        response = await talon.send(CALL, idempotency_key="k-1")
    request = seen[0]
    assert request.method == "PUT"
    assert str(request.url) == "https://shop.example.talon.one/v2/customer_sessions/s%201?dry=true"
    assert request.headers["Authorization"] == "ApiKey-v1 secret-key"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "k-1"
    assert orjson.loads(request.content) == {"customerSession": {"state": "open"}}
    assert response.status == 200
    assert response.effects == [{"effectType": "setDiscount"}]


async def test_no_content_is_an_empty_body() -> None:
    async with client(httpx.MockTransport(lambda _: httpx.Response(204))) as talon:
        response = await talon.send(CALL)
    assert (response.status, response.body, response.effects) == (204, {}, [])


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, TalonPermanentError),
        (404, TalonPermanentError),
        (422, TalonPermanentError),
        (401, TalonFatalError),
        (403, TalonFatalError),
        (409, TalonRetryableError),
        (429, TalonRetryableError),
        (500, TalonRetryableError),
        (502, TalonRetryableError),
        (503, TalonRetryableError),
        (504, TalonRetryableError),
    ],
)
async def test_statuses_map_to_the_exception_tree(status: int, kind: type[Exception]) -> None:
    body = {
        "message": "The submitted data was invalid",
        "errors": [
            {
                "title": "Unknown",
                "details": 'The attribute "X" is not defined on CustomerSession entities.',
                "source": {"pointer": "/attributes/X"},
            }
        ],
    }
    transport = httpx.MockTransport(
        lambda _: httpx.Response(status, json=body, headers={"Retry-After": "7"})
    )
    async with client(transport) as talon:
        with pytest.raises(kind) as caught:
            await talon.send(CALL)
    error = caught.value
    assert error.status == status  # type: ignore[attr-defined]
    assert error.call is CALL  # type: ignore[attr-defined]
    assert "The submitted data was invalid" in error.body  # type: ignore[attr-defined]
    assert error.retry_after == 7.0  # type: ignore[attr-defined]
    text = str(error)
    assert f"HTTP {status}" in text
    assert 'The attribute "X" is not defined' in text
    assert "/attributes/X" in text
    assert "secret-key" not in text


async def test_transport_failures_are_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(httpx.MockTransport(refuse)) as talon:
        with pytest.raises(TalonTransportError, match="connection refused"):
            await talon.send(CALL)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    async with client(httpx.MockTransport(slow)) as talon:
        with pytest.raises(TalonTransportError, match="timed out"):
            await talon.send(CALL)

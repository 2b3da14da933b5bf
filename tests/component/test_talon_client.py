"""The contract every Talon.One client keeps (``Http11TalonClient``, ``AiohttpTalonClient`` and
``TalonClient``), each against the same aiohttp server on loopback: request shape,
percent-encoded ids, answers and statuses mapped to the exception tree. Then what only the httpx
client has: its transport seam. The edges of ``talon_stream.talon._http11`` are in
``test_http11.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestServer

from talon_stream._exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.demo._subprocesses import free_port
from talon_stream.talon import HttpClientKind, TalonClient

CLIENTS = [
    pytest.param("native", id="native"),
    pytest.param("aiohttp", id="aiohttp"),
    pytest.param("httpx", id="httpx"),
]

MESSAGE = "The submitted data was invalid"
DETAILS = 'The attribute "X" is not defined on CustomerSession entities.'

# --- the contract, against an aiohttp server ------------------------------------------------


@dataclass
class Server:
    """The loopback server and what it saw. A path holding ``answer-NNN`` is answered with
    status NNN (a Talon.One ErrorResponse with details and ``Retry-After: 2`` for errors),
    ``plain-NNN`` with an error of a message alone."""

    url: str
    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)


def error_body(status: int, *, detailed: bool) -> dict[str, Any]:
    if not detailed:
        return {"message": MESSAGE, "StatusCode": status}
    return {
        "message": MESSAGE,
        "errors": [
            {"title": "Unknown", "details": DETAILS, "source": {"pointer": "/attributes/X"}}
        ],
        "StatusCode": status,
    }


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": dict(request.headers),
                "body": orjson.loads(body) if body else None,
            }
        )
        answer = re.search(r"(answer|plain)-(\d+)", request.raw_path)
        status = int(answer.group(2)) if answer else 200
        if status == 204:
            return web.Response(status=204)
        if answer and status >= 300:
            return web.json_response(
                error_body(status, detailed=answer.group(1) == "answer"),
                status=status,
                headers={"Retry-After": "2"},
            )
        return web.json_response(
            {"effects": [{"effectType": "acceptCoupon"}], "createdCoupons": []}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield Server(str(test_server.make_url("")), test_server.port or 0, seen)
    await test_server.close()


def call(session_id: str = "s/1 ü") -> TalonCall:
    return TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION,
        session_id,
        {"customerSession": {"state": "open"}},
        query={"dry": "true"},
    )


@pytest.mark.parametrize("kind", CLIENTS)
async def test_request_shape_and_answer(server: Server, kind: HttpClientKind) -> None:
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        response = await client.send(call(), idempotency_key="idem-1")
    assert response.status == 200
    assert response.effects == [{"effectType": "acceptCoupon"}]
    [seen] = server.seen
    assert seen["method"] == "PUT"
    assert seen["raw_path"] == "/v2/customer_sessions/s%2F1%20%C3%BC?dry=true"
    headers = seen["headers"]
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["Authorization"] == "ApiKey-v1 secret"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "idem-1"
    assert seen["body"] == {"customerSession": {"state": "open"}}


@pytest.mark.parametrize("kind", CLIENTS)
async def test_extra_headers_such_as_trace_context_are_sent(
    server: Server, kind: HttpClientKind
) -> None:
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        await client.send(call(), idempotency_key="idem-2", headers=trace)
    [seen] = server.seen
    assert seen["headers"]["traceparent"] == trace["traceparent"]
    assert seen["headers"]["Idempotency-Key"] == "idem-2"
    assert seen["headers"]["Authorization"] == "ApiKey-v1 secret"


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_call_without_body_sends_none(server: Server, kind: HttpClientKind) -> None:
    reopen = TalonCall(Operation.REOPEN_CUSTOMER_SESSION, "s1", None)
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        await client.send(reopen)
    [seen] = server.seen
    assert seen["body"] is None
    assert "Idempotency-Key" not in seen["headers"]


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_call_without_body_has_no_content_type(
    server: Server, kind: HttpClientKind
) -> None:
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        await client.send(TalonCall(Operation.REOPEN_CUSTOMER_SESSION, "s1", None))
    [seen] = server.seen
    assert "Content-Type" not in seen["headers"]


@pytest.mark.parametrize("kind", CLIENTS)
async def test_the_base_url_path_is_a_prefix(server: Server, kind: HttpClientKind) -> None:
    async with TalonClient(f"{server.url}/talon/", "secret", http_client=kind) as client:
        await client.send(call("s1"))
    assert server.seen[0]["raw_path"] == "/talon/v2/customer_sessions/s1?dry=true"


@pytest.mark.parametrize(
    ("status", "error"),
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
@pytest.mark.parametrize("kind", CLIENTS)
async def test_statuses_map_to_the_exception_tree(
    server: Server, kind: HttpClientKind, status: int, error: type[TalonStatusError]
) -> None:
    failing = call(f"answer-{status}")
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        with pytest.raises(error) as caught:
            await client.send(failing)
    raised = caught.value
    assert raised.status == status
    assert raised.call is failing
    assert MESSAGE in raised.body
    assert raised.retry_after == 2.0
    text = str(raised)
    assert f"HTTP {status}" in text
    assert MESSAGE in text
    assert 'The attribute "X" is not defined' in text
    assert "/attributes/X" in text
    assert "secret" not in text


@pytest.mark.parametrize("kind", CLIENTS)
async def test_an_error_without_details_keeps_its_message(
    server: Server, kind: HttpClientKind
) -> None:
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        with pytest.raises(TalonPermanentError) as caught:
            await client.send(call("plain-400"))
    assert caught.value.retry_after == 2.0
    assert str(caught.value).endswith(f"/plain-400: {MESSAGE}")


@pytest.mark.parametrize("kind", CLIENTS)
async def test_no_content_is_an_empty_body(server: Server, kind: HttpClientKind) -> None:
    async with TalonClient(server.url, "secret", http_client=kind) as client:
        response = await client.send(call("answer-204"))
    assert (response.status, response.body, response.effects) == (204, {}, [])


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


# Run on both loops by hand: the worker runs on uvloop, pytest-asyncio on asyncio's loop.
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_nobody_listening_is_a_transport_error(kind: HttpClientKind, loop: str) -> None:
    async def scenario() -> None:
        async with TalonClient(
            f"http://127.0.0.1:{free_port()}", "secret", http_client=kind
        ) as client:
            with pytest.raises(TalonTransportError, match="no answer"):
                await client.send(call())

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario())


# --- the httpx client's transport seam ----------------------------------------------------------


async def test_httpx_transport_failures_are_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    for handle, message in ((refuse, "connection refused"), (slow, "timed out")):
        transport = httpx.MockTransport(handle)
        async with TalonClient(
            "https://shop.example.talon.one", "k", httpx_transport=transport
        ) as talon:
            with pytest.raises(TalonTransportError, match=message):
                await talon.send(call())

"""The emulator's HTTP/1.1 server on loopback, driven with raw bytes: keep-alive, pipelining,
chunked bodies, 100-continue, the body cap, malformed requests, routing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon_one_emulator.http.protocol import (
    HttpServer,
    Request,
    Response,
    Router,
    delete,
    get,
    post,
    put,
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def echo(request: Request) -> Response:
    payload = {
        "method": request.method,
        "path": request.path,
        "match": request.match_info,
        "query": [[key, value] for key, value in request.query.items()],
        "body": request.body.decode(),
        "auth": request.headers.get("authorization"),
    }
    return Response(200, orjson.dumps(payload), "application/json")


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.match_info["seconds"]))
    return Response(200, request.match_info["seconds"].encode(), "text/plain")


async def nothing(_request: Request) -> Response:
    return Response(204, headers={"X-Kind": "empty"})


async def broken(_request: Request) -> Response:
    raise RuntimeError("a bug")


async def fallback(request: Request) -> Response:
    return Response(404, f"no route for {request.method} {request.path}".encode(), "text/plain")


ROUTER = Router(
    [
        put("/v2/customer_sessions/{id}", echo),
        get("/v2/customer_sessions/{id}", echo),
        post("/echo", echo),
        get("/slow/{seconds}", slow),
        delete("/nothing", nothing),
        get("/broken", broken),
    ],
    fallback,
)


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, int]]:
    server = HttpServer(ROUTER, max_body=1000)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.start(sock)
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        await server.close()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for header in lines:
        if header:
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length)
    return Answer(int(line.split()[1]), headers, body)


async def exchange(address: tuple[str, int], *chunks: bytes, answers: int = 1) -> list[Answer]:
    reader, writer = await asyncio.open_connection(*address)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return [await asyncio.wait_for(read_answer(reader), 5) for _ in range(answers)]
    finally:
        writer.close()


def request(method: str, target: str, body: bytes = b"", *extra: str) -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: test", *extra]
    if body or method in {"PUT", "POST"}:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_keep_alive_answers_in_order_on_one_connection(address: tuple[str, int]) -> None:
    first, second = await exchange(
        address,
        request("PUT", "/v2/customer_sessions/s-1?dry=true", b'{"a":1}', "Authorization: k"),
        request("GET", "/v2/customer_sessions/s-2"),
        answers=2,
    )
    assert first.status == 200
    assert second.status == 200
    assert first.headers["content-type"] == "application/json"
    assert "date" in first.headers
    assert "connection" not in first.headers
    one = orjson.loads(first.body)
    assert one == {
        "method": "PUT",
        "path": "/v2/customer_sessions/s-1",
        "match": {"id": "s-1"},
        "query": [["dry", "true"]],
        "body": '{"a":1}',
        "auth": "k",
    }
    assert orjson.loads(second.body)["match"] == {"id": "s-2"}


async def test_pipelined_requests_are_answered_in_the_order_sent(address: tuple[str, int]) -> None:
    burst = request("GET", "/slow/0.2") + request("GET", "/slow/0") + request("GET", "/slow/0.05")
    answers = await exchange(address, burst, answers=3)
    assert [answer.body for answer in answers] == [b"0.2", b"0", b"0.05"]


async def test_a_chunked_body_is_reassembled(address: tuple[str, int]) -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    (answer,) = await exchange(address, head, chunks)
    assert orjson.loads(answer.body)["body"] == "abcdefg"


async def test_expect_100_continue_is_answered_before_the_body(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert orjson.loads(answer.body)["body"] == "ok"
    finally:
        writer.close()


async def test_a_body_past_the_cap_is_refused_with_413(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(request("POST", "/echo", b"x" * 1001))
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 413
        assert orjson.loads(answer.body) == {
            "message": "Request body larger than 1000 bytes",
            "StatusCode": 413,
        }
        assert answer.headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
    finally:
        writer.close()


async def test_a_malformed_request_gets_400_and_the_connection_closes(
    address: tuple[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(b"PUT /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 400
        assert orjson.loads(answer.body)["message"].startswith("Malformed request")
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/customer_sessions/a HTTP/1.0\r\n\r\n",
        b"GET /v2/customer_sessions/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ],
    ids=["http-1.0", "connection-close"],
)
async def test_connection_close_is_honoured(address: tuple[str, int], raw: bytes) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 200
        assert answer.headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_routing_decodes_segments_and_falls_back(address: tuple[str, int]) -> None:
    answers = await exchange(
        address,
        request("GET", "/v2/customer_sessions/a%2Fb%20c?x=1&x=2&y="),
        request("GET", "/v2/customer_sessions/"),  # an empty parameter matches no route
        request("POST", "/v2/customer_sessions/s"),  # no POST route there
        request("HEAD", "/v2/customer_sessions/s"),
        answers=4,
    )
    decoded = orjson.loads(answers[0].body)
    assert decoded["match"] == {"id": "a/b c"}
    assert decoded["path"] == "/v2/customer_sessions/a/b c"
    assert decoded["query"] == [["x", "1"], ["x", "2"], ["y", ""]]
    assert [answer.status for answer in answers[1:]] == [404, 404, 404]
    assert answers[2].body == b"no route for POST /v2/customer_sessions/s"


async def test_204_has_no_body_and_extra_headers_go_out(address: tuple[str, int]) -> None:
    answers = await exchange(
        address, request("DELETE", "/nothing"), request("GET", "/slow/0"), answers=2
    )
    assert answers[0].status == 204
    assert "content-length" not in answers[0].headers
    assert answers[0].headers["x-kind"] == "empty"
    assert answers[1].body == b"0"  # the next answer is not mistaken for a 204 body


async def test_a_failing_handler_answers_500_and_the_connection_lives_on(
    address: tuple[str, int],
) -> None:
    failed, after = await exchange(
        address, request("GET", "/broken"), request("GET", "/slow/0"), answers=2
    )
    assert failed.status == 500
    assert orjson.loads(failed.body) == {"message": "Internal server error", "StatusCode": 500}
    assert after.status == 200


async def test_close_ends_running_handlers_and_connections() -> None:
    server = HttpServer(ROUTER)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.start(sock)
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
    writer.write(request("GET", "/slow/60"))
    await writer.drain()
    for _ in range(100):
        if server.connections:
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(server.close(), 5)
    try:
        rest = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        rest = b""
    assert rest == b""  # no answer: the handler was cancelled and the connection closed
    assert not server.connections
    writer.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_answers_do_not_depend_on_how_the_bytes_are_split(sizes: list[int]) -> None:
    stream = (
        request("PUT", "/v2/customer_sessions/p%2Fq", b'{"cart":[1,2,3]}', "Authorization: k")
        + b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"5\r\nhello\r\n0\r\n\r\n"
        + request("GET", "/v2/customer_sessions/s?a=b")
    )
    pieces, position = [], 0
    for size in sizes:
        pieces.append(stream[position : position + size])
        position += size
    pieces.append(stream[position:])

    async def run() -> list[Answer]:
        server = HttpServer(ROUTER)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await server.start(sock)
        try:
            return await exchange(
                ("127.0.0.1", sock.getsockname()[1]), *[p for p in pieces if p], answers=3
            )
        finally:
            await server.close()

    answers = asyncio.run(run())
    bodies = [orjson.loads(answer.body) for answer in answers]
    assert bodies[0]["match"] == {"id": "p/q"}
    assert bodies[0]["body"] == '{"cart":[1,2,3]}'
    assert bodies[0]["auth"] == "k"
    assert bodies[1]["body"] == "hello"
    assert bodies[2]["query"] == [["a", "b"]]

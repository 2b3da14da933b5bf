"""The native HTTP/1.1 client (``talon_stream.talon._http11``) and ``TalonClient`` on the native
transport on loopback.

First ``TalonClient`` on the native transport against the emulator (the contract every Talon.One
client keeps is in
``test_talon_client.py``); then the edges of HTTP/1.1 and of the pool against small raw
``asyncio.start_server`` servers; last, a property test of the response parser's glue under any
split of the byte stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon_one_emulator import EmulatorConfig, EmulatorServer
from talon_stream._exceptions import TalonFatalError, TalonTransportError
from talon_stream.config._settings import load_settings
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.processing._worker import Worker
from talon_stream.talon import AiohttpTransport, Http11Transport, TalonClient
from talon_stream.talon._http11 import (
    Http11Client,
    HttpConnectError,
    HttpError,
    HttpReadError,
    HttpResponse,
    HttpTimeoutError,
    _Connection,
)

# --- TalonClient (native) against the emulator ---------------------------------------------------


async def test_against_the_emulator() -> None:
    with EmulatorServer(EmulatorConfig(api_keys=["test-key"])) as emulator:
        update = TalonCall(
            Operation.UPDATE_CUSTOMER_SESSION,
            "http11-s1",
            {"customerSession": {"state": "open", "profileId": "http11-p1"}},
        )
        async with TalonClient(emulator.base_url, "test-key") as client:
            response = await client.send(update, idempotency_key="http11-1")
            again = await client.send(update, idempotency_key="http11-1")
        assert response.status == 200
        assert isinstance(response.body.get("effects"), list)
        assert again.body == response.body
        async with TalonClient(emulator.base_url, "wrong-key") as client:
            with pytest.raises(TalonFatalError) as caught:
                await client.send(update)
        assert caught.value.status == 401


# --- raw servers for the edges ----------------------------------------------------------------


# The call ``TalonClient`` on the native transport sends to the raw servers.
UPDATE = TalonCall(
    Operation.UPDATE_CUSTOMER_SESSION,
    "s1",
    {"customerSession": {"state": "open"}},
    query={"dry": "true"},
)


@dataclass
class RawServer:
    """What a raw test server saw: connections accepted, open now, open at most, requests."""

    port: int = 0
    accepted: int = 0
    open: int = 0
    max_open: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Handle = Callable[[RawServer, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(
    handle: Handle, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    state = RawServer()
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        state.accepted += 1
        state.open += 1
        state.max_open = max(state.max_open, state.open)
        try:
            await handle(state, reader, writer)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            state.open -= 1
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def read_request(state: RawServer, reader: asyncio.StreamReader) -> str | None:
    """The next request's request line (its body read and dropped), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    state.requests.append(lines[0])
    return lines[0]


def answer(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def keep_alive(respond: Callable[[str], bytes], delay_s: float = 0.0) -> Handle:
    """A handler that answers every request on the connection with ``respond(request_line)``."""

    async def handle(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while (line := await read_request(state, reader)) is not None:
            if delay_s:
                await asyncio.sleep(delay_s)
            writer.write(respond(line))
            await writer.drain()

    return handle


def echo_target(line: str) -> bytes:
    return answer(line.split()[1].encode())


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# --- framing -----------------------------------------------------------------------------------


async def test_a_chunked_body_and_keep_alive_after_it() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n"
    )
    async with (
        raw_server(keep_alive(lambda _: chunked)) as server,
        Http11Client(server.url) as client,
    ):
        first = await client.request("GET", "/a")
        second = await client.request("GET", "/b")
    assert first.body == second.body == b"hello world!"
    assert server.accepted == 1


async def test_an_answer_split_byte_by_byte() -> None:
    response = answer(b'{"effects": []}', "429 Too Many", "Retry-After: 7\r\nX-A: 1\r\nX-B: 2\r\n")

    async def trickle(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await read_request(state, reader) is not None:
            for index in range(len(response)):
                writer.write(response[index : index + 1])
                await writer.drain()
                await asyncio.sleep(0.0005)

    async with raw_server(trickle) as server, Http11Client(server.url) as client:
        first = await client.request("GET", "/")
        second = await client.request("GET", "/")
    assert first == second == HttpResponse(429, b'{"effects": []}', "7")
    assert server.accepted == 1


async def test_no_body_after_204_and_304_and_the_connection_is_reused() -> None:
    answers = iter(
        [
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            answer(b"done"),
        ]
    )
    async with (
        raw_server(keep_alive(lambda _: next(answers))) as server,
        Http11Client(server.url) as client,
    ):
        results = [await client.request("GET", f"/{n}") for n in range(3)]
    assert [(r.status, r.body) for r in results] == [(204, b""), (304, b""), (200, b"done")]
    assert server.accepted == 1


async def test_an_interim_answer_is_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"real")
    async with (
        raw_server(keep_alive(lambda _: interim)) as server,
        Http11Client(server.url) as client,
    ):
        response = await client.request("POST", "/", body=b"x")
    assert (response.status, response.body) == (200, b"real")


async def test_a_body_read_until_eof() -> None:
    async def until_eof(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(state, reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"it")
        await writer.drain()

    async with raw_server(until_eof) as server, Http11Client(server.url) as client:
        first = await client.request("GET", "/")
        second = await client.request("GET", "/")
    assert first.body == second.body == b"all of it"
    assert server.accepted == 2


async def test_connection_close_is_honoured() -> None:
    async def close_after_answer(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(state, reader)
        writer.write(answer(b"bye", headers="Connection: close\r\n"))
        await writer.drain()
        # Keep the socket open: the client must not wait for EOF nor reuse the connection.
        await asyncio.sleep(1)

    async with raw_server(close_after_answer) as server, Http11Client(server.url) as client:
        started = time.monotonic()
        results = [await client.request("GET", "/") for _ in range(3)]
        assert time.monotonic() - started < 1
    assert [r.body for r in results] == [b"bye"] * 3
    assert server.accepted == 3


# --- broken connections, stale connections, timeouts -------------------------------------------


async def test_a_connection_closed_while_idle_is_replaced() -> None:
    async def one_answer_then_close(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(state, reader)
        writer.write(answer(b"{}"))
        await writer.drain()

    async with (
        raw_server(one_answer_then_close) as server,
        TalonClient(server.url, "k") as client,
    ):
        await client.send(UPDATE)
        await wait_until(lambda: server.open == 0)
        await asyncio.sleep(0.05)  # the client has seen the EOF of its idle connection
        await client.send(UPDATE)
    assert server.accepted == 2
    assert len(server.requests) == 2  # no retry was needed


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one() -> None:
    async def drop_the_second_request(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # The first connection answers once, then reads the next request and closes without a
        # byte: what a server that timed the idle connection out looks like to the client.
        if state.accepted == 1:
            await read_request(state, reader)
            writer.write(answer(b'{"connection": 1}'))
            await writer.drain()
            await read_request(state, reader)
            return
        while await read_request(state, reader) is not None:
            writer.write(answer(b'{"connection": 2}'))
            await writer.drain()

    async with (
        raw_server(drop_the_second_request) as server,
        TalonClient(server.url, "k") as client,
    ):
        first = await client.send(UPDATE, idempotency_key="k1")
        second = await client.send(UPDATE, idempotency_key="k2")
    assert (first.body, second.body) == ({"connection": 1}, {"connection": 2})
    assert server.accepted == 2
    assert len(server.requests) == 3  # the second call was sent twice


async def test_a_fresh_connection_closed_without_answer_is_not_retried() -> None:
    async def hang_up(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(state, reader)

    async with raw_server(hang_up) as server, TalonClient(server.url, "k") as client:
        with pytest.raises(TalonTransportError, match="connection lost"):
            await client.send(UPDATE)
    assert server.accepted == 1


async def test_eof_in_the_middle_of_the_body_is_a_transport_error() -> None:
    async def short_body(
        state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(state, reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"effects": [')
        await writer.drain()

    async with raw_server(short_body) as server, TalonClient(server.url, "k") as client:
        with pytest.raises(TalonTransportError, match="connection lost"):
            await client.send(UPDATE)
    assert server.accepted == 1


async def test_a_malformed_answer_is_a_transport_error() -> None:
    async with (
        raw_server(keep_alive(lambda _: b"SMTP ready\r\n\r\n")) as server,
        TalonClient(server.url, "k") as client,
    ):
        with pytest.raises(TalonTransportError, match="malformed answer"):
            await client.send(UPDATE)


async def never_answer(
    state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request(state, reader)
    await reader.read()  # until the client closes the connection


async def test_a_server_that_never_answers_times_out() -> None:
    async with (
        raw_server(never_answer) as server,
        TalonClient(server.url, "k", timeout_s=0.3) as client,
    ):
        started = time.monotonic()
        with pytest.raises(TalonTransportError, match=r"timed out.*within 0\.3 s"):
            await client.send(UPDATE)
        assert 0.25 <= time.monotonic() - started < 1.5
        await wait_until(lambda: server.open == 0)  # the timed-out connection was dropped


async def test_the_timeout_covers_waiting_for_a_connection() -> None:
    async with (
        raw_server(never_answer) as server,
        Http11Client(server.url, timeout_s=0.3, max_connections=1) as client,
    ):
        started = time.monotonic()
        results = await asyncio.gather(
            client.request("GET", "/1"), client.request("GET", "/2"), return_exceptions=True
        )
        assert time.monotonic() - started < 1.5
    assert all(isinstance(result, HttpTimeoutError) for result in results)


# --- the pool ----------------------------------------------------------------------------------


async def test_the_pool_never_opens_more_than_max_connections() -> None:
    async with (
        raw_server(keep_alive(echo_target, delay_s=0.02)) as server,
        Http11Client(server.url, max_connections=2) as client,
    ):
        results = await asyncio.gather(*(client.request("GET", f"/{n}") for n in range(10)))
    assert [result.body for result in results] == [f"/{n}".encode() for n in range(10)]
    assert server.max_open == 2
    assert server.accepted == 2


async def test_waiting_requests_are_served_first_come_first_served() -> None:
    async with (
        raw_server(keep_alive(echo_target, delay_s=0.01)) as server,
        Http11Client(server.url, max_connections=1) as client,
    ):
        await asyncio.gather(*(client.request("GET", f"/{n}") for n in range(6)))
    assert server.requests == [f"GET /{n} HTTP/1.1" for n in range(6)]


async def test_a_cancelled_request_does_not_poison_the_pool() -> None:
    async with (
        raw_server(keep_alive(echo_target, delay_s=0.2)) as server,
        Http11Client(server.url, max_connections=1) as client,
    ):
        in_flight = asyncio.create_task(client.request("GET", "/cancelled"))
        queued = asyncio.create_task(client.request("GET", "/queued-and-cancelled"))
        await wait_until(lambda: server.requests == ["GET /cancelled HTTP/1.1"])
        queued.cancel()
        in_flight.cancel()
        for task in (in_flight, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        # The cancelled request's answer arrives later on a dropped connection, never as
        # the answer to the next request; the slot of the one cancelled in the queue is free.
        response = await client.request("GET", "/next")
        assert response.body == b"/next"
        assert (await client.request("GET", "/again")).body == b"/again"
    assert server.accepted == 2
    assert server.max_open <= 2


async def test_aclose_closes_every_connection() -> None:
    async with raw_server(keep_alive(echo_target, delay_s=0.02)) as server:
        client = Http11Client(server.url, max_connections=4)
        await asyncio.gather(*(client.request("GET", f"/{n}") for n in range(4)))
        assert server.open == 4
        await client.aclose()
        await wait_until(lambda: server.open == 0)
        with pytest.raises(HttpError, match="closed"):
            await client.request("GET", "/")


async def test_aclose_fails_requests_in_flight_and_waiting() -> None:
    async with raw_server(never_answer) as server:
        client = Http11Client(server.url, max_connections=1)
        tasks = [asyncio.create_task(client.request("GET", f"/{n}")) for n in range(2)]
        await wait_until(lambda: len(server.requests) == 1)
        await client.aclose()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(result, HttpError) for result in results)
        await wait_until(lambda: server.open == 0)


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with raw_server(keep_alive(echo_target), ssl_context=server_context) as server:
        url = f"https://127.0.0.1:{server.port}"
        async with Http11Client(url, ssl_context=trusting) as client:
            assert (await client.request("GET", "/a")).body == b"/a"
            assert (await client.request("GET", "/b")).body == b"/b"
        assert server.accepted == 1
        async with Http11Client(url) as untrusting:  # the default context rejects the cert
            with pytest.raises(HttpError, match="cannot connect"):
                await untrusting.request("GET", "/")


# --- request validation ------------------------------------------------------------------------


async def test_header_injection_is_refused() -> None:
    async with Http11Client("http://127.0.0.1:1") as client:
        with pytest.raises(ValueError, match="header"):
            await client.request("GET", "/", headers={"Idempotency-Key": "a\r\nX-Evil: 1"})
        with pytest.raises(ValueError, match="target"):
            await client.request("GET", "/a b")
        # A name already sent once has its values checked all the same.
        with pytest.raises(HttpConnectError):  # nothing listens: the request was well-formed
            await client.request("GET", "/", headers={"X-Request": "ok"})
        for bad in ("a\r\nX-Evil: 1", "a\nb", "a\x00b"):
            with pytest.raises(ValueError, match="header"):
                await client.request("GET", "/", headers={"X-Request": bad})


def test_a_bad_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="base URL"):
        Http11Client("ftp://example.com")


# --- the parser under any split of the byte stream ----------------------------------------------


class _RecordingTransport(asyncio.Transport):
    """The far end of a :class:`_Connection` in the property test: records what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def encode(body: bytes, framing: str, chunk_sizes: list[int], retry_after: str | None) -> bytes:
    extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    head = f"HTTP/1.1 200 OK\r\nServer: t\r\n{extra}"
    if framing == "length":
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    if framing == "eof":
        return f"{head}\r\n".encode() + body
    chunks, rest, sizes = [], body, iter(chunk_sizes * (len(body) + 1))
    while rest:
        size = next(sizes)
        piece, rest = rest[:size], rest[size:]
        chunks.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + b"".join(chunks) + b"0\r\n\r\n"


async def feed(stream: bytes, cuts: list[int], eof: bool) -> tuple[HttpResponse, bool]:
    loop = asyncio.get_running_loop()
    connection = _Connection(loop)
    transport = _RecordingTransport()
    connection.connection_made(transport)
    exchange = asyncio.create_task(
        connection.exchange(b"GET / HTTP/1.1\r\n\r\n", "GET", "/", loop.time() + 5, 5)
    )
    await asyncio.sleep(0)  # the request is written and its answer awaited
    assert transport.written == b"GET / HTTP/1.1\r\n\r\n"
    bounds = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    for start, end in itertools.pairwise(bounds):
        connection.data_received(stream[start:end])
    if eof:
        connection.connection_lost(None)
    return await exchange, connection.reusable


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=3000),
    framing=st.sampled_from(["length", "chunked", "eof"]),
    chunk_sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=8),
    retry_after=st.none() | st.integers(min_value=0, max_value=3600).map(str),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
)
def test_any_split_of_the_stream_gives_the_same_answer(
    body: bytes, framing: str, chunk_sizes: list[int], retry_after: str | None, cuts: list[int]
) -> None:
    stream = encode(body, framing, chunk_sizes, retry_after)
    loop = asyncio.new_event_loop()
    try:
        response, reusable = loop.run_until_complete(feed(stream, cuts, framing == "eof"))
    finally:
        loop.close()
    assert response == HttpResponse(200, body, retry_after)
    assert reusable is (framing != "eof")


def test_a_connection_that_broke_before_the_answer_reports_it() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        connection = _Connection(loop)
        connection.connection_made(_RecordingTransport())
        exchange = asyncio.create_task(
            connection.exchange(b"GET /", "GET", "/", loop.time() + 5, 5)
        )
        await asyncio.sleep(0)
        connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Len")
        connection.connection_lost(ConnectionResetError("reset"))
        with pytest.raises(HttpReadError, match="reset"):
            await exchange

    asyncio.run(scenario())


# --- the same scenarios on uvloop (the worker's loop) ------------------------------------------

ON_UVLOOP = sorted(
    (
        scenario
        for name, scenario in list(globals().items())
        if name.startswith("test_")
        and inspect.iscoroutinefunction(scenario)
        and not inspect.signature(scenario).parameters
    ),
    key=lambda scenario: scenario.__name__,
)


@pytest.mark.parametrize("scenario", ON_UVLOOP, ids=lambda scenario: scenario.__name__)
def test_on_uvloop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "kind"),
    [(None, Http11Transport), ("native", Http11Transport), ("aiohttp", AiohttpTransport)],
)
async def test_the_worker_builds_the_configured_client(
    setting: str | None, kind: type[object]
) -> None:
    overrides = {"http_client": setting} if setting else {}
    worker = Worker(load_settings(talon_api_key="k", **overrides))
    client = worker._talon_client()
    try:
        assert isinstance(client._transport, kind)
    finally:
        await client.aclose()

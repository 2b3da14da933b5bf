"""The emulator's HTTP/1.1 server: asyncio protocols, httptools' parser, a table of path
templates.

A load test spends most of the emulator's time in its own logic, so the HTTP layer is kept to
what a Talon.One client needs: keep-alive and pipelined requests (answered in order), bodies
sent with ``Content-Length`` or chunked, ``Expect: 100-continue``, a body size cap (413), and
malformed requests answered with 400 before the connection is closed. Handlers are coroutines
taking a :class:`Request` and returning a :class:`Response`; the body is read in full before the
handler runs, so it is a plain attribute.

Routing matches the percent-decoded path segment by segment, so an ID holding an encoded ``/``
(``%2F``) is one segment, as in Talon.One's API. The first route whose method and template match
wins; a request no route claims goes to the fallback handler.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

import httptools
import orjson
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

__all__ = [
    "DEFAULT_MAX_BODY",
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "Route",
    "Router",
    "delete",
    "get",
    "post",
    "put",
]

logger = logging.getLogger("emulator")

#: The largest request body accepted (413 past it), as aiohttp's default.
DEFAULT_MAX_BODY = 1024 * 1024

#: Requests parsed but not yet answered on one connection before it stops reading.
_MAX_PIPELINED = 32


class Request:
    """One HTTP request, body included.

    Attributes:
        method: upper-case method.
        path: the percent-decoded path, without the query.
        raw_path: the request target as sent (path and query, still encoded).
        query_string: the encoded query (without ``?``).
        headers: case-insensitive headers.
        body: the whole body (empty when none was sent).
        match_info: the path parameters of the matched route, decoded.
    """

    __slots__ = (
        "_query",
        "body",
        "headers",
        "keep_alive",
        "match_info",
        "method",
        "path",
        "query_string",
        "raw_path",
        "segments",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: CIMultiDictProxy[str],
        body: bytes = b"",
        *,
        keep_alive: bool = True,
    ) -> None:
        self.method = method
        self.raw_path = target
        raw, _, self.query_string = target.partition("?")
        self.segments: list[str] = raw.split("/")
        if "%" in raw:
            self.path = unquote(raw)
            self.segments = [unquote(part) for part in self.segments]
        else:
            self.path = raw
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.match_info: dict[str, str] = {}
        self._query: MultiDictProxy[str] | None = None

    @property
    def query(self) -> MultiDictProxy[str]:
        """The decoded query parameters (blank values kept), in order."""
        if self._query is None:
            pairs = parse_qsl(self.query_string, keep_blank_values=True)
            self._query = MultiDictProxy(MultiDict(pairs))
        return self._query


@dataclass(slots=True)
class Response:
    """An answer: status, body and its content type, extra headers."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] | None = None


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` requests to paths matching ``path`` (``{name}`` segments are parameters)."""

    method: str
    path: str
    handler: Handler


def get(path: str, handler: Handler) -> Route:
    """A GET route."""
    return Route("GET", path, handler)


def put(path: str, handler: Handler) -> Route:
    """A PUT route."""
    return Route("PUT", path, handler)


def post(path: str, handler: Handler) -> Route:
    """A POST route."""
    return Route("POST", path, handler)


def delete(path: str, handler: Handler) -> Route:
    """A DELETE route."""
    return Route("DELETE", path, handler)


# A compiled template: the segments (None where a parameter is), the parameters by position.
_Template = tuple[tuple[str | None, ...], tuple[tuple[int, str], ...], Handler]


def _compile(route: Route) -> _Template:
    if not route.path.startswith("/"):
        raise ValueError(f"a route path must start with '/': {route.path!r}")
    statics: list[str | None] = []
    params: list[tuple[int, str]] = []
    for position, segment in enumerate(route.path.split("/")):
        if segment.startswith("{") and segment.endswith("}"):
            statics.append(None)
            params.append((position, segment[1:-1]))
        else:
            statics.append(segment)
    return tuple(statics), tuple(params), route.handler


class Router:
    """Finds the handler of a request: the first route whose method and template match."""

    def __init__(self, routes: Iterable[Route], fallback: Handler) -> None:
        self._table: dict[tuple[str, int], list[_Template]] = {}
        for route in routes:
            template = _compile(route)
            self._table.setdefault((route.method, len(template[0])), []).append(template)
        self.fallback = fallback

    def resolve(self, request: Request) -> Handler:
        """The handler for ``request``; sets ``request.match_info``."""
        segments = request.segments
        for statics, params, handler in self._table.get((request.method, len(segments)), ()):
            for wanted, segment in zip(statics, segments, strict=True):
                if wanted is not None and wanted != segment:
                    break
            else:
                if params:
                    values = {name: segments[position] for position, name in params}
                    if "" in values.values():
                        continue  # a parameter is never empty
                    request.match_info = values
                return handler
        return self.fallback


class _Clock:
    """The ``Date`` header, formatted once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def date(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode("ascii")
        return self._value


_CLOCK = _Clock()
_STATUS_LINES: dict[int, bytes] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode("ascii")
    for status in HTTPStatus
}
_NO_BODY = frozenset({204, 304})


def encode_response(response: Response, *, keep_alive: bool) -> bytes:
    """The response as it goes on the wire."""
    status = response.status
    line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode("ascii")
    parts = [line, b"Date: ", _CLOCK.date(), b"\r\n"]
    body = response.body
    if status in _NO_BODY or status < 200:
        body = b""
    else:
        if response.content_type is not None:
            parts.append(f"Content-Type: {response.content_type}\r\n".encode("latin-1"))
        parts.append(b"Content-Length: %d\r\n" % len(body))
    if response.headers:
        for name, value in response.headers.items():
            parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


def _error(status: int, message: str) -> Response:
    body = orjson.dumps({"message": message, "StatusCode": status})
    return Response(status, body, "application/json")


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs their handlers one at a time, answers in
    order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[Response] | None = None
        self._paused = False
        # The message being parsed.
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pending.clear()  # nobody to answer; a running handler still finishes
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(_error(400, "Protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            self._refuse(_error(400, f"Malformed request: {exc}"))

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            expects = name.lower() == "expect" and value.lower() == "100-continue"
            if expects and self._transport is not None:
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._server.max_body:
            self._too_large = True
            self._body = []
        elif not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        if self._too_large:
            limit = self._server.max_body
            self._refuse(_error(413, f"Request body larger than {limit} bytes"))
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            parser.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            CIMultiDictProxy(CIMultiDict(self._headers)),
            body,
            keep_alive=parser.should_keep_alive(),
        )
        self._pending.append(request)
        if self._task is None:
            self._next()
        elif len(self._pending) >= _MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    # --- answering ------------------------------------------------------------------------------

    def _next(self) -> None:
        if not self._pending:
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            return
        request = self._pending.popleft()
        handler = self._server.router.resolve(request)
        task = self._loop.create_task(handler(request))
        self._task = task
        task.add_done_callback(partial(self._finish, request))

    def _finish(self, request: Request, task: asyncio.Task[Response]) -> None:
        self._task = None
        if task.cancelled():
            response = _error(503, "Server shutting down")
        elif (failure := task.exception()) is not None:
            logger.error("%s %s failed", request.method, request.path, exc_info=failure)
            response = _error(500, "Internal server error")
        else:
            response = task.result()
        transport = self._transport
        if transport is None:
            return
        transport.write(encode_response(response, keep_alive=request.keep_alive))
        if not request.keep_alive:
            transport.close()
            return
        self._next()

    def _refuse(self, response: Response) -> None:
        """Answer a request that cannot be handled, then close (the stream is out of step)."""
        self._pending.clear()
        transport = self._transport
        if transport is not None and self._task is None:
            transport.write(encode_response(response, keep_alive=False))
        if transport is not None:
            transport.close()

    def close(self) -> None:
        """Close the connection; a running handler is cancelled."""
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.close()


class HttpServer:
    """Serves a :class:`Router` on a listening socket of the running event loop.

    Args:
        router: the routes and the fallback handler.
        max_body: the largest request body accepted (413 past it).
    """

    def __init__(self, router: Router, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.router = router
        self.max_body = max_body
        self.connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket, *, backlog: int = 1024) -> None:
        """Listen on ``sock`` (bound, not yet listening)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=sock, backlog=backlog
        )

    async def close(self) -> None:
        """Stop listening and close every connection (running handlers are cancelled)."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

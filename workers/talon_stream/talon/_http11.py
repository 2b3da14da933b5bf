"""A lean HTTP/1.1 keep-alive client on the event loop's protocol API, for one origin.

:class:`Http11Client` keeps at most ``max_connections`` connections to the origin of its base URL
(``http://`` or ``https://``), reuses them while the server allows, and parses answers with
``httptools`` (llhttp): Content-Length, chunked and read-until-EOF bodies, 204/304 without body,
interim 1xx answers skipped. Each request is one ``transport.write`` of bytes built from headers
encoded once. It runs on asyncio's loop and on uvloop. It costs a fraction of aiohttp's CPU per
request (``bench/http_clients.py``), which is why the worker uses it.

Through an HTTP proxy (``proxy``), each connection is a CONNECT tunnel to the origin
(:mod:`talon_stream.talon._proxy`), TLS inside it for ``https://``.

What it does not do, on purpose: redirects, cookies, compression, ``Expect``, pipelining,
HEAD requests, request streaming or write flow control (request bodies are small JSON documents).

Exceptions, all carrying ``method`` and ``target`` (the request they are about)::

    HttpError                    no complete answer
    ├── HttpConnectError         the connection could not be opened (refused, DNS, TLS, the
    │                            proxy refused the tunnel)
    ├── HttpTimeoutError         ``timeout_s`` passed: pool wait, connect, write and read together
    └── HttpReadError            the connection broke (reset, EOF mid-answer) or the answer is
                                 not valid HTTP/1.1

A request on a *reused* connection that the server closed while it was idle (EOF or reset before
any byte of the answer) is sent once more on a fresh connection. That can repeat a request the
server received but did not answer; the worker's calls all carry an ``Idempotency-Key``, so
Talon.One answers a repeat from its idempotency store instead of applying it twice.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from talon_stream.talon._proxy import Proxy, ProxyError, open_tunnel

__all__ = [
    "Http11Client",
    "HttpConnectError",
    "HttpError",
    "HttpReadError",
    "HttpResponse",
    "HttpTimeoutError",
]

#: Methods whose requests always carry a Content-Length (0 without body), as servers expect.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: The methods it sends (HEAD is left out: its answer has no body, which it does not handle).
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Header names already found usable are remembered (up to this many): then only their values
#: are checked.
_MAX_CHECKED_NAMES = 64
#: What a target or a header value must never hold: controls would let a value inject headers.
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\x00\r\n]")
#: How long ``aclose`` lets connections close cleanly (TLS close_notify) before aborting them.
_CLOSE_GRACE_S = 1.0


class HttpError(Exception):
    """No complete HTTP answer to ``method`` ``target``."""

    def __init__(self, message: str, *, method: str, target: str) -> None:
        super().__init__(message)
        self.method = method
        self.target = target


class HttpConnectError(HttpError):
    """The connection could not be opened: refused, unknown host, TLS handshake failed."""


class HttpTimeoutError(HttpError):
    """No complete answer within the client's ``timeout_s``."""


class HttpReadError(HttpError):
    """The connection broke before the whole answer arrived, or the answer is not HTTP/1.1."""


class _StaleConnectionError(HttpReadError):
    """A reused connection closed before any byte of the answer: the server dropped it idle."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete answer: status, body bytes and the ``Retry-After`` header if there was one."""

    status: int
    body: bytes
    retry_after: str | None = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; httptools calls the
    ``on_*`` methods while :meth:`data_received` feeds it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: Resolved once the transport is gone (``aclose`` waits for it).
        self.lost: asyncio.Future[None] = loop.create_future()
        #: False once the server said ``Connection: close`` or anything went wrong.
        self.reusable = True
        self._answers = 0
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._method = ""
        self._target = ""
        self._received = False
        self._status = 0
        self._framed = False
        self._retry_after: bytes | None = None
        self._body: list[bytes] = []

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection is out of step
            self.abort()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(HttpReadError, f"malformed answer: {exc!r}")
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if not self.lost.done():
            self.lost.set_result(None)
        if self._waiter is None or self._waiter.done():
            return
        if exc is None and self._status and not self._framed:
            self._complete()  # neither Content-Length nor chunked: the body ended at EOF
            return
        reason = f"connection lost before the whole answer arrived ({exc or 'EOF'})"
        stale = self._answers > 0 and not self._received
        self._fail(_StaleConnectionError if stale else HttpReadError, reason)

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:  # a second answer to one request: the connection is out of step
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self._retry_after = value
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # an interim answer (100 Continue, 103); the real one follows
            self._reset()
            return
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._complete()

    # --- used by the client ---------------------------------------------------------------------

    async def exchange(
        self, request: bytes, method: str, target: str, deadline: float, timeout_s: float
    ) -> HttpResponse:
        """Write ``request`` and wait for its answer until ``deadline`` (loop time)."""
        transport = self._transport
        if transport is None or transport.is_closing():  # lost while it waited in the pool
            kind = _StaleConnectionError if self._answers else HttpReadError
            raise kind("connection closed before the request", method=method, target=target)
        self._method, self._target = method, target
        waiter: asyncio.Future[HttpResponse] = self.loop.create_future()
        self._waiter = waiter
        self._received = False  # the answer state was reset when the last one completed
        transport.write(request)
        timer = self.loop.call_at(deadline, self._time_out, timeout_s)
        try:
            return await waiter
        except BaseException:
            # Failed, timed out or cancelled: the state of the answer is unknown, never reuse.
            self.abort()
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        """Close gracefully (a complete answer said ``Connection: close``, or shutdown)."""
        self.reusable = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once, discarding anything buffered."""
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    def _reset(self) -> None:
        self._status = 0
        self._framed = False
        self._retry_after = None
        self._body = []

    def _complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        self._answers += 1
        body = self._body
        retry_after = self._retry_after
        response = HttpResponse(
            self._status,
            body[0] if len(body) == 1 else b"".join(body),
            retry_after.decode("latin-1").strip() if retry_after is not None else None,
        )
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, kind: type[HttpError], reason: str) -> None:
        self.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(kind(reason, method=self._method, target=self._target))

    def _time_out(self, timeout_s: float) -> None:
        self._fail(HttpTimeoutError, f"no complete answer within {timeout_s:g} s")
        self.abort()


class Http11Client:
    """HTTP/1.1 requests to the origin of ``base_url`` over pooled keep-alive connections.

    Args:
        base_url: ``http://host[:port][/prefix]`` or ``https://…``; the prefix is put before
            every request target.
        headers: sent with every request (e.g. ``Authorization``); ``Host`` is added.
        timeout_s: the total time a request may take: waiting for a free connection,
            connecting, writing and reading the whole answer.
        max_connections: connections open at most; further requests wait for one, first come
            first served.
        ssl_context: for ``https://``; default ``ssl.create_default_context()``.
        proxy: an HTTP proxy to tunnel every connection through (CONNECT).

    Use as an async context manager, or call :meth:`aclose`, to close the connections.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http://host or https://host, not {base_url!r}")
        if max_connections < 1 or timeout_s <= 0:
            raise ValueError("max_connections must be at least 1 and timeout_s positive")
        secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if secure else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if secure else None
        self._proxy = proxy
        self._prefix = parts.path.rstrip("/")
        authority = parts.netloc.rpartition("@")[2]  # never send userinfo
        fixed = {"Host": authority, **(headers or {})}
        for name, value in fixed.items():
            _check_header(name, value)
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._checked_names: set[str] = set()
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._slots = 0  # connections open or being opened
        self._idle: list[_Connection] = []
        self._connections: set[_Connection] = set()
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    async def __aenter__(self) -> Http11Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request and return the whole answer, whatever its status.

        ``target`` is the path (and query) after the base URL's prefix, already
        percent-encoded; ``headers`` are added to the client's for this request.

        Raises:
            HttpConnectError: the connection could not be opened.
            HttpTimeoutError: no complete answer within ``timeout_s``.
            HttpReadError: the connection broke or the answer is not valid HTTP/1.1.
            HttpError: the client is closed.
            ValueError: the method, target or a header value is unusable (e.g. holds CR/LF).
        """
        request = self._encode(method, target, body, headers)
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            connection = await self._acquire(method, target, deadline)
            held: _Connection | None = connection  # what to release: a connection or its slot
            try:
                try:
                    return await connection.exchange(
                        request, method, target, deadline, self._timeout_s
                    )
                except _StaleConnectionError:
                    # The server closed this idle keep-alive connection as we reused it. Once,
                    # on a fresh connection in the same slot (see the module docstring).
                    self._forget(connection)
                    held = None
                    held = connection = await self._connect(method, target, deadline)
                    return await connection.exchange(
                        request, method, target, deadline, self._timeout_s
                    )
            finally:
                self._release(held)
        except TimeoutError as exc:  # from waiting for a connection or connecting
            raise HttpTimeoutError(
                f"no complete answer within {self._timeout_s:g} s", method=method, target=target
            ) from exc

    async def aclose(self) -> None:
        """Close every connection and refuse new requests; requests in flight or waiting for a
        connection fail with an :class:`HttpError`."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # it sees the client closed and raises
        self._waiters.clear()
        self._idle.clear()
        connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()
        pending = {connection.lost for connection in connections if not connection.lost.done()}
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_GRACE_S)
        stuck = [connection for connection in connections if not connection.lost.done()]
        for connection in stuck:
            connection.abort()
        if stuck:
            await asyncio.wait({connection.lost for connection in stuck}, timeout=_CLOSE_GRACE_S)

    # --- pool -----------------------------------------------------------------------------------

    async def _acquire(self, method: str, target: str, deadline: float) -> _Connection:
        """A connection for one request; the caller must :meth:`_release` it (or its slot)."""
        if self._closed:
            raise HttpError("the client is closed", method=method, target=target)
        if self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely stale
            if connection.reusable:
                return connection
            self._forget(connection)  # closed by the server while idle; its slot is ours
            return await self._connect_in_slot(method, target, deadline)
        if self._slots < self._max_connections:
            self._slots += 1
            return await self._connect_in_slot(method, target, deadline)
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                granted = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as we gave up: pass it on
            raise
        if self._closed:  # woken by aclose (None), or handed a connection just before it
            if granted is not None:
                self._release(granted)
            raise HttpError("the client is closed", method=method, target=target)
        if granted is None:  # a slot, without a connection
            return await self._connect_in_slot(method, target, deadline)
        return granted

    async def _connect_in_slot(self, method: str, target: str, deadline: float) -> _Connection:
        try:
            return await self._connect(method, target, deadline)
        except BaseException:
            self._release(None)
            raise

    async def _connect(self, method: str, target: str, deadline: float) -> _Connection:
        """Open a connection in a slot the caller holds (and frees if this raises)."""
        if self._closed:
            raise HttpError("the client is closed", method=method, target=target)
        loop = asyncio.get_running_loop()
        proxy = self._proxy
        try:
            async with asyncio.timeout_at(deadline):
                if proxy is None:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(loop),
                        self._host,
                        self._port,
                        ssl=self._ssl,
                        server_hostname=self._host if self._ssl is not None else None,
                    )
                else:
                    connection = await open_tunnel(
                        loop, proxy, self._host, self._port, lambda: _Connection(loop), self._ssl
                    )
        except TimeoutError:
            raise
        except ProxyError as exc:  # the message names the proxy
            raise HttpConnectError(
                f"cannot connect to {self._host}:{self._port}: {exc}", method=method, target=target
            ) from exc
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            via = f" through proxy {proxy.address}" if proxy is not None else ""
            raise HttpConnectError(
                f"cannot connect to {self._host}:{self._port}{via}: {exc}",
                method=method,
                target=target,
            ) from exc
        if self._closed:  # aclose ran while this connection was being opened
            connection.close()
            raise HttpError("the client is closed", method=method, target=target)
        self._connections.add(connection)
        return connection

    def _release(self, connection: _Connection | None) -> None:
        """Give a connection back after a request (``None``: just its slot). A reusable one goes
        to the first waiter or the idle pool; any other is closed and its slot handed on."""
        if connection is not None:
            if connection.reusable and not self._closed:
                while self._waiters:
                    waiter = self._waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(connection)
                        return
                self._idle.append(connection)
                return
            self._forget(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._slots -= 1

    def _forget(self, connection: _Connection) -> None:
        """Close a connection that will not be reused; its slot stays with the caller."""
        connection.close()
        self._connections.discard(connection)

    def _encode(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str] | None
    ) -> bytes:
        if method not in _METHODS or _UNSAFE_TARGET.search(target):
            raise ValueError(f"unusable method or target: {method!r} {target!r}")
        parts = [f"{method} {self._prefix}{target} HTTP/1.1\r\n", self._fixed]
        if headers:
            checked = self._checked_names
            for name, value in headers.items():
                if name not in checked:
                    _check_header(name, value)
                    if len(checked) < _MAX_CHECKED_NAMES:
                        checked.add(name)
                elif _UNSAFE_VALUE.search(value):
                    raise ValueError(f"unusable header {name!r}")
                parts.append(f"{name}: {value}\r\n")
        if body is not None or method in _BODY_METHODS:
            parts.append(f"Content-Length: {len(body) if body else 0}\r\n")
        parts.append("\r\n")
        head = "".join(parts).encode("latin-1")
        return head + body if body else head


def _check_header(name: str, value: str) -> None:
    if not name or _UNSAFE_TARGET.search(name) or ":" in name or _UNSAFE_VALUE.search(value):
        raise ValueError(f"unusable header {name!r}")

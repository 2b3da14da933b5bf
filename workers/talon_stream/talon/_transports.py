"""The HTTP transports a :class:`~talon_stream.talon.TalonClient` sends on, behind one small
interface: ``request(method, target, body, headers)`` answers an
:class:`~talon_stream.talon._http11.HttpResponse` or raises an
:class:`~talon_stream.talon._http11.HttpError`; ``aclose()`` releases the connections.

* :class:`Http11Transport` — :class:`~talon_stream.talon.Http11Client`, a lean HTTP/1.1
  client on the event loop's protocol API: the cheapest per request (``docs/benchmarks.md``);
* :class:`AiohttpTransport` — one ``aiohttp.ClientSession``;
* :class:`HttpxTransport` — ``httpx.AsyncClient``, whose own transport can be injected
  (``httpx.MockTransport`` in tests).

Each keeps pooled keep-alive connections to one origin and sends its session ``headers`` with
every request. No ``aiohttp`` or ``httpx`` error leaves this module.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Literal, Protocol

import aiohttp
import httpx
from yarl import URL

from talon_stream.talon._http11 import Http11Client, HttpError, HttpResponse, HttpTimeoutError

__all__ = [
    "AiohttpTransport",
    "Http11Transport",
    "HttpClientKind",
    "HttpxTransport",
    "Transport",
    "open_transport",
]

#: The transports ``TALON_STREAM_HTTP_CLIENT`` chooses between.
HttpClientKind = Literal["native", "aiohttp", "httpx"]


class Transport(Protocol):
    """Sends one request to the transport's origin. ``target`` is the path and query, already
    percent-encoded; ``headers`` are the request's own, added to the session headers.

    Raises:
        HttpTimeoutError: no complete answer in time.
        HttpError: no complete answer (refused, reset, not HTTP).
    """

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class Http11Transport:
    """The native transport (a stale pooled connection is retried once, which every worker call
    allows as it carries an ``Idempotency-Key``)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._http = Http11Client(
            base_url,
            headers=headers,
            timeout_s=timeout_s,
            max_connections=max_connections,
            ssl_context=ssl_context,
        )

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        return await self._http.request(method, target, body=body, headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()


class AiohttpTransport:
    """An ``aiohttp.ClientSession``, created on first use inside the running event loop."""

    def __init__(
        self, base_url: str, *, headers: Mapping[str, str], timeout_s: float, max_connections: int
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
            headers=self._headers,
            timeout=self._timeout,
            skip_auto_headers=("Content-Type",),
        )
        return self._session

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        session = self._session or self._open()
        url = URL(f"{self._base_url}{target}", encoded=True)
        try:
            async with session.request(method, url, data=body, headers=headers) as response:
                content = await response.read()
                return HttpResponse(response.status, content, response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise HttpTimeoutError(repr(exc), method=method, target=target) from exc
        except aiohttp.ClientError as exc:
            raise HttpError(repr(exc), method=method, target=target) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxTransport:
    """An ``httpx.AsyncClient``; ``transport`` replaces httpx's own (``httpx.MockTransport``)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        try:
            response = await self._client.request(method, target, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise HttpTimeoutError(repr(exc), method=method, target=target) from exc
        except httpx.HTTPError as exc:
            raise HttpError(repr(exc), method=method, target=target) from exc
        return HttpResponse(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def open_transport(
    kind: HttpClientKind,
    base_url: str,
    *,
    headers: Mapping[str, str],
    timeout_s: float = 10.0,
    max_connections: int = 256,
    ssl_context: ssl.SSLContext | None = None,
    httpx_transport: httpx.AsyncBaseTransport | None = None,
) -> Transport:
    """The transport ``kind`` to ``base_url``. ``ssl_context`` applies to the native one;
    ``httpx_transport`` (httpx's own transport, e.g. ``httpx.MockTransport``) means httpx."""
    if httpx_transport is not None:
        kind = "httpx"
    if kind == "native":
        return Http11Transport(
            base_url,
            headers=headers,
            timeout_s=timeout_s,
            max_connections=max_connections,
            ssl_context=ssl_context,
        )
    if kind == "aiohttp":
        return AiohttpTransport(
            base_url, headers=headers, timeout_s=timeout_s, max_connections=max_connections
        )
    return HttpxTransport(
        base_url,
        headers=headers,
        timeout_s=timeout_s,
        max_connections=max_connections,
        transport=httpx_transport,
    )

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
every request; each verifies TLS with the ``ssl_context`` given (a private CA, a client
certificate) and goes through the origin's ``proxy`` (:mod:`talon_stream.talon._proxy`), never
through one of its own reading of the environment. No ``aiohttp`` or ``httpx`` error leaves this
module.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import aiohttp
import httpx
from yarl import URL

from talon_stream.talon._http11 import (
    Http11Client,
    HttpConnectError,
    HttpError,
    HttpResponse,
    HttpTimeoutError,
)
from talon_stream.talon._proxy import Proxy

__all__ = [
    "AiohttpTransport",
    "Http11Transport",
    "HttpClientKind",
    "HttpxTransport",
    "Origin",
    "Transport",
    "open_transport",
]

#: The transports ``TALON_STREAM_HTTP_CLIENT`` chooses between.
HttpClientKind = Literal["native", "aiohttp", "httpx"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a transport sends: the base URL, the headers of every request, how long a whole
    answer may take, how many connections the pool keeps and the proxy on the way."""

    base_url: str
    headers: Mapping[str, str]
    timeout_s: float = 10.0
    max_connections: int = 256
    proxy: Proxy | None = None


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

    def __init__(self, origin: Origin, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._http = Http11Client(
            origin.base_url,
            headers=origin.headers,
            timeout_s=origin.timeout_s,
            max_connections=origin.max_connections,
            ssl_context=ssl_context,
            proxy=origin.proxy,
        )

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        return await self._http.request(method, target, body=body, headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()


class AiohttpTransport:
    """An ``aiohttp.ClientSession``, created on first use inside the running event loop."""

    def __init__(self, origin: Origin, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._origin = origin
        self._base_url = origin.base_url.rstrip("/")
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        proxy = origin.proxy
        self._proxy = URL(proxy.url) if proxy is not None else None
        authorization = proxy.authorization if proxy is not None else None
        self._proxy_headers = (
            {"Proxy-Authorization": authorization} if authorization is not None else None
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._origin.max_connections, ttl_dns_cache=300, ssl=self._ssl
            ),
            headers=dict(self._origin.headers),
            timeout=aiohttp.ClientTimeout(total=self._origin.timeout_s),
            skip_auto_headers=("Content-Type",),
        )
        return self._session

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        session = self._session or self._open()
        url = URL(f"{self._base_url}{target}", encoded=True)
        try:
            async with session.request(
                method,
                url,
                data=body,
                headers=headers,
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            ) as response:
                content = await response.read()
                return HttpResponse(response.status, content, response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise HttpTimeoutError(repr(exc), method=method, target=target) from exc
        except aiohttp.ClientHttpProxyError as exc:  # the proxy refused the tunnel
            proxy = self._origin.proxy
            where = proxy.address if proxy is not None else "?"
            raise HttpConnectError(
                f"proxy {where} refused to open a tunnel: HTTP {exc.status} {exc.message}",
                method=method,
                target=target,
            ) from exc
        except aiohttp.ClientConnectorError as exc:  # refused, DNS, TLS
            raise HttpConnectError(repr(exc), method=method, target=target) from exc
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
        origin: Origin,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        pool = origin.max_connections
        proxy = origin.proxy
        self._origin = origin
        self._client = httpx.AsyncClient(
            base_url=origin.base_url,
            headers=dict(origin.headers),
            timeout=httpx.Timeout(origin.timeout_s),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            transport=transport,
            verify=ssl_context if ssl_context is not None else True,
            proxy=httpx.Proxy(proxy.url, auth=_credentials(proxy)) if proxy is not None else None,
            trust_env=False,  # the proxy and the CAs are the settings', as for the other two
        )

    async def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        try:
            response = await self._client.request(method, target, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise HttpTimeoutError(repr(exc), method=method, target=target) from exc
        except httpx.ProxyError as exc:  # the proxy refused the tunnel
            proxy = self._origin.proxy
            where = proxy.address if proxy is not None else "?"
            raise HttpConnectError(
                f"proxy {where} refused to open a tunnel: {exc}", method=method, target=target
            ) from exc
        except httpx.ConnectError as exc:
            raise HttpConnectError(repr(exc), method=method, target=target) from exc
        except httpx.HTTPError as exc:
            raise HttpError(repr(exc), method=method, target=target) from exc
        return HttpResponse(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def open_transport(
    kind: HttpClientKind,
    origin: Origin,
    *,
    ssl_context: ssl.SSLContext | None = None,
    httpx_transport: httpx.AsyncBaseTransport | None = None,
) -> Transport:
    """The transport ``kind`` to ``origin``, verifying TLS with ``ssl_context`` (default: the
    system's CAs); ``httpx_transport`` (httpx's own transport, e.g. ``httpx.MockTransport``)
    means httpx."""
    if httpx_transport is not None:
        return HttpxTransport(origin, transport=httpx_transport, ssl_context=ssl_context)
    if kind == "native":
        return Http11Transport(origin, ssl_context=ssl_context)
    if kind == "aiohttp":
        return AiohttpTransport(origin, ssl_context=ssl_context)
    return HttpxTransport(origin, ssl_context=ssl_context)


def _credentials(proxy: Proxy) -> tuple[str, str] | None:
    return (proxy.username, proxy.password or "") if proxy.username is not None else None

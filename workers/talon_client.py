"""Talon.One Integration API clients: send a :class:`~workers.calls.TalonCall`, get a
:class:`TalonResponse` or one of the :mod:`workers.exceptions` Talon errors.

Three implementations behind one interface (``send`` and ``aclose``):

* :class:`Http11TalonClient` — on :mod:`workers.http11`, a lean HTTP/1.1 client on the event
  loop's protocol API: the cheapest per request (``bench/http_clients.py``;
  ``docs/benchmarks.md``);
* :class:`AiohttpTalonClient` — on an ``aiohttp.ClientSession``; with hundreds of calls in
  flight it costs a fraction of httpx's CPU per request;
* :class:`TalonClient` — ``httpx.AsyncClient`` with an injectable transport, for callers that
  want httpx's API and for tests (``httpx.MockTransport``).

All keep pooled keep-alive connections and map statuses identically. No ``httpx``, ``aiohttp``
or :mod:`workers.http11` error leaves this module.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
import httpx
import orjson
from yarl import URL

from workers.calls import TalonCall
from workers.exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from workers.http11 import Http11Client, HttpError, HttpTimeoutError

__all__ = [
    "RETRYABLE_STATUSES",
    "AiohttpTalonClient",
    "Http11TalonClient",
    "TalonClient",
    "TalonResponse",
]

#: Statuses that may succeed later. 409 is Talon.One's per-integration-ID queue being full.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 403})

_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class TalonResponse:
    """A successful answer. ``body`` is the parsed JSON (empty for 204)."""

    status: int
    body: dict[str, Any]
    elapsed_s: float
    #: The answer's ``effects`` (``[]`` when it has none), read once.
    effects: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        effects = self.body.get("effects")
        object.__setattr__(self, "effects", effects if isinstance(effects, list) else [])


class _Closing:
    """A client as an async context manager: leaving it calls ``aclose``."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError


class TalonClient(_Closing):
    """Sends Integration API calls with ``Authorization: ApiKey-v1 <key>``.

    Use as an async context manager (or call :meth:`aclose`) so pooled connections are released.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "talon-stream",
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={**_session_headers(api_key, user_agent), "Content-Type": _JSON},
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse:
        """Send one call and return the parsed answer.

        Raises:
            TalonTransportError: no HTTP answer (connect error, timeout, broken connection).
            TalonRetryableError: 408, 409, 429 or 5xx.
            TalonFatalError: 401 or 403 — the key or the deployment is wrong.
            TalonPermanentError: any other non-2xx status (400, 404, 422, …).
        """
        # The client's default headers carry the Content-Type, and httpx encodes the query.
        extra = dict(headers) if headers else {}
        if idempotency_key:
            extra["Idempotency-Key"] = idempotency_key
        content = orjson.dumps(call.body) if call.body is not None else None
        started = time.perf_counter()
        try:
            response = await self._client.request(
                call.method, call.path, params=call.query, content=content, headers=extra or None
            )
        except httpx.TimeoutException as exc:
            raise TalonTransportError(f"timed out: {exc!r}", call=call) from exc
        except httpx.HTTPError as exc:
            raise TalonTransportError(f"no answer: {exc!r}", call=call) from exc
        return _answer(
            call,
            response.status_code,
            response.content,
            response.headers.get("Retry-After"),
            time.perf_counter() - started,
        )


class AiohttpTalonClient(_Closing):
    """Sends Integration API calls on one ``aiohttp.ClientSession`` (created on first use, inside
    the running event loop). Same contract as :class:`TalonClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        user_agent: str = "talon-stream",
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = _session_headers(api_key, user_agent)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
            headers=self._headers,
            timeout=self._timeout,
            skip_auto_headers=("Content-Type",),
        )
        return self._session

    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse:
        """Send one call and return the parsed answer; raises as :meth:`TalonClient.send`."""
        session = self._session or self._open()
        sent, content, target = _request(call, idempotency_key, headers)
        url = URL(f"{self._base_url}{target}", encoded=True)
        started = time.perf_counter()
        try:
            async with session.request(call.method, url, data=content, headers=sent) as response:
                body = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError as exc:
            raise TalonTransportError(f"timed out: {exc!r}", call=call) from exc
        except aiohttp.ClientError as exc:
            raise TalonTransportError(f"no answer: {exc!r}", call=call) from exc
        return _answer(call, status, body, retry_after, time.perf_counter() - started)


class Http11TalonClient(_Closing):
    """Sends Integration API calls on a :class:`workers.http11.Http11Client` (pooled HTTP/1.1
    keep-alive connections; a stale pooled connection is retried once, which every worker call
    allows as it carries an ``Idempotency-Key``). Same contract as :class:`TalonClient`.

    ``ssl_context`` replaces ``ssl.create_default_context()`` for an ``https://`` base URL.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        max_connections: int = 256,
        user_agent: str = "talon-stream",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._http = Http11Client(
            base_url,
            headers=_session_headers(api_key, user_agent),
            timeout_s=timeout_s,
            max_connections=max_connections,
            ssl_context=ssl_context,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse:
        """Send one call and return the parsed answer; raises as :meth:`TalonClient.send`."""
        sent, content, target = _request(call, idempotency_key, headers)
        started = time.perf_counter()
        try:
            response = await self._http.request(call.method, target, body=content, headers=sent)
        except HttpTimeoutError as exc:
            raise TalonTransportError(f"timed out: {exc}", call=call) from exc
        except HttpError as exc:
            raise TalonTransportError(f"no answer: {exc}", call=call) from exc
        return _answer(
            call,
            response.status,
            response.body,
            response.retry_after,
            time.perf_counter() - started,
        )


def _session_headers(api_key: str, user_agent: str) -> dict[str, str]:
    """The headers every request of a client carries."""
    return {"Authorization": f"ApiKey-v1 {api_key}", "Accept": _JSON, "User-Agent": user_agent}


def _request(
    call: TalonCall, idempotency_key: str | None, extra: Mapping[str, str] | None = None
) -> tuple[dict[str, str], bytes | None, str]:
    """The call's own headers (``extra``, such as trace context; ``Idempotency-Key``;
    ``Content-Type`` with a body), its JSON body and its request target (path and query)."""
    headers: dict[str, str] = dict(extra) if extra else {}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    content = None
    if call.body is not None:
        content = orjson.dumps(call.body)
        headers["Content-Type"] = _JSON
    # The path is already percent-encoded (an id may hold "/"): keep it exactly as built.
    target = f"{call.path}?{urlencode(call.query)}" if call.query else call.path
    return headers, content, target


def _answer(
    call: TalonCall, status: int, content: bytes, retry_after: str | None, elapsed_s: float
) -> TalonResponse:
    """The parsed answer to a 2xx status; raises the status's Talon error otherwise."""
    if 200 <= status < 300:
        return TalonResponse(status=status, body=_parse_body(content, call), elapsed_s=elapsed_s)
    raise _status_error(call, status, content.decode(errors="replace"), retry_after)


def _parse_body(content: bytes, call: TalonCall) -> dict[str, Any]:
    if not content:
        return {}
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise TalonTransportError(f"2xx answer is not JSON: {content[:200]!r}", call=call) from exc
    if not isinstance(body, dict):
        raise TalonTransportError("2xx answer is not a JSON object", call=call)
    return body


def _status_error(
    call: TalonCall, status: int, text: str, retry_after: str | None
) -> TalonStatusError:
    message = _error_message(text) or f"status {status}"
    kind: type[TalonStatusError]
    if status in FATAL_STATUSES:
        kind = TalonFatalError
    elif status in RETRYABLE_STATUSES:
        kind = TalonRetryableError
    else:
        kind = TalonPermanentError
    return kind(
        message, call=call, status=status, body=text, retry_after=_retry_after_seconds(retry_after)
    )


def _error_message(text: str) -> str | None:
    """The ``message`` of Talon.One's ErrorResponse, with the first error's details."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text.strip()[:300] or None
    if not isinstance(body, dict):
        return None
    message = str(body.get("message") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = first.get("details") or first.get("title")
        pointer = (first.get("source") or {}).get("pointer")
        if detail:
            message = f"{message}: {detail}" if message else str(detail)
        if pointer:
            message = f"{message} (at {pointer})"
    return message or None


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

"""The Talon.One Integration API client: send a :class:`~talon_stream.core.TalonCall`, get a
:class:`~talon_stream.core.TalonResponse` or one of the Talon errors of
:mod:`talon_stream._exceptions`.

The client builds each request once — the session headers (``Accept``, ``User-Agent``), the
API key of the moment (:mod:`~talon_stream.talon._keys`), the call's own (``Idempotency-Key``,
trace context, ``Content-Type``), its JSON body and request target — sends it on a
:mod:`~talon_stream.talon._transports` transport and maps the answer: 2xx to a response, every
other status to its error, no answer to :class:`~talon_stream.TalonTransportError`. No transport
error leaves this module.

A 401 makes the key source look again (a key file re-read): when the key changed since the
request was sent, the request is sent once more with the new key (harmless: Talon.One applied
nothing, and the call carries its Idempotency-Key); otherwise the 401 is raised.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import orjson

from talon_stream._exceptions import (
    TalonDuplicateError,
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.talon._http11 import HttpError, HttpResponse, HttpTimeoutError
from talon_stream.talon._keys import ApiKeySource, StaticApiKey
from talon_stream.talon._proxy import Proxy
from talon_stream.talon._transports import HttpClientKind, Origin, open_transport

__all__ = ["FATAL_STATUSES", "RETRYABLE_STATUSES", "TalonClient", "decode_answer", "encode_request"]

#: Statuses that may succeed later. 409 is Talon.One's per-integration-ID queue being full.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUSES = frozenset({401, 403})

_JSON = "application/json"
#: What an error body that is not JSON parses to.
_NOT_JSON = object()


class TalonClient:
    """Sends Integration API calls with ``Authorization: ApiKey-v1 <key>`` on pooled keep-alive
    connections, over the transport ``http_client`` names (``native`` by default; an
    ``httpx_transport`` means httpx over it), through ``proxy`` when one is given.

    ``api_key`` is the key, or where to find it (an :class:`~talon_stream.talon.ApiKeyFile`,
    re-read when it changes): each request carries the key of the moment it is sent.

    Use as an async context manager (or call :meth:`aclose`) so the connections are released.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | ApiKeySource,
        *,
        http_client: HttpClientKind = "native",
        timeout_s: float = 10.0,
        max_connections: int = 256,
        user_agent: str = "talon-stream",
        ssl_context: ssl.SSLContext | None = None,
        httpx_transport: httpx.AsyncBaseTransport | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        self.api_key: ApiKeySource = StaticApiKey(api_key) if isinstance(api_key, str) else api_key
        self._key = ""
        self._authorization = ""
        origin = Origin(
            base_url, _session_headers(user_agent), timeout_s, max_connections, proxy=proxy
        )
        self._transport = open_transport(
            http_client, origin, ssl_context=ssl_context, httpx_transport=httpx_transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

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
        sent, content, target = encode_request(call, idempotency_key, headers)
        started = time.perf_counter()
        key = self.api_key.value
        response = await self._request(call, target, content, sent, key)
        if response.status == 401:
            await self.api_key.refresh()
            if self.api_key.value != key:  # refused a key that is no longer the current one
                response = await self._request(call, target, content, sent, self.api_key.value)
        return decode_answer(
            call,
            response.status,
            response.body,
            response.retry_after,
            time.perf_counter() - started,
        )

    async def _request(
        self, call: TalonCall, target: str, content: bytes | None, sent: dict[str, str], key: str
    ) -> HttpResponse:
        if key is not self._key:  # the header is built once per key
            self._key, self._authorization = key, f"ApiKey-v1 {key}"
        sent["Authorization"] = self._authorization
        try:
            return await self._transport.request(call.method, target, content, sent)
        except HttpTimeoutError as exc:
            raise TalonTransportError(f"timed out: {exc}", call=call) from exc
        except HttpError as exc:
            raise TalonTransportError(f"no answer: {exc}", call=call) from exc


def _session_headers(user_agent: str) -> dict[str, str]:
    """The headers every request of a client carries (the key is added to each request)."""
    return {"Accept": _JSON, "User-Agent": user_agent}


def encode_request(
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


def decode_answer(
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
    try:
        body: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = _NOT_JSON
    message = _error_message(text, body) or f"status {status}"
    kind: type[TalonStatusError]
    if status in FATAL_STATUSES:
        kind = TalonFatalError
    elif (
        status == 409
        and call.operation is Operation.TRACK_EVENT_V3
        and "already exists" in text.lower()
    ):
        kind = TalonDuplicateError
    elif status in RETRYABLE_STATUSES:
        kind = TalonRetryableError
    else:
        kind = TalonPermanentError
    return kind(
        message,
        call=call,
        status=status,
        body=text,
        retry_after=_retry_after_seconds(retry_after),
        problems=_problems(body) if status == 400 else (),
        unknown_attributes=_unknown_attributes(body) if status == 400 else (),
    )


def _problems(body: Any) -> tuple[tuple[str | None, str], ...]:
    """Each error of Talon.One's ErrorResponse (``body``, parsed): where it points and what it
    says."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ()
    out = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        detail = error.get("details") or error.get("title") or "invalid"
        out.append((pointer if isinstance(pointer, str) else None, str(detail)))
    return tuple(out)


def _unknown_attributes(body: Any) -> tuple[str, ...]:
    """The pointers of the errors of ``body`` (parsed) that say an attribute is not defined:
    title ``Unknown``, pointing into an ``attributes`` object."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ()
    out = []
    for error in errors:
        if not isinstance(error, dict) or error.get("title") != "Unknown":
            continue
        source = error.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        if isinstance(pointer, str) and pointer.rpartition("/")[0].endswith("/attributes"):
            out.append(pointer)
    return tuple(out)


def _error_message(text: str, body: Any) -> str | None:
    """The ``message`` of Talon.One's ErrorResponse (``body``, parsed from ``text``;
    ``_NOT_JSON`` when it is not JSON), with the first error's details."""
    if body is _NOT_JSON:
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

"""The Talon.One Integration API client: one pooled, kept-alive ``httpx.AsyncClient``.

The client sends a :class:`~workers.calls.TalonCall` and returns a :class:`TalonResponse`, or
raises one of the :mod:`workers.exceptions` Talon errors. ``httpx`` errors never leave this module.
The HTTP transport is injectable (``transport=``), which is how tests and benchmarks swap it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from workers.calls import TalonCall
from workers.exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)

__all__ = ["RETRYABLE_STATUSES", "TalonClient", "TalonResponse"]

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
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def effects(self) -> list[Any]:
        effects = self.body.get("effects")
        return effects if isinstance(effects, list) else []


class TalonClient:
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
            headers={
                "Authorization": f"ApiKey-v1 {api_key}",
                "Content-Type": _JSON,
                "Accept": _JSON,
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    async def __aenter__(self) -> TalonClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, call: TalonCall, *, idempotency_key: str | None = None) -> TalonResponse:
        """Send one call and return the parsed answer.

        Raises:
            TalonTransportError: no HTTP answer (connect error, timeout, broken connection).
            TalonRetryableError: 408, 409, 429 or 5xx.
            TalonFatalError: 401 or 403 — the key or the deployment is wrong.
            TalonPermanentError: any other non-2xx status (400, 404, 422, …).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        content = orjson.dumps(call.body) if call.body is not None else None
        started = time.perf_counter()
        try:
            response = await self._client.request(
                call.method, call.path, params=call.query, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise TalonTransportError(f"timed out: {exc!r}", call=call) from exc
        except httpx.HTTPError as exc:
            raise TalonTransportError(f"no answer: {exc!r}", call=call) from exc
        elapsed = time.perf_counter() - started
        status = response.status_code
        if 200 <= status < 300:
            return TalonResponse(
                status=status,
                body=_parse_body(response.content, call),
                elapsed_s=elapsed,
                headers=dict(response.headers),
            )
        raise _status_error(call, status, response.text, response.headers.get("Retry-After"))


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

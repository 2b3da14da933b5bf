"""How every Talon.One call is answered, whatever the operation.

::

    request ──▶ fault injection: outage / error "before"? ──yes──▶ (latency) fault answer
                   │ no
                   ▼
                route known? (404) ─▶ API key? (401) ─▶ JSON body? (400)
                   ▼
                Idempotency-Key stored? ──yes──▶ (latency) replay the stored answer
                   │ no
                   ▼
                latency, per-ID concurrency gate (409) ─▶ the operation ─▶ answer
                   │                                          (stored under the key)
                   ▼
                error "after"? ──yes──▶ fault answer instead (the request was processed)

Every call, faulted or not, is recorded in the request log with its start and end times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any

import orjson

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.validation import parse_json
from talon_one_emulator.errors import (
    ApiError,
    ConflictError,
    InvalidDataError,
    NotFoundError,
    UnauthorizedError,
)
from talon_one_emulator.http.faults import Fault, FaultInjector, Injection
from talon_one_emulator.http.idempotency import (
    IDEMPOTENCY_HEADER,
    IdempotencyStore,
    StoredResponse,
    check_key,
    fingerprint,
)
from talon_one_emulator.http.protocol import Handler, Request, Response
from talon_one_emulator.store.concurrency import Entity, IntegrationIdGate
from talon_one_emulator.store.state import EmulatorState

__all__ = [
    "IDEMPOTENT_OPERATIONS",
    "Operation",
    "Result",
    "Run",
    "TalonHandler",
    "no_content",
    "with_status",
]

logger = logging.getLogger("emulator")

Sleep = Callable[[float], Awaitable[object]]
Body = dict[str, Any]
Result = tuple[int, Body | list[Body] | None]
"""What an operation answers: the status and the JSON body (``None``: no body, e.g. 204)."""
Run = Callable[[IntegrationService, Request, Any], Result]

# The operations Talon.One documents the Idempotency-Key header for. Not trackEventV3: its
# events are idempotent by their own integrationId (a repeat is a 409), and the specification
# documents no header there, so a key on it is only logged.
IDEMPOTENT_OPERATIONS = frozenset(
    {
        "updateCustomerSessionV2",
        "returnCartItems",
        "reopenCustomerSession",
        "updateCustomerProfileV2",
        "updateCustomerProfilesV2",
        "trackEventV2",
    }
)

# Track event v2 and v3: gated (409) and logged by the body's profileId.
_EVENT_OPERATIONS = frozenset({"trackEventV2", "trackEventV3"})

_JSON = "application/json"
_INTERNAL_ERROR = orjson.dumps({"message": "Internal server error", "StatusCode": 500})


@dataclass(frozen=True, slots=True)
class Operation:
    """One Talon.One route: the SDK's operation ID and the function that answers it."""

    name: str
    run: Run
    reads_body: bool = True
    gate: Entity | None = None


def with_status(run: Run) -> Run:
    """``run``, its errors answered as ErrorResponseWithStatus (with ``StatusCode``): what the
    specification declares for some operations."""

    @wraps(run)
    def wrapped(service: IntegrationService, request: Request, body: Any) -> Result:
        try:
            return run(service, request, body)
        except ApiError as exc:
            exc.with_status = True
            raise

    return wrapped


def no_content(act: Callable[[IntegrationService, Request, Any], None]) -> Run:
    """``act`` as an operation answered 204 without a body (errors as :func:`with_status`)."""

    @with_status
    @wraps(act)
    def run(service: IntegrationService, request: Request, body: Any) -> Result:
        act(service, request, body)
        return 204, None

    return run


def _get(value: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _query(request: Request) -> dict[str, str | list[str]]:
    if not request.query_string:
        return {}
    query = request.query
    out: dict[str, str | list[str]] = {}
    for key in query:
        if key in out:
            continue
        values = query.getall(key)
        out[key] = values[0] if len(values) == 1 else list(values)
    return out


def _response(status: int, body: bytes | None) -> Response:
    if body is None:
        return Response(status)
    return Response(status, body, _JSON)


def _fault_response(fault: Fault) -> Response:
    return Response(
        status=fault.status, body=fault.payload(), content_type=_JSON, headers=fault.headers()
    )


class _Trace:
    """What the request log needs to know about one call."""

    __slots__ = ("body", "fault", "idempotency_key", "raw", "replayed")

    def __init__(self, idempotency_key: str | None) -> None:
        self.idempotency_key = idempotency_key
        self.raw: bytes | None = None
        self.body: Any = None
        self.fault: str | None = None
        self.replayed = False


class TalonHandler:
    """Answers the Talon.One routes of one application.

    Args:
        api_keys: accepted Integration API keys.
        state: the store the operations change; its request log records every call.
        faults: what to inject.
        idempotency: stored answers per Idempotency-Key.
        concurrency_limit: requests in flight per integration ID before 409 (``None``: off).
        sleep: awaited with the injected latency in seconds.
    """

    def __init__(
        self,
        api_keys: Iterable[str],
        state: EmulatorState,
        faults: FaultInjector,
        idempotency: IdempotencyStore,
        concurrency_limit: int | None,
        sleep: Sleep,
    ) -> None:
        self._authorizations: frozenset[str] = frozenset()
        self.set_api_keys(api_keys)
        self._gate = IntegrationIdGate(concurrency_limit) if concurrency_limit is not None else None
        self._sleep = sleep
        self._state = state
        self._faults = faults
        self._idempotency = idempotency
        self._service = IntegrationService(state)

    def set_api_keys(self, api_keys: Iterable[str]) -> None:
        """Accept exactly these keys from now on (a key revoked or issued in Talon.One)."""
        self._authorizations = frozenset(f"ApiKey-v1 {key}" for key in api_keys)

    def route(self, operation: Operation) -> Handler:
        """The HTTP handler of one operation."""
        # A partial rather than a closure awaiting _handle: one coroutine less per request.
        return partial(self._handle, operation)

    async def not_found(self, request: Request) -> Response:
        """The HTTP handler of every path no operation claims (404, after faults and auth)."""
        return await self._handle(None, request)

    async def _handle(self, operation: Operation | None, request: Request) -> Response:
        started = time.time()
        trace = _Trace(request.headers.get(IDEMPOTENCY_HEADER))
        try:
            faults = self._faults
            injection = None if faults.idle else faults.draw()
            if injection is not None and injection.fault is not None and injection.fault.before:
                response = await self._fault_before(
                    request, operation, trace, injection.fault, injection.delay_s
                )
            else:
                status, data = await self._answer(request, operation, trace, injection)
                if injection is not None and injection.fault is not None:
                    # errorPhase "after": processed (and its answer stored), but the answer is
                    # lost.
                    trace.fault = injection.fault.label
                    response = _fault_response(injection.fault)
                else:
                    response = _response(status, data)
        except Exception:
            # A bug must still produce a logged, well-formed answer (and a request log entry).
            logger.exception("%s %s failed", request.method, request.path)
            response = _response(500, _INTERNAL_ERROR)
        self._log(request, operation, trace, response.status, started)
        return response

    async def _fault_before(
        self,
        request: Request,
        operation: Operation | None,
        trace: _Trace,
        fault: Fault,
        delay: float,
    ) -> Response:
        """The injected error instead of the call, which is not processed."""
        if operation is not None and operation.reads_body:
            self._parse_body(request.body, trace)
        if delay > 0:
            await self._sleep(delay)
        trace.fault = fault.label
        return _fault_response(fault)

    async def _answer(
        self,
        request: Request,
        operation: Operation | None,
        trace: _Trace,
        injection: Injection | None,
    ) -> tuple[int, bytes | None]:
        """The status and body of the call's answer (errors included)."""
        delay = 0.0 if injection is None else injection.delay_s
        try:
            raw = None
            if operation is not None and operation.reads_body:
                raw = request.body
            admitted, body = self._admit(request, operation, raw, trace)
            key = trace.idempotency_key
            if key is not None and admitted.name in IDEMPOTENT_OPERATIONS:
                status, data, trace.replayed = await self._run_once(
                    request, admitted, body, check_key(key), delay
                )
                return status, data
            if delay <= 0 and self._unhindered(request, admitted, body):
                # The usual call: nothing to wait for, so no coroutine to await either.
                status, payload = admitted.run(self._service, request, body)
            else:
                status, payload = await self._run(request, admitted, body, delay)
        except ApiError as exc:
            return exc.status, orjson.dumps(exc.body())
        return status, None if payload is None else orjson.dumps(payload)

    @staticmethod
    def _parse_body(raw: bytes, trace: _Trace) -> InvalidDataError | None:
        """Parse the body into ``trace`` (raw bytes only if valid JSON); the parse error, if
        any."""
        try:
            trace.body = parse_json(raw)
        except InvalidDataError as exc:
            return exc
        trace.raw = raw
        return None

    def _admit(
        self, request: Request, operation: Operation | None, raw: bytes | None, trace: _Trace
    ) -> tuple[Operation, Any]:
        """Route found, key accepted, body parsed; in that order, as each check answers."""
        problem = None if raw is None else self._parse_body(raw, trace)
        if operation is None:
            raise NotFoundError(f"Resource not found: {request.method} {request.path}")
        if request.headers.get("Authorization") not in self._authorizations:
            raise UnauthorizedError("Unauthorized: invalid or missing API key")
        if problem is not None:
            raise problem
        return operation, trace.body

    def _unhindered(self, request: Request, operation: Operation, body: Any) -> bool:
        """Whether the operation may run at once: no per-ID gate applies, or nothing else is in
        flight for its integration ID."""
        gate = self._gate
        if gate is None or operation.gate is None:
            return True
        key = self._gate_key(request, operation, body)
        return key is None or not gate.in_flight(operation.gate, key)

    async def _run(self, request: Request, operation: Operation, body: Any, delay: float) -> Result:
        gate = self._gate
        entity = operation.gate
        key = None if gate is None or entity is None else self._gate_key(request, operation, body)
        if gate is None or entity is None or key is None:
            if delay > 0:
                await self._sleep(delay)
            return operation.run(self._service, request, body)
        if delay <= 0 and not gate.in_flight(entity, key):
            # Nothing awaits between here and the answer, so nothing can overlap this one.
            return operation.run(self._service, request, body)
        async with gate.hold(entity, key):
            if delay > 0:
                await self._sleep(delay)
            return operation.run(self._service, request, body)

    async def _run_once(
        self, request: Request, operation: Operation, body: Any, key: str, delay: float
    ) -> tuple[int, bytes | None, bool]:
        """Run an idempotent operation at most once per key; the stored answer otherwise."""
        store = self._idempotency
        path = request.raw_path.partition("?")[0]
        identity = fingerprint(request.method, path, request.query_string, body)
        while True:
            found = store.lookup(key, identity)
            if found is None:
                break
            if isinstance(found, StoredResponse):
                if delay > 0:
                    await self._sleep(delay)
                return found.status, found.body, True
            await found  # the key's first request is still running
        try:
            status, payload = await self._run(request, operation, body, delay)
            data = None if payload is None else orjson.dumps(payload)
        except ConflictError:
            store.abandon(key)  # refused, not processed: a retry must be processed
            raise
        except ApiError as exc:
            status, data = exc.status, orjson.dumps(exc.body())
        except BaseException:
            store.abandon(key)
            raise
        store.complete(key, status, data)
        return status, data, False

    @staticmethod
    def _gate_key(request: Request, operation: Operation, body: Any) -> str | None:
        if operation.name == "updateCustomerSessionV2":
            return request.match_info["customerSessionId"]
        if operation.name == "updateCustomerProfileV2":
            return request.match_info["integrationId"]
        if operation.name in _EVENT_OPERATIONS:
            return _get(body, "profileId")
        return None

    def _log(
        self,
        request: Request,
        operation: Operation | None,
        trace: _Trace,
        status: int,
        started: float,
    ) -> None:
        session_id = request.match_info.get("customerSessionId")
        profile_id: str | None = None
        body = trace.body
        if operation is not None:
            if operation.name == "updateCustomerProfileV2":
                profile_id = request.match_info["integrationId"]
            elif operation.name in _EVENT_OPERATIONS:
                profile_id = _get(body, "profileId")
            elif session_id is not None:
                profile_id = _get(body, "customerSession", "profileId")
                if profile_id is None:
                    stored = self._state.sessions.get(session_id)
                    profile_id = stored.profile_id if stored is not None else None
        self._state.request_log.record(
            method=request.method,
            path=request.path,
            operation=operation.name if operation is not None else None,
            session_id=session_id,
            profile_id=profile_id,
            idempotency_key=trace.idempotency_key,
            query=_query(request),
            body=trace.raw,
            status=status,
            started=started,
            ended=time.time(),
            replayed=trace.replayed,
            fault=trace.fault,
        )

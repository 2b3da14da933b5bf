"""The aiohttp application: Talon.One routes, API-key auth, latency, request log, admin API.

Talon.One paths (as in the Integration API specification)::

    PUT  /v2/customer_sessions/{customerSessionId}          updateCustomerSessionV2
    GET  /v2/customer_sessions/{customerSessionId}          getCustomerSession
    POST /v2/customer_sessions/{customerSessionId}/returns  returnCartItems
    PUT  /v2/customer_sessions/{customerSessionId}/reopen   reopenCustomerSession
    PUT  /v2/customer_profiles/{integrationId}              updateCustomerProfileV2
    POST /v2/events                                         trackEventV2

Admin paths (no auth)::

    GET    /__emulator/health
    GET    /__emulator/requests[?since=SEQ]
    DELETE /__emulator/requests
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from emulator.concurrency import Entity, IntegrationIdGate
from emulator.config import EmulatorConfig
from emulator.errors import ApiError, InvalidDataError, NotFoundError, UnauthorizedError
from emulator.operations import IntegrationService
from emulator.state import EmulatorState
from emulator.validation import parse_bool, parse_json, parse_silent, parse_time

__all__ = ["ADMIN_PREFIX", "STATE_KEY", "create_app"]

logger = logging.getLogger("emulator")

ADMIN_PREFIX = "/__emulator"
STATE_KEY = web.AppKey("emulator_state", EmulatorState)

Sleep = Callable[[float], Awaitable[object]]
Body = dict[str, Any]
_Result = tuple[int, Body | None]
_Run = Callable[[IntegrationService, web.Request, Any], _Result]
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class _Operation:
    name: str
    run: _Run
    reads_body: bool = True
    gate: Entity | None = None


def _session_id(request: web.Request) -> str:
    return request.match_info["customerSessionId"]


def _update_session(service: IntegrationService, request: web.Request, body: Any) -> _Result:
    query = request.query
    dry = parse_bool("dry", query.get("dry"))
    now = parse_time("now", query.get("now"))
    return 200, service.update_customer_session(_session_id(request), body, dry=dry, now=now)


def _get_session(service: IntegrationService, request: web.Request, _body: Any) -> _Result:
    return 200, service.get_customer_session(_session_id(request))


def _return_items(service: IntegrationService, request: web.Request, body: Any) -> _Result:
    dry = parse_bool("dry", request.query.get("dry"))
    return 200, service.return_cart_items(_session_id(request), body, dry=dry)


def _reopen(service: IntegrationService, request: web.Request, _body: Any) -> _Result:
    return 200, service.reopen_customer_session(_session_id(request))


def _update_profile(service: IntegrationService, request: web.Request, body: Any) -> _Result:
    query = request.query
    run_rule_engine = parse_bool("runRuleEngine", query.get("runRuleEngine"))
    dry = parse_bool("dry", query.get("dry"))
    integration_id = request.match_info["integrationId"]
    response = service.update_customer_profile(
        integration_id, body, run_rule_engine=run_rule_engine, dry=dry
    )
    return 200, response


def _track_event(service: IntegrationService, request: web.Request, body: Any) -> _Result:
    query = request.query
    silent = parse_silent(query.get("silent"))
    dry = parse_bool("dry", query.get("dry"))
    parse_bool("forceCompleteEvaluation", query.get("forceCompleteEvaluation"))
    response = service.track_event(body, silent=silent, dry=dry)
    return (204, None) if response is None else (200, response)


def _query(request: web.Request) -> dict[str, str | list[str]]:
    query = request.query
    out: dict[str, str | list[str]] = {}
    for key in query:
        if key in out:
            continue
        values = query.getall(key)
        out[key] = values[0] if len(values) == 1 else list(values)
    return out


def _get(value: Any, *keys: str) -> str | None:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type=_JSON)


class _Api:
    """Request handling shared by every Talon.One route."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState, sleep: Sleep) -> None:
        self._authorizations = frozenset(f"ApiKey-v1 {key}" for key in config.api_keys)
        self._latency = config.latency_ms / 1000
        limit = config.concurrency_limit
        self._gate = IntegrationIdGate(limit) if limit is not None and self._latency > 0 else None
        self._sleep = sleep
        self._state = state
        self._service = IntegrationService(state)

    def route(self, operation: _Operation) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._handle(request, operation)

        return handle

    async def not_found(self, request: web.Request) -> web.Response:
        return await self._handle(request, None)

    async def _handle(self, request: web.Request, operation: _Operation | None) -> web.Response:
        started = time.time()
        body: Any = None
        raw: bytes | None = None
        status: int
        payload: Any
        try:
            raw, body, problem = await self._read(request, operation)
            admitted = self._admit(request, operation, problem)
            status, payload = await self._run(request, admitted, body)
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        except Exception:
            # A bug must still produce a logged, well-formed answer (and a request log entry).
            logger.exception("%s %s failed", request.method, request.path)
            status, payload = 500, {"message": "Internal server error", "StatusCode": 500}
        response = web.Response(status=status) if payload is None else _json(status, payload)
        self._log(request, operation, body, raw, status, started)
        return response

    def _admit(
        self,
        request: web.Request,
        operation: _Operation | None,
        problem: InvalidDataError | None,
    ) -> _Operation:
        """Route found, key accepted, body parsed; in that order, as each check answers."""
        if operation is None:
            raise NotFoundError(f"Resource not found: {request.method} {request.path}")
        if request.headers.get("Authorization") not in self._authorizations:
            raise UnauthorizedError("Unauthorized: invalid or missing API key")
        if problem is not None:
            raise problem
        return operation

    @staticmethod
    async def _read(
        request: web.Request, operation: _Operation | None
    ) -> tuple[bytes | None, Any, InvalidDataError | None]:
        """The raw body (``None`` unless it is valid JSON), the parsed body, the parse error."""
        if operation is None or not operation.reads_body:
            return None, None, None
        raw = await request.read()
        try:
            return raw, parse_json(raw), None
        except InvalidDataError as exc:
            return None, None, exc

    async def _run(self, request: web.Request, operation: _Operation, body: Any) -> _Result:
        if not self._latency:
            # Nothing awaits between here and the answer, so requests cannot overlap.
            return operation.run(self._service, request, body)
        key = self._gate_key(request, operation, body)
        if self._gate is not None and operation.gate is not None and key is not None:
            async with self._gate.hold(operation.gate, key):
                await self._sleep(self._latency)
                return operation.run(self._service, request, body)
        await self._sleep(self._latency)
        return operation.run(self._service, request, body)

    @staticmethod
    def _gate_key(request: web.Request, operation: _Operation, body: Any) -> str | None:
        if operation.name == "updateCustomerSessionV2":
            return request.match_info["customerSessionId"]
        if operation.name == "updateCustomerProfileV2":
            return request.match_info["integrationId"]
        if operation.name == "trackEventV2":
            return _get(body, "profileId")
        return None

    def _log(
        self,
        request: web.Request,
        operation: _Operation | None,
        body: Any,
        raw: bytes | None,
        status: int,
        started: float,
    ) -> None:
        session_id = request.match_info.get("customerSessionId")
        profile_id: str | None = None
        if operation is not None:
            if operation.name == "updateCustomerProfileV2":
                profile_id = request.match_info["integrationId"]
            elif operation.name == "trackEventV2":
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
            idempotency_key=request.headers.get("Idempotency-Key"),
            query=_query(request),
            body=raw,
            status=status,
            started=started,
            ended=time.time(),
        )


def _admin_routes(state: EmulatorState) -> list[web.RouteDef]:
    async def health(_request: web.Request) -> web.Response:
        return _json(
            200,
            {
                "status": "ok",
                "applicationId": state.application_id,
                "campaigns": len(state.campaigns.campaigns),
                "sessions": len(state.sessions),
                "profiles": len(state.profiles),
                "requests": len(state.request_log),
            },
        )

    async def requests(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _json(400, {"message": "since must be an integer", "StatusCode": 400})
        body = state.request_log.to_json(since)
        return web.Response(status=200, body=body, content_type=_JSON)

    async def clear(_request: web.Request) -> web.Response:
        state.request_log.clear()
        return web.Response(status=204)

    return [
        web.get(f"{ADMIN_PREFIX}/health", health),
        web.get(f"{ADMIN_PREFIX}/requests", requests),
        web.delete(f"{ADMIN_PREFIX}/requests", clear),
    ]


def create_app(
    config: EmulatorConfig,
    *,
    state: EmulatorState | None = None,
    sleep: Sleep = asyncio.sleep,
) -> web.Application:
    """The emulator as an aiohttp application.

    Args:
        config: keys, campaigns, latency and IDs.
        state: the store to serve (default: a new one from ``config``); tests keep a reference
            to read the request log. Also available as ``app[STATE_KEY]``.
        sleep: awaited with the latency in seconds (injectable so tests need not wait).
    """
    if state is None:
        state = EmulatorState(
            config.campaigns,
            application_id=config.application_id,
            account_id=config.account_id,
            request_log_size=config.request_log_size,
        )
    api = _Api(config, state, sleep)
    sessions = "/v2/customer_sessions/{customerSessionId}"
    app = web.Application()
    app[STATE_KEY] = state
    app.add_routes(_admin_routes(state))
    app.add_routes(
        [
            web.put(
                sessions,
                api.route(_Operation("updateCustomerSessionV2", _update_session, gate="session")),
            ),
            web.get(
                sessions,
                api.route(_Operation("getCustomerSession", _get_session, reads_body=False)),
                allow_head=False,
            ),
            web.post(
                f"{sessions}/returns", api.route(_Operation("returnCartItems", _return_items))
            ),
            web.put(
                f"{sessions}/reopen",
                api.route(_Operation("reopenCustomerSession", _reopen, reads_body=False)),
            ),
            web.put(
                "/v2/customer_profiles/{integrationId}",
                api.route(_Operation("updateCustomerProfileV2", _update_profile, gate="profile")),
            ),
            web.post(
                "/v2/events", api.route(_Operation("trackEventV2", _track_event, gate="profile"))
            ),
            web.route("*", "/{tail:.*}", api.not_found),
        ]
    )
    return app

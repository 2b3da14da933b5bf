"""The admin API: inspection and fault control, beside the Talon.One paths and without a key.

::

    GET    /__emulator/health               status, counts, whether an outage is on
    GET    /__emulator/requests[?since=SEQ] the request log (entries with seq > SEQ)
    DELETE /__emulator/requests             clear the log (seq keeps counting)
    GET    /__emulator/faults               fault settings + current outage windows
    PUT    /__emulator/faults               replace the fault settings (FaultSettings JSON)
    GET    /__emulator/outage               {"active", "windows"}
    POST   /__emulator/outage               start an outage: {"seconds"?, "startAfterSeconds"?},
                                            or switch it off: {"active": false}
    DELETE /__emulator/outage               end every outage window
    DELETE /__emulator/idempotency          forget every stored Idempotency-Key answer
    PUT    /__emulator/api-keys             accept exactly these keys: {"keys": ["..."]}

Errors are Talon.One-shaped: ``{"message", "errors": [{title, details, source}], "StatusCode"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from talon_one_emulator.http import protocol as http
from talon_one_emulator.http.faults import FaultInjector, FaultSettings
from talon_one_emulator.http.idempotency import IdempotencyStore
from talon_one_emulator.http.protocol import Request, Response, Route
from talon_one_emulator.store.state import EmulatorState

__all__ = ["ADMIN_PREFIX", "admin_routes"]

ADMIN_PREFIX = "/__emulator"
_JSON = "application/json"


class _OutageRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    active: bool = True
    seconds: Annotated[float, Field(gt=0)] | None = None
    start_after_s: Annotated[float, Field(ge=0)] = Field(default=0.0, alias="startAfterSeconds")


def _json(status: int, payload: Any) -> Response:
    return Response(status=status, body=orjson.dumps(payload), content_type=_JSON)


def _invalid(message: str, errors: list[dict[str, Any]]) -> Response:
    return _json(400, {"message": message, "errors": errors, "StatusCode": 400})


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "title": "Invalid",
            "details": error["msg"],
            "source": {
                "pointer": "".join(f"/{part}" for part in error["loc"] if not callable(part))
            },
        }
        for error in exc.errors()
    ]


_M = TypeVar("_M", bound=BaseModel)


def _command(request: Request, model: type[_M]) -> _M | Response:
    """The request's JSON body (``{}`` if empty) validated as ``model``, or the 400 answer that
    says what is wrong with it."""
    raw = request.body
    document: Any = {}
    if raw.strip():
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            error = {"title": "Invalid JSON", "details": str(exc), "source": {"pointer": ""}}
            return _invalid("The submitted data was invalid", [error])
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        return _invalid("The submitted data was invalid", _validation_errors(exc))


class _ApiKeysRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


def admin_routes(
    state: EmulatorState,
    faults: FaultInjector,
    idempotency: IdempotencyStore,
    set_api_keys: Callable[[Iterable[str]], None],
) -> list[Route]:
    """The admin API's routes over one emulator's store, fault injector, idempotency store and
    accepted API keys."""

    async def health(_request: Request) -> Response:
        return _json(
            200,
            {
                "status": "ok",
                "applicationId": state.application_id,
                "campaigns": len(state.campaigns.campaigns),
                "sessions": len(state.sessions),
                "profiles": len(state.profiles),
                "requests": len(state.request_log),
                "idempotencyKeys": len(idempotency),
                "outageActive": faults.outage_active(),
            },
        )

    async def requests(request: Request) -> Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            error = {
                "title": "Invalid type",
                "details": "since must be an integer",
                "source": {"parameter": "since"},
            }
            return _invalid("since must be an integer", [error])
        body = state.request_log.to_json(since)
        return Response(status=200, body=body, content_type=_JSON)

    async def clear_requests(_request: Request) -> Response:
        state.request_log.clear()
        return Response(status=204)

    async def get_faults(_request: Request) -> Response:
        return _json(200, faults.snapshot())

    async def put_faults(request: Request) -> Response:
        settings = _command(request, FaultSettings)
        if isinstance(settings, Response):
            return settings
        # Outage windows are replaced only when the body says which ones it wants.
        faults.apply(settings, keep_outages="outages" not in settings.model_fields_set)
        return _json(200, faults.snapshot())

    def outage_status() -> dict[str, Any]:
        snapshot = faults.snapshot()
        return {"active": snapshot["outageActive"], "windows": snapshot["outageWindows"]}

    async def get_outage(_request: Request) -> Response:
        return _json(200, outage_status())

    async def post_outage(request: Request) -> Response:
        command = _command(request, _OutageRequest)
        if isinstance(command, Response):
            return command
        if command.active:
            faults.start_outage(command.seconds, command.start_after_s)
        else:
            faults.end_outages()
        return _json(200, outage_status())

    async def delete_outage(_request: Request) -> Response:
        faults.end_outages()
        return Response(status=204)

    async def clear_idempotency(_request: Request) -> Response:
        idempotency.clear()
        return Response(status=204)

    async def put_api_keys(request: Request) -> Response:
        command = _command(request, _ApiKeysRequest)
        if isinstance(command, Response):
            return command
        set_api_keys(command.keys)
        return _json(200, {"keys": len(command.keys)})  # never the keys themselves

    return [
        http.get(f"{ADMIN_PREFIX}/health", health),
        http.put(f"{ADMIN_PREFIX}/api-keys", put_api_keys),
        http.get(f"{ADMIN_PREFIX}/requests", requests),
        http.delete(f"{ADMIN_PREFIX}/requests", clear_requests),
        http.get(f"{ADMIN_PREFIX}/faults", get_faults),
        http.put(f"{ADMIN_PREFIX}/faults", put_faults),
        http.get(f"{ADMIN_PREFIX}/outage", get_outage),
        http.post(f"{ADMIN_PREFIX}/outage", post_outage),
        http.delete(f"{ADMIN_PREFIX}/outage", delete_outage),
        http.delete(f"{ADMIN_PREFIX}/idempotency", clear_idempotency),
    ]

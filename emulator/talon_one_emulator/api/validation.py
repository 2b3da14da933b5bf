"""Turning request bodies and query strings into models, or into Talon.One's 400 bodies.

Every failure raises :class:`~talon_one_emulator.errors.InvalidDataError`, whose body is
``{"message": "The submitted data was invalid", "errors": [{title, details, source}]}`` with a
JSON pointer from the body root (``/customerSession/cartItems/0/quantity``) or the offending query
parameter. Titles follow Talon.One's: ``Unknown`` (undeclared attribute), ``Invalid type``,
``enum``, ``required``, ``minimum``, ``minLength``, ``maxLength``, ``maxItems``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from talon_one_emulator.campaigns.file import AttributeType, CampaignSet
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError
from talon_one_emulator.models.integration import (
    MAX_CART_QUANTITY,
    CustomerProfileIntegrationRequestV2,
    IntegrationEventV2Request,
    IntegrationEventV3Request,
    IntegrationRequest,
    MultipleCustomerProfileIntegrationRequest,
    ReturnIntegrationRequest,
)

__all__ = [
    "advanced_event_request",
    "bulk_profile_request",
    "check_attributes",
    "event_request",
    "parse_bool",
    "parse_json",
    "parse_silent",
    "parse_time",
    "profile_request",
    "return_request",
    "session_request",
    "validate_body",
]

_Model = TypeVar("_Model", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}
_TITLES = {
    "missing": "required",
    "literal_error": "enum",
    "greater_than_equal": "minimum",
    "greater_than": "minimum",
    "string_too_short": "minLength",
    "string_too_long": "maxLength",
    "too_short": "minItems",
    "too_long": "maxItems",
}
_TYPE_WORDS: dict[AttributeType, str] = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "time": "valid RFC 3339 time",
    "list": "list",
}


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path segments."""
    return "".join(f"/{_escape(part)}" for part in parts)


def _show(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _detail(error: ErrorDetails) -> ApiErrorDetail:
    loc = error["loc"]
    names = [part for part in loc if isinstance(part, str)]
    name = names[-1] if names else "body"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _EXPECTED:
        title = "Invalid type"
        details = f"{name} must be {_EXPECTED[kind]}, got {_show(error['input'])}"
    elif kind == "literal_error":
        options = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        title, details = "enum", f"{name} must be one of the following: {options}"
    elif kind == "missing":
        title, details = "required", f"{name} is required"
    elif kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        title, details = "minimum", f"{name} must be at least {bound}"
    elif kind in ("string_too_short", "too_short"):
        title, details = _TITLES[kind], f"{name} must have at least {ctx.get('min_length')}"
    elif kind in ("string_too_long", "too_long"):
        title, details = _TITLES[kind], f"{name} must have at most {ctx.get('max_length')}"
    else:
        title, details = "Invalid", f"{name}: {error['msg']}"
    return ApiErrorDetail(title, details, pointer=pointer(*loc))


def _validate(model: type[_Model], body: Any) -> _Model:
    try:
        # The model's validator itself: ``model_validate`` adds a microsecond of argument
        # handling to every request.
        validated: _Model = model.__pydantic_validator__.validate_python(body)
    except ValidationError as exc:
        raise InvalidDataError(tuple(_detail(error) for error in exc.errors())) from exc
    return validated


def validate_body(model: type[_Model], body: Any) -> _Model:
    """Validate a JSON body against a request model; every problem becomes a 400 detail.

    Raises:
        InvalidDataError: the body does not match the model.
    """
    return _validate(model, body)


def parse_json(raw: bytes) -> Any:
    """Parse a request body; an empty or malformed body is a 400."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = ApiErrorDetail("Invalid JSON", f"the body is not valid JSON: {exc}", pointer="")
        raise InvalidDataError((detail,)) from exc


def _type_ok(kind: AttributeType, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_attributes(
    values: Mapping[str, Any] | None,
    declared: Mapping[str, AttributeType],
    entity: str,
    at: tuple[str | int, ...],
    errors: list[ApiErrorDetail],
) -> None:
    """Append an ``Unknown`` or ``Invalid type`` error for every bad custom attribute."""
    if not values:
        return
    for name, value in values.items():
        kind = declared.get(name)
        if kind is None:
            details = f'The attribute "{name}" is not defined on {entity} entities.'
            errors.append(ApiErrorDetail("Unknown", details, pointer=pointer(*at, name)))
        elif value is not None and not _type_ok(kind, value):
            details = f'Value of "{name}" attribute ({_show(value)}) is not a {_TYPE_WORDS[kind]}'
            errors.append(ApiErrorDetail("Invalid type", details, pointer=pointer(*at, name)))


def _raise_if(errors: Iterable[ApiErrorDetail]) -> None:
    collected = tuple(errors)
    if collected:
        raise InvalidDataError(collected)


def session_request(body: Any, campaigns: CampaignSet) -> IntegrationRequest:
    """Validate an update-customer-session body, including declared attributes and cart limits."""
    request = _validate(IntegrationRequest, body)
    session = request.customer_session
    declared = campaigns.attributes
    errors: list[ApiErrorDetail] = []
    base = ("customerSession",)
    check_attributes(
        session.attributes,
        declared.customer_session,
        "CustomerSession",
        (*base, "attributes"),
        errors,
    )
    if session.cart_items:
        quantity = 0
        for index, item in enumerate(session.cart_items):
            quantity += item.quantity
            if item.attributes:
                check_attributes(
                    item.attributes,
                    declared.cart_item,
                    "CartItem",
                    (*base, "cartItems", index, "attributes"),
                    errors,
                )
        if quantity > MAX_CART_QUANTITY:
            details = f"the sum of cart item quantities must not exceed {MAX_CART_QUANTITY}"
            errors.append(ApiErrorDetail("maximum", details, pointer=pointer(*base, "cartItems")))
    _raise_if(errors)
    return request


def return_request(body: Any) -> ReturnIntegrationRequest:
    """Validate a return-cart-items body."""
    return _validate(ReturnIntegrationRequest, body)


def profile_request(body: Any, campaigns: CampaignSet) -> CustomerProfileIntegrationRequestV2:
    """Validate an update-customer-profile body, including declared attributes."""
    request = _validate(CustomerProfileIntegrationRequestV2, body)
    errors: list[ApiErrorDetail] = []
    check_attributes(
        request.attributes,
        campaigns.attributes.customer_profile,
        "CustomerProfile",
        ("attributes",),
        errors,
    )
    _raise_if(errors)
    return request


def bulk_profile_request(
    body: Any, campaigns: CampaignSet
) -> MultipleCustomerProfileIntegrationRequest:
    """Validate an update-multiple-customer-profiles body, including declared attributes."""
    request = _validate(MultipleCustomerProfileIntegrationRequest, body)
    errors: list[ApiErrorDetail] = []
    for index, item in enumerate(request.customer_profiles or ()):
        check_attributes(
            item.attributes,
            campaigns.attributes.customer_profile,
            "CustomerProfile",
            ("customerProfiles", index, "attributes"),
            errors,
        )
    _raise_if(errors)
    return request


def _check_event(
    name: str,
    attributes: Mapping[str, Any] | None,
    campaigns: CampaignSet,
    errors: list[ApiErrorDetail],
) -> None:
    """Append an error for an undeclared event type, or for its bad attributes."""
    event_type = campaigns.event_types.get(name)
    if event_type is None:
        details = f'The event type "{name}" is not defined.'
        errors.append(ApiErrorDetail("Unknown", details, pointer=pointer("type")))
    else:
        declared = {**campaigns.attributes.event, **event_type.attributes}
        check_attributes(attributes, declared, "Event", ("attributes",), errors)


def event_request(body: Any, campaigns: CampaignSet) -> IntegrationEventV2Request:
    """Validate a track-event body: known event type, declared attributes, a ``profileId``."""
    request = _validate(IntegrationEventV2Request, body)
    errors: list[ApiErrorDetail] = []
    if not request.profile_id:
        errors.append(
            ApiErrorDetail("required", "profileId is required", pointer=pointer("profileId"))
        )
    _check_event(request.type, request.attributes, campaigns, errors)
    _raise_if(errors)
    return request


def advanced_event_request(body: Any, campaigns: CampaignSet) -> IntegrationEventV3Request:
    """Validate a track-advanced-event body like a track-event one (``profileId`` and
    ``integrationId`` are required by its schema), with one connected session at most.

    The SDK's spelling ``connectedSessionID`` is folded into ``connected_session_id``; both
    spellings with different values are a 400.
    """
    request = _validate(IntegrationEventV3Request, body)
    errors: list[ApiErrorDetail] = []
    if not request.profile_id:
        errors.append(
            ApiErrorDetail("required", "profileId is required", pointer=pointer("profileId"))
        )
    _check_event(request.type, request.attributes, campaigns, errors)
    sdk_spelling = request.sdk_connected_session_id
    if sdk_spelling is not None:
        if request.connected_session_id not in (None, sdk_spelling):
            details = "connectedSessionId and connectedSessionID name different sessions"
            errors.append(ApiErrorDetail("Invalid", details, pointer=pointer("connectedSessionID")))
        request.connected_session_id = sdk_spelling
    _raise_if(errors)
    return request


def _parameter_error(name: str, details: str) -> InvalidDataError:
    return InvalidDataError((ApiErrorDetail("Invalid type", details, parameter=name),))


def parse_bool(name: str, value: str | None, default: bool = False) -> bool:
    """A boolean query parameter as the SDK sends it (``true``/``false``)."""
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise _parameter_error(name, f"{name} must be a boolean, got {value!r}")


def parse_time(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 query parameter; also accepts the SDK's ``+0000`` offsets."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _parameter_error(name, f"{name} must be an RFC 3339 time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise _parameter_error(name, f"{name} must carry a time zone offset, got {value!r}")
    return parsed


def parse_silent(value: str | None) -> bool:
    """``silent`` is ``yes`` (the default: 204, no body) or ``no``; returns whether silent."""
    if value is None or value == "yes":
        return True
    if value == "no":
        return False
    raise InvalidDataError(
        (
            ApiErrorDetail(
                "enum", "silent must be one of the following: yes, no", parameter="silent"
            ),
        )
    )

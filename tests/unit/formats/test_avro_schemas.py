"""The Avro schemas of ``schemas/``: they parse, each record is paired with its pydantic model
field for field, and events and envelopes survive JSON → model → Avro → model."""

from __future__ import annotations

import io
import re
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from talon_stream._exceptions import DecodeError, TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._envelopes import effects_envelope
from talon_stream.core._events import EVENT_TYPES, Event, decode_event, validate_event
from talon_stream.core._records import InputRecord
from talon_stream.formats.avro import DlqEnvelope, EffectsEnvelope
from talon_stream.formats.avro._datum import JSON_MARK, DatumCodec
from talon_stream.formats.avro._schemas import RECORD_MODELS, SCHEMA_DIR, schemas
from talon_stream.formats.avro.formats import dlq_envelope

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = schemas()
EVENT = SCHEMAS.event
EVENT_CODEC = DatumCodec(EVENT.parsed)


def avro_round_trip(event: Event, writer: Any = None) -> Event:
    """``event`` → Avro datum → bytes (written with ``writer``, the event union by default) →
    read with the event union → event."""
    datum = EVENT_CODEC.to_avro(event.model_dump(by_alias=True))
    if writer is not None:
        datum = datum[1]  # the union's (branch, record): a record schema takes the record
    written = writer if writer is not None else EVENT.parsed
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, written, datum)
    buffer.seek(0)
    read = fastavro.schemaless_reader(buffer, written, EVENT.parsed)
    return validate_event(EVENT_CODEC.from_avro(read))


# --- the files ---------------------------------------------------------------------------------


def test_schemas_at_the_root_is_the_package_directory() -> None:
    assert (ROOT / "schemas").resolve() == SCHEMA_DIR


def _load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


@pytest.mark.parametrize(
    "path",
    sorted(SCHEMA_DIR.rglob("*.avsc")),
    ids=lambda path: str(path.relative_to(SCHEMA_DIR)),
)
def test_every_schema_file_parses(path: Path) -> None:
    named: dict[str, Any] = {}
    events_dir = SCHEMA_DIR / "events"
    if path.parent == events_dir or path == SCHEMA_DIR / "event.avsc":
        # The event files refer to the shared payload types (and the union to the events) by
        # their full names: parsed with those.
        fastavro.parse_schema(_load(events_dir / "payloads.avsc"), named_schemas=named)
        if path.name == "payloads.avsc":
            return
        if path.name == "event.avsc":
            for file in sorted(events_dir.glob("*.avsc")):
                if file.name != "payloads.avsc":
                    fastavro.parse_schema(_load(file), named_schemas=named)
    fastavro.parse_schema(_load(path), named_schemas=named)


def test_every_top_level_schema_is_standalone_and_parses() -> None:
    names = {schema.name for schema in SCHEMAS}
    assert names == {
        "event",
        "effects-envelope",
        "dlq-envelope",
        *(f"{t.replace('.', '-').replace('_', '-')}" for t in EVENT_TYPES),
    }
    for schema in SCHEMAS:
        fastavro.parse_schema(orjson.loads(schema.text))  # no outside names needed


def test_the_event_union_has_one_branch_per_event_type() -> None:
    branches = orjson.loads(EVENT.text)
    tags = [
        next(f["default"] for f in branch["fields"] if f["name"] == "type") for branch in branches
    ]
    assert tags == list(EVENT_TYPES)


# --- pairing: models and records cannot drift -------------------------------------------------


def _avro_records() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for schema in SCHEMAS:
        found.update(schema.records)
    return found


def test_every_record_has_a_model_and_every_model_a_record() -> None:
    assert set(_avro_records()) == set(RECORD_MODELS)


def _without_null(avro_type: Any) -> tuple[Any, bool]:
    if isinstance(avro_type, list):
        others = [branch for branch in avro_type if branch != "null"]
        assert len(others) == 1, f"a union of more than null and one type: {avro_type}"
        return others[0], len(others) < len(avro_type)
    return avro_type, False


def _annotation_without_none(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        assert len(args) == 1, annotation
        return args[0], nullable
    return annotation, False


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _matches(annotation: Any, avro_type: Any, *, json_text: bool, where: str) -> None:
    """Assert that a (non-None) Python type and an Avro type (without null) correspond."""
    annotation = _strip_annotated(annotation)
    if json_text:
        # Open-ended JSON: dict[str, Any] / Any in the model, JSON text in Avro.
        if avro_type == "string":
            assert annotation is Any or typing.get_origin(annotation) is dict, where
            return
        assert isinstance(avro_type, dict), where
        assert avro_type["type"] == "array", where
        assert avro_type["items"] == "string", where
        assert typing.get_origin(annotation) is list, where
        (item,) = typing.get_args(annotation)
        assert typing.get_origin(item) is dict, where
        return
    if isinstance(avro_type, str) and avro_type in RECORD_MODELS:
        assert annotation is RECORD_MODELS[avro_type], where
        return
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        logical = avro_type.get("logicalType")
        if logical in ("timestamp-micros", "timestamp-millis"):
            assert annotation is datetime or getattr(annotation, "__name__", "") in (
                "AwareDatetime",
                "datetime",
            ), where
            return
        if kind in ("record", "error"):
            assert annotation is RECORD_MODELS[avro_type["name"]], where
            return
        if kind == "array":
            assert typing.get_origin(annotation) is list, where
            (item,) = typing.get_args(annotation)
            _matches(item, avro_type["items"], json_text=False, where=f"{where}[]")
            return
        if kind == "map":
            assert typing.get_origin(annotation) is dict, where
            key, value = typing.get_args(annotation)
            assert key is str, where
            _matches(value, avro_type["values"], json_text=False, where=f"{where}{{}}")
            return
        _matches(annotation, kind, json_text=False, where=where)
        return
    primitives = {
        "string": (str,),
        "long": (int,),
        "int": (int,),
        "double": (float,),
        "boolean": (bool,),
        "bytes": (bytes,),
    }
    if typing.get_origin(annotation) is typing.Literal:
        assert avro_type == "string", where
        assert all(isinstance(arg, str) for arg in typing.get_args(annotation)), where
        return
    assert annotation in primitives[avro_type], f"{where}: {annotation} vs {avro_type}"


@pytest.mark.parametrize("record_name", sorted(RECORD_MODELS))
def test_each_model_field_has_its_avro_field_and_back(record_name: str) -> None:
    record = _avro_records()[record_name]
    model: type[BaseModel] = RECORD_MODELS[record_name]
    fields: dict[str, FieldInfo] = {
        info.alias or name: info for name, info in model.model_fields.items()
    }
    avro_fields = {field["name"]: field for field in record["fields"]}
    assert list(fields) == list(avro_fields), "the same fields, in the same order"
    for name, info in fields.items():
        field = avro_fields[name]
        where = f"{record_name}.{name}"
        # Optionality: a field the model does not require has a default in Avro, and back.
        assert ("default" in field) == (not info.is_required()), where
        avro_type, avro_null = _without_null(field["type"])
        annotation, model_none = _annotation_without_none(info.annotation)
        if annotation is Any:
            model_none = True  # Any includes None
        # A nullable model field is a union with null in Avro, and back (JSON text holds a
        # model's None as an Avro null).
        assert avro_null == model_none, where
        if avro_null:
            assert field.get("default", "absent") in (None, "absent"), where
        _matches(annotation, avro_type, json_text=bool(field.get(JSON_MARK)), where=where)


# --- examples and generated events round-trip ---------------------------------------------------


def _documented_events() -> list[bytes]:
    text = (ROOT / "docs" / "events.md").read_text("utf-8")
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    found: list[bytes] = []
    for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL):
        decoder_input = block.strip()
        while decoder_input:
            value, end = _first_json(decoder_input)
            found.append(orjson.dumps(value))
            decoder_input = decoder_input[end:].strip()
    return found


def _first_json(text: str) -> tuple[Any, int]:
    depth = 0
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return orjson.loads(text[: index + 1]), index + 1
    raise AssertionError(f"no JSON object in {text[:40]!r}")


DOCUMENTED = _documented_events()


def test_the_documented_examples_are_found() -> None:
    assert len(DOCUMENTED) == 4


@pytest.mark.parametrize("value", DOCUMENTED, ids=lambda value: orjson.loads(value)["type"])
def test_documented_examples_round_trip(value: bytes) -> None:
    event = decode_event(value)
    assert avro_round_trip(event) == event
    single = SCHEMAS.event_type(event.type)
    assert avro_round_trip(event, single.parsed) == event
    # And back to the same JSON: nothing lost.
    again = avro_round_trip(event)
    assert again.model_dump(mode="json") == event.model_dump(mode="json")


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_codes = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=100)
_numbers = st.floats(allow_nan=False, allow_infinity=False)
#: Avro's long: integers beyond 64 bits have no Avro form (nor a Talon.One meaning).
_longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _longs | _numbers | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
_attributes = st.none() | st.dictionaries(_text, _json, max_size=4)
_costs = st.none() | st.dictionaries(_text, st.fixed_dictionaries({"price": _numbers}), max_size=2)
_moments = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)


def _some(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dictionaries with any subset of ``fields`` (a left-out field is absent, not null)."""
    return st.fixed_dictionaries({}, optional=fields)


_cart_item = st.fixed_dictionaries(
    {"sku": _ids, "quantity": st.integers(min_value=1, max_value=9)},
    optional={
        "name": st.none() | _text,
        "price": st.none() | _numbers,
        "category": st.none() | _text,
        "attributes": _attributes,
        "additionalCosts": _costs,
    },
)
_session_payload = _some(
    {
        "cartItems": st.none() | st.lists(_cart_item, max_size=4),
        "couponCodes": st.none() | st.lists(_codes, max_size=3),
        "referralCode": st.none() | _codes,
        "loyaltyCards": st.none() | st.lists(_text, max_size=1),
        "additionalCosts": _costs,
        "identifiers": st.none() | st.lists(_text, max_size=5),
        "storeIntegrationId": st.none() | _ids,
        "attributes": _attributes,
    }
)
_returned = st.fixed_dictionaries(
    {"quantity": st.integers(min_value=1, max_value=50)},
    optional={"position": st.integers(min_value=0, max_value=2**40), "sku": _ids},
).filter(lambda item: "position" in item or "sku" in item)
_product = st.fixed_dictionaries(
    {"sku": _ids},
    optional={
        "price": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "attributes": _attributes,
        "product": st.none() | st.fixed_dictionaries({"name": _ids}),
    },
)
_payloads: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "cart.updated": _session_payload,
    "order.placed": _session_payload,
    "order.cancelled": _some({"reason": st.none() | _text}),
    "order.reopened": _some({"reason": st.none() | _text}),
    "customer.erased": _some({"reason": st.none() | _text}),
    "product.upserted": _product.filter(lambda payload: payload.get("price") is not None),
    "product.updated": _product,
    "product.deleted": st.fixed_dictionaries({"sku": _ids}),
    "order.items_returned": st.fixed_dictionaries(
        {"items": st.lists(_returned, min_size=1, max_size=4)}
    ),
    "customer.updated": _some(
        {
            "attributes": _attributes,
            "audiencesChanges": st.none()
            | _some({"adds": st.lists(st.integers(0, 2**40)), "deletes": st.lists(_longs)}),
            "runRuleEngine": st.none() | st.booleans(),
        }
    ),
    "customer.event": st.fixed_dictionaries(
        {"eventType": _ids},
        optional={
            "attributes": _attributes,
            "storeIntegrationId": st.none() | _ids,
            "loyaltyCards": st.none() | st.lists(_text, max_size=1),
        },
    ),
}


@st.composite
def events(draw: st.DrawFn) -> Event:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    document: dict[str, Any] = {
        "type": event_type,
        "eventId": draw(_ids),
        "occurredAt": draw(_moments),
        "profileId": draw(_ids if event_type.startswith("customer.") else st.none() | _text),
        "sessionId": draw(
            st.none() | _ids if event_type.startswith(("customer.", "product.")) else _ids
        ),
    }
    payload = draw(_payloads[event_type])
    needed = ("order.items_returned", "customer.event", "product.")
    if payload or event_type.startswith(needed) or draw(st.booleans()):
        document["payload"] = payload
    return validate_event(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_generated_events_round_trip_through_avro(event: Event) -> None:
    assert avro_round_trip(event) == event
    assert avro_round_trip(event, SCHEMAS.event_type(event.type).parsed) == event


@settings(max_examples=100, deadline=None)
@given(events())
def test_generated_events_round_trip_from_json_through_avro(event: Event) -> None:
    from_json = decode_event(event.model_dump_json(by_alias=True))
    back = avro_round_trip(from_json)
    assert back == from_json
    # The same JSON, but for occurredAt: Avro's timestamp-micros keeps the instant, in UTC.
    assert back.occurred_at.utcoffset() == timedelta(0)
    assert back.occurred_at == from_json.occurred_at
    utc = from_json.model_copy(update={"occurred_at": from_json.occurred_at.astimezone(UTC)})
    assert back.model_dump(mode="json") == utc.model_dump(mode="json")


def test_a_writer_on_one_event_type_cannot_pass_for_another() -> None:
    event = decode_event(DOCUMENTED[0])
    datum = EVENT_CODEC.to_avro(event.model_dump(by_alias=True))[1]
    datum["type"] = "order.placed"  # a CartUpdated record that says it is an order
    buffer = io.BytesIO()
    cart = SCHEMAS.event_type("cart.updated").parsed
    fastavro.schemaless_writer(buffer, cart, datum)
    buffer.seek(0)
    document = EVENT_CODEC.from_avro(fastavro.schemaless_reader(buffer, cart, EVENT.parsed))
    assert validate_event(document).type == "order.placed"  # validated as what it says it is


def test_json_text_that_is_not_an_object_is_an_invalid_event() -> None:
    event = decode_event(DOCUMENTED[0])
    datum = EVENT_CODEC.to_avro(event.model_dump(by_alias=True))
    datum[1]["payload"]["attributes"] = "[1, 2]"
    with pytest.raises(DecodeError, match=r"payload\.attributes"):
        validate_event(EVENT_CODEC.from_avro(datum[1]))


# --- the envelopes ------------------------------------------------------------------------------


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


SOURCE = InputRecord(
    topic="shop.carts",
    partition=3,
    offset=1187,
    key=b"customer-00042",
    value=DOCUMENTED[0],
    headers=[("traceparent", b"00-abc-def-01")],
    timestamp_ms=1_795_000_000_120,
)
CALL = TalonCall(
    Operation.UPDATE_CUSTOMER_SESSION,
    "session-0000123",
    {},
    session_id="session-0000123",
    profile_id="c-42",
)
EFFECTS = [
    {
        "campaignId": 1,
        "rulesetId": 11,
        "ruleIndex": 0,
        "ruleName": "20% off with a valid coupon",
        "effectType": "setDiscount",
        "props": {"name": "20% off", "value": 24.6},
        "evaluationGroupID": 4,
        "selectedPrice": 49,
        "someFieldTalonAddsLater": {"nested": [1, "two"]},
    },
    {"campaignId": 1, "rulesetId": 11, "ruleIndex": 0, "ruleName": "r", "effectType": "x"},
]


def _envelope() -> dict[str, Any]:
    body = {
        "effects": EFFECTS,
        "createdCoupons": [{"value": "NEW-1", "usageLimit": 1, "attributes": {}}],
        "customerSession": {
            "integrationId": "session-0000123",
            "profileId": "c-42",
            "state": "open",
            "total": 123.0,
            "cartItemTotal": 123,
            "additionalCostTotal": 0.0,
            "updateCount": 1,
            "couponCodes": ["xmas20"],
            "updated": "2026-11-22T10:15:00Z",
        },
    }
    response = TalonResponse(200, body, elapsed_s=0.01)
    return effects_envelope(SOURCE, decode_event(DOCUMENTED[0]), CALL, response, processing_ms=3.25)


def _write_read(schema: Any, datum: Any) -> Any:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, datum)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, schema, None)


def test_the_effects_envelope_round_trips_and_loses_nothing() -> None:
    envelope = _envelope()
    schema = SCHEMAS.effects_envelope
    codec = DatumCodec(schema.parsed)
    datum = _write_read(schema.parsed, codec.to_avro(envelope))
    first = datum["effects"][0]
    assert orjson.loads(first["props"]) == {"name": "20% off", "value": 24.6}
    assert orjson.loads(first["extra"]) == {"someFieldTalonAddsLater": {"nested": [1, "two"]}}
    assert first["evaluationGroupID"] == 4
    back = codec.from_avro(datum)
    assert _strip_nulls(back) == _strip_nulls(orjson.loads(orjson.dumps(envelope)))


def test_the_effects_envelope_model_reads_the_json_envelope_too() -> None:
    envelope = _envelope()
    schema = SCHEMAS.effects_envelope
    codec = DatumCodec(schema.parsed)
    back = codec.from_avro(_write_read(schema.parsed, codec.to_avro(envelope)))
    model = EffectsEnvelope.model_validate(
        {**back, "effects": [_effect_model_input(e) for e in back["effects"]]}
    )
    assert model.effects[0].extra == {"someFieldTalonAddsLater": {"nested": [1, "two"]}}
    assert model.session is not None
    assert model.session.cart_item_total == 123


def _effect_model_input(effect: dict[str, Any]) -> dict[str, Any]:
    named = set(RECORD_MODELS["talon_stream.Effect"].model_fields) | {
        info.alias for info in RECORD_MODELS["talon_stream.Effect"].model_fields.values()
    }
    extra = {k: v for k, v in effect.items() if k not in named}
    return {**{k: v for k, v in effect.items() if k in named}, "extra": extra or None}


def test_the_dlq_envelope_holds_the_original_record_and_the_error() -> None:
    at = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    error = TalonPermanentError("bad coupon", call=CALL, status=400, body='{"message": "x"}')
    envelope = dlq_envelope(SOURCE, DlqFailure(error, 2, at, at), value=SOURCE.value)
    schema = SCHEMAS.dlq_envelope
    datum = _write_read(schema.parsed, DatumCodec(schema.parsed).to_avro(envelope))
    model = DlqEnvelope.model_validate(datum)
    assert model.value == SOURCE.value
    assert model.key == b"customer-00042"
    assert [(h.name, h.value) for h in model.headers] == SOURCE.headers
    assert (model.error_class, model.http_status, model.attempts) == ("TalonPermanentError", 400, 2)
    assert model.talon_operation == "updateCustomerSessionV2"
    assert model.first_attempt_at == at
    assert model.source_timestamp == datetime.fromtimestamp(1_795_000_000.12, tz=UTC)

"""The Avro schemas of ``schemas/``, read and parsed with fastavro once, each paired with its
pydantic model.

``schemas/`` (a link to this package's ``avsc/`` directory, so that the schemas ship in the
wheel and the image) holds:

* ``events/payloads.avsc`` — the named types the events share (cart items, payloads, …), a list;
* ``events/<type>.avsc`` — one record per input event type (``cart-updated.avsc`` for
  ``cart.updated``, …), referring to the payload types by full name;
* ``event.avsc`` — the union of every event type: what an input topic's value schema is, since any
  topic may carry any event type (a writer may also register one event type's record alone);
* ``effects-envelope.avsc``, ``dlq-envelope.avsc`` — what the worker writes;
* ``history/<name>/v<N>.avsc`` — the released versions, for the backward compatibility check
  (:mod:`talon_stream.formats.avro._compat`).

Every top-level schema is made *standalone* — each named type defined inline where it is first
used — which is the text registered in the Schema Registry and the one parsed here. Open-ended
JSON values are strings marked ``"talon.stream.json": true`` (see
:mod:`talon_stream.formats.avro._datum`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from pydantic import BaseModel

from talon_stream._exceptions import ConfigurationError
from talon_stream.core import _events as events
from talon_stream.formats.avro import _models as models
from talon_stream.formats.avro._datum import named_types

__all__ = [
    "EVENT_FILES",
    "NAMESPACE",
    "RECORD_MODELS",
    "SCHEMA_DIR",
    "AvroSchema",
    "SchemaSet",
    "load_schemas",
    "record_branches",
    "schemas",
    "standalone",
]

#: Where the ``.avsc`` files are (``schemas/`` at the repository's root links here).
SCHEMA_DIR = Path(__file__).resolve().with_name("avsc")
NAMESPACE = "talon_stream"

#: The file of each event type, in ``schemas/events/``.
EVENT_FILES: Mapping[str, str] = {
    "cart.updated": "cart-updated",
    "order.placed": "order-placed",
    "order.cancelled": "order-cancelled",
    "order.items_returned": "order-items-returned",
    "order.reopened": "order-reopened",
    "customer.updated": "customer-updated",
    "customer.event": "customer-event",
    "customer.erased": "customer-erased",
    "product.upserted": "product-upserted",
    "product.updated": "product-updated",
    "product.deleted": "product-deleted",
}
assert set(EVENT_FILES) == set(events.EVENT_TYPES), "an event type has no schema file"

#: The pydantic model of every Avro record, by the record's full name.
RECORD_MODELS: Mapping[str, type[BaseModel]] = {
    f"{NAMESPACE}.{model.__name__}": model
    for model in (
        events.CartUpdated,
        events.OrderPlaced,
        events.OrderCancelled,
        events.OrderItemsReturned,
        events.OrderReopened,
        events.CustomerUpdated,
        events.CustomerEvent,
        events.CustomerErased,
        events.ProductUpserted,
        events.ProductUpdated,
        events.ProductDeleted,
        events.ProductRef,
        events.ProductPayload,
        events.SkuPayload,
        events.AdditionalCost,
        events.CartItem,
        events.SessionPayload,
        events.ReturnedItem,
        events.ReturnedItemsPayload,
        events.EmptyPayload,
        events.AudiencesChanges,
        events.CustomerUpdatedPayload,
        events.CustomerEventPayload,
        models.EffectsEnvelope,
        models.EnvelopeSource,
        models.Effect,
        models.SessionSummary,
        models.SupersededBy,
        models.CoalescedInto,
        models.DlqEnvelope,
        models.DlqHeader,
    )
}

_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
_NAMED = frozenset(("record", "error", "enum", "fixed"))


@dataclass(frozen=True)
class AvroSchema:
    """One top-level schema: its name (the file's, without ``.avsc``), its standalone text (what
    is registered), and that text parsed by fastavro."""

    name: str
    path: Path
    text: str
    parsed: Any

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Every record of the schema (nested ones too), by full name."""
        named = named_types(orjson.loads(self.text))
        return {name: named[name] for name in named if named[name]["type"] in ("record", "error")}


class SchemaSet:
    """The schemas of one ``schemas/`` directory."""

    def __init__(self, directory: Path, by_name: dict[str, AvroSchema]) -> None:
        self.directory = directory
        self._by_name = by_name

    def __getitem__(self, name: str) -> AvroSchema:
        return self._by_name[name]

    def __iter__(self) -> Iterator[AvroSchema]:
        return iter(self._by_name.values())

    @property
    def event(self) -> AvroSchema:
        """The union of every event type: the reader schema of input topics."""
        return self._by_name["event"]

    @property
    def effects_envelope(self) -> AvroSchema:
        return self._by_name["effects-envelope"]

    @property
    def dlq_envelope(self) -> AvroSchema:
        return self._by_name["dlq-envelope"]

    def event_type(self, event_type: str) -> AvroSchema:
        """The record of one event type (``cart.updated``, …), standalone."""
        return self._by_name[EVENT_FILES[event_type]]


def load_schemas(directory: Path = SCHEMA_DIR) -> SchemaSet:
    """Read and parse every schema of ``directory``.

    Raises:
        ConfigurationError: a file is missing, is not JSON, or is not a valid Avro schema.
    """
    named: dict[str, Any] = {}
    for definition in _read(directory / "events" / "payloads.avsc"):
        _collect(definition, NAMESPACE, named)
    tops: dict[str, tuple[Path, Any]] = {}
    for file in EVENT_FILES.values():
        path = directory / "events" / f"{file}.avsc"
        raw = _read(path)
        _collect(raw, NAMESPACE, named)
        tops[file] = (path, raw)
    for file in ("event", "effects-envelope", "dlq-envelope"):
        path = directory / f"{file}.avsc"
        raw = _read(path)
        _collect(raw, NAMESPACE, named)
        tops[file] = (path, raw)
    by_name: dict[str, AvroSchema] = {}
    for name, (path, raw) in tops.items():
        text = standalone(raw, named)
        try:
            parsed = fastavro.parse_schema(orjson.loads(text))
        except (fastavro.schema.SchemaParseException, ValueError, TypeError, KeyError) as exc:
            raise ConfigurationError(f"{path}: not a valid Avro schema: {exc}") from exc
        by_name[name] = AvroSchema(name, path, text, parsed)
    return SchemaSet(directory, by_name)


@functools.cache
def schemas() -> SchemaSet:
    """The package's schemas, read and parsed on first use, then shared."""
    return load_schemas()


def standalone(schema: Any, named: Mapping[str, Any], namespace: str = NAMESPACE) -> str:
    """``schema`` as self-contained JSON text: each named type it refers to is defined inline
    where it is first used (full names throughout)."""
    return orjson.dumps(_inline(schema, namespace, named, set())).decode()


def record_branches(schema: Any) -> list[tuple[str, str]] | None:
    """The records of a union (or the one record of a record schema) as ``(full name,
    standalone JSON text)``; ``None`` when ``schema`` is neither."""
    named: dict[str, Any] = {}
    _collect(schema, "", named)
    found = []
    for branch in schema if isinstance(schema, list) else [schema]:
        if not isinstance(branch, dict) or branch.get("type") not in ("record", "error"):
            return None
        full = _full_name(branch["name"], str(branch.get("namespace", "")))
        found.append((full, standalone(branch, named, namespace="")))
    return found


def _read(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the Avro schema {path}: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: not JSON: {exc}") from exc


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _collect(schema: Any, namespace: str, into: dict[str, Any]) -> None:
    """Record every named type defined in ``schema`` (raw JSON) by its full name."""
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, namespace, into)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED:
            namespace = schema.get("namespace", namespace)
            full = _full_name(schema["name"], namespace)
            namespace = full.rpartition(".")[0]
            into[full] = {**schema, "__namespace": namespace}
            for field in schema.get("fields", ()):
                _collect(field["type"], namespace, into)
        elif kind == "array":
            _collect(schema["items"], namespace, into)
        elif kind == "map":
            _collect(schema["values"], namespace, into)
        elif isinstance(kind, dict | list):
            _collect(kind, namespace, into)


def _inline(schema: Any, namespace: str, named: Mapping[str, Any], seen: set[str]) -> Any:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return schema
        full = _full_name(schema, namespace)
        if full in seen or full not in named:
            return full
        return _inline(named[full], named[full]["__namespace"], named, seen)
    if isinstance(schema, list):
        return [_inline(branch, namespace, named, seen) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    out = {key: value for key, value in schema.items() if not key.startswith("__")}
    if kind in _NAMED:
        namespace = str(schema.get("__namespace", schema.get("namespace", namespace)))
        full = _full_name(schema["name"], namespace)
        if full in seen:
            return full
        seen.add(full)
        out.pop("namespace", None)
        out["name"] = full
        if "fields" in schema:
            out["fields"] = [
                {**field, "type": _inline(field["type"], namespace, named, seen)}
                for field in schema["fields"]
            ]
    elif kind == "array":
        out["items"] = _inline(schema["items"], namespace, named, seen)
    elif kind == "map":
        out["values"] = _inline(schema["values"], namespace, named, seen)
    elif isinstance(kind, dict | list):
        out["type"] = _inline(kind, namespace, named, seen)
    return out

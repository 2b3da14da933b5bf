"""Between JSON-shaped values (what the pydantic models validate and the JSON envelopes are) and
Avro datums (what fastavro writes and reads), for one schema.

Avro has no type for "any JSON value", and Talon.One's effects, their props, created coupons and
custom attributes are exactly that. Such a field is a ``string`` (or an array of strings) marked
``"talon.stream.json": true`` in the schema and holds JSON text; a record marked
``"talon.stream.rest": "<field>"`` keeps every key of the JSON object that it does not name, as a
JSON object in that field (``Effect.extra``). So nothing Talon.One returns is lost, and readers
in other languages still get a plain Avro record.

A union of several records (the event union) is written by the branch whose ``type`` field's
default equals the value's ``type`` (fastavro's tuple notation), so no guessing by fields.

The conversions are compiled once per schema into closures; parts of a schema that hold no JSON
text are passed through untouched. :meth:`DatumCodec.from_avro` changes the datum in place
(fastavro's output is fresh); :meth:`DatumCodec.to_avro` never changes its argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["JSON_MARK", "REST_MARK", "DatumCodec", "named_types"]

JSON_MARK = "talon.stream.json"
REST_MARK = "talon.stream.rest"

Convert = Callable[[Any], Any]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class DatumCodec:
    """The conversions of one schema (the standalone JSON, parsed or not: full names
    throughout)."""

    def __init__(self, schema: Any) -> None:
        self._named: dict[str, Any] = named_types(schema)
        self._to: dict[str, Convert | None] = {}
        self._from: dict[str, Convert | None] = {}
        self._to_avro = self._compile(schema, self._to, self._record_to) or _same
        self._from_avro = self._compile(schema, self._from, self._record_from) or _same

    def to_avro(self, value: Any) -> Any:
        """The Avro datum of a JSON-shaped ``value`` (raises ``TypeError`` or ``ValueError``
        for a JSON value that cannot be serialized)."""
        return self._to_avro(value)

    def from_avro(self, datum: Any) -> Any:
        """The JSON-shaped value of a datum fastavro read (raises ``orjson.JSONDecodeError``
        for a JSON field whose text is not JSON)."""
        return self._from_avro(datum)

    # --- compilation --------------------------------------------------------------------------

    def _compile(
        self,
        schema: Any,
        cache: dict[str, Convert | None],
        record: Callable[[dict[str, Any], dict[str, Convert | None]], Convert | None],
    ) -> Convert | None:
        if isinstance(schema, str):
            if schema not in self._named:
                return None
            if schema not in cache:
                return self._compile(self._named[schema], cache, record)
            converted = cache[schema]
            if converted is _pending:  # a recursive reference: resolved when called
                return lambda value: _call(cache[schema], value)
            return converted
        if isinstance(schema, list):
            return self._union(schema, cache, record)
        kind = schema.get("type")
        if kind in ("record", "error"):
            cache[schema["name"]] = _pending
            converted = record(schema, cache)
            cache[schema["name"]] = converted
            return converted
        if kind == "array":
            items = self._compile(schema["items"], cache, record)
            return None if items is None else (lambda value: [items(item) for item in value])
        if kind == "map":
            values = self._compile(schema["values"], cache, record)
            if values is None:
                return None
            return lambda value: {key: values(item) for key, item in value.items()}
        if isinstance(kind, dict | list):
            return self._compile(kind, cache, record)
        return None

    def _union(
        self,
        branches: list[Any],
        cache: dict[str, Convert | None],
        record: Callable[[dict[str, Any], dict[str, Convert | None]], Convert | None],
    ) -> Convert | None:
        others = [branch for branch in branches if branch != "null"]
        if len(others) == 1:
            inner = self._compile(others[0], cache, record)
            if inner is None:
                return None
            return lambda value: None if value is None else inner(value)
        tagged: dict[str, tuple[str, Convert | None]] = {}
        for branch in others:
            definition = self._named.get(branch) if isinstance(branch, str) else branch
            if isinstance(definition, dict) and definition.get("type") == "record":
                tag = next(
                    (f.get("default") for f in definition["fields"] if f["name"] == "type"), None
                )
                if isinstance(tag, str):
                    tagged[tag] = (definition["name"], self._compile(branch, cache, record))
        if not tagged:
            return None
        writing = record == self._record_to

        def by_type(value: Any) -> Any:
            if not isinstance(value, dict):
                return value
            found = tagged.get(value.get("type"))  # type: ignore[arg-type]
            if found is None:
                return value
            name, convert = found
            converted = value if convert is None else convert(value)
            return (name, converted) if writing else converted

        return by_type

    def _record_to(
        self, schema: dict[str, Any], cache: dict[str, Convert | None]
    ) -> Convert | None:
        fields: list[tuple[str, Convert | None]] = []
        for field in schema["fields"]:
            convert = (
                _json_to(field["type"])
                if field.get(JSON_MARK)
                else self._compile(field["type"], cache, self._record_to)
            )
            fields.append((field["name"], convert))
        rest = schema.get(REST_MARK)
        if rest is None and all(convert is None for _, convert in fields):
            return None
        names = frozenset(name for name, _ in fields)

        def to_avro(value: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, convert in fields:
                if name in value:
                    item = value[name]
                    out[name] = item if convert is None or item is None else convert(item)
            if rest is not None:
                extra = {key: item for key, item in value.items() if key not in names}
                out[rest] = _dumps(extra) if extra else None
            return out

        return to_avro

    def _record_from(
        self, schema: dict[str, Any], cache: dict[str, Convert | None]
    ) -> Convert | None:
        fields: list[tuple[str, Convert]] = []
        for field in schema["fields"]:
            convert = (
                _json_from(field["type"])
                if field.get(JSON_MARK)
                else self._compile(field["type"], cache, self._record_from)
            )
            if convert is not None:
                fields.append((field["name"], convert))
        rest = schema.get(REST_MARK)
        if rest is None and not fields:
            return None

        def from_avro(datum: dict[str, Any]) -> dict[str, Any]:
            for name, convert in fields:
                item = datum.get(name)
                if item is not None:
                    datum[name] = convert(item)
            if rest is not None:
                extra = datum.pop(rest, None)
                if extra:
                    return {**extra, **datum}
            return datum

        return from_avro


def _same(value: Any) -> Any:
    return value


def _pending(value: Any) -> Any:
    raise AssertionError("a record's conversion was used before it was compiled")


def _call(convert: Convert | None, value: Any) -> Any:
    return value if convert is None else convert(value)


def _is_array(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(_is_array(branch) for branch in schema)
    return isinstance(schema, dict) and schema.get("type") == "array"


def _json_to(schema: Any) -> Convert:
    if _is_array(schema):
        return lambda value: [_dumps(item) for item in value]
    return _dumps


def _json_from(schema: Any) -> Convert:
    if _is_array(schema):
        return lambda value: [orjson.loads(item) for item in value]
    return orjson.loads


def named_types(schema: Any) -> dict[str, dict[str, Any]]:
    """Every named type of ``schema`` (records, errors, enums, fixed; nested ones too) by full
    name. A fastavro-parsed schema carries them too."""
    found: dict[str, dict[str, Any]] = {}
    _index(schema, found)
    return found


def _index(schema: Any, into: dict[str, dict[str, Any]]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _index(branch, into)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            into[schema["name"]] = schema
            for field in schema.get("fields", ()):
                _index(field["type"], into)
        elif kind == "array":
            _index(schema["items"], into)
        elif kind == "map":
            _index(schema["values"], into)
        elif isinstance(kind, dict | list):
            _index(kind, into)

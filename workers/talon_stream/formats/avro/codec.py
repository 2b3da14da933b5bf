"""Records in the Confluent wire format: a zero magic byte, the writer schema's id (4 bytes, big
endian), then the Avro binary encoding of the value.

:class:`AvroDecoder` reads input records with fastavro directly: the writer schema comes from
:class:`~talon_stream.formats.avro.registry.WriterSchemas` (fetched ahead, parsed once), and the
datum is
resolved to the reader schema — ours, ``schemas/event.avsc`` — by Avro's schema resolution, so a
writer on an older (or newer, compatible) schema, or one that registered a single event type's
record, is read all the same. A writer on exactly our schema needs no resolution, and is read
record by record (a union's branch index first): fastavro parses a top-level union schema again
on every read. :class:`~confluent_kafka.schema_registry.avro.AvroDeserializer` does the same
work with a per-record subject lookup, rule machinery and schema expansion on top, and the
union parse; ``bench/avro_decode.py`` measures both.

:class:`AvroEncoder` writes the worker's output with
:class:`~confluent_kafka.schema_registry.avro.AvroSerializer`, subjects by the topic name
strategy (``<topic>-value``). Its schema is registered (or, without auto-registration, looked
up) by :meth:`AvroEncoder.register` at start-up, so publishing never waits for the registry.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import fastavro
import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from fastavro import schemaless_reader
from fastavro.read import SchemaResolutionError
from fastavro.utils import generate_one

from talon_stream._exceptions import ConfigurationError, DecodeError
from talon_stream.core._events import Event, validate_event
from talon_stream.formats.avro._datum import DatumCodec
from talon_stream.formats.avro._errors import EncodeError
from talon_stream.formats.avro._schemas import AvroSchema, record_branches
from talon_stream.formats.avro.registry import WriterSchema, WriterSchemas, translate_error

__all__ = ["AvroDecoder", "AvroEncoder", "schema_id_of"]

MAGIC = 0
#: What fastavro raises on bytes that are not Avro of the schema (truncated, corrupt, a writer
#: schema that does not resolve to the reader's).
_READ_ERRORS = (
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
    SchemaResolutionError,
)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return f"the data ends too early ({exc})" if str(exc) else "the data ends too early"
    return str(exc) or type(exc).__name__


def schema_id_of(value: bytes | None) -> int:
    """The schema id of a wire format ``value``.

    Raises:
        DecodeError: the value is empty or not in the Confluent wire format.
    """
    if not value:
        raise DecodeError("the record has no value (an Avro event is required)")
    if len(value) < 6 or value[0] != MAGIC:
        hint = ""
        if value[:1] in (b"{", b"["):
            hint = " (it looks like JSON: check TALON_STREAM_TOPIC_FORMATS for this topic)"
        raise DecodeError(
            "not in the Confluent Avro wire format (a zero magic byte, a 4-byte schema id, "
            f"the Avro data): the value has {len(value)} bytes, starting {value[:5].hex()}{hint}"
        )
    return int.from_bytes(value[1:5], "big")


@dataclass(frozen=True, slots=True)
class _Branch:
    """How to read one record a writer schema may hold: with its own schema (``reader`` ``None``:
    it is the reader's record as it is) or resolved to the reader's record."""

    writer: Any
    reader: Any


class _Plan:
    """How to read the values of one writer schema: per union branch (``union``), or one way.
    A string is why a branch cannot be read."""

    __slots__ = ("branches", "union")

    def __init__(self, branches: list[_Branch | str], *, union: bool) -> None:
        self.branches = branches
        self.union = union


class AvroDecoder:
    """Decodes wire format values with one reader schema: input records to events (or, for a
    mapped topic, to plain documents), DLQ records to DLQ envelopes."""

    def __init__(self, writers: WriterSchemas, reader: AvroSchema) -> None:
        self.writers = writers
        self._name = reader.name
        self._reader = reader.parsed
        self._datum = DatumCodec(reader.parsed)
        #: The reader's records by full name: (parsed, shape).
        self._records: dict[str, tuple[Any, bytes]] = {}
        for name, text in record_branches(orjson.loads(reader.text)) or []:
            self._records[name] = (fastavro.parse_schema(orjson.loads(text)), _shape(text))
        self._plans: dict[int, _Plan] = {}
        self._documents: dict[int, _Plan] = {}

    def _stream(self, value: bytes | None) -> tuple[WriterSchema, io.BytesIO]:
        schema_id = schema_id_of(value)
        assert value is not None  # schema_id_of() refuses an empty value
        writer = self.writers.get(schema_id)
        if writer is None:
            raise DecodeError(self.writers.missing(schema_id))
        stream = io.BytesIO(value)
        stream.seek(5)
        return writer, stream

    def _plan(self, writer: WriterSchema) -> _Plan:
        """Read a top-level union branch by branch, each with a record schema: fastavro parses
        a union schema again on every call, a record schema once (``bench/avro_decode.py``). A
        branch that is the reader's record as it is needs no resolution either."""
        plan = self._plans.get(writer.schema_id)
        if plan is not None:
            return plan
        branches = record_branches(writer.raw)
        if branches is None:  # not records: resolve the whole schema, the slow way
            plan = _Plan([_Branch(writer.parsed, self._reader)], union=False)
        else:
            found: list[_Branch | str] = []
            for name, text in branches:
                reader = self._records.get(name) or self._by_short_name(name)
                if reader is None:
                    found.append(f"its record {name} is not a record of {self._name}.avsc")
                    continue
                parsed, shape = reader
                writer_parsed = fastavro.parse_schema(orjson.loads(text))
                found.append(_Branch(writer_parsed, None if _shape(text) == shape else parsed))
            plan = _Plan(found, union=isinstance(writer.raw, list))
        self._plans[writer.schema_id] = plan
        return plan

    def _by_short_name(self, name: str) -> tuple[Any, bytes] | None:
        short = name.rpartition(".")[2]
        for full, reader in self._records.items():
            if full.rpartition(".")[2] == short:
                return reader
        return None

    def read(self, value: bytes | None) -> Any:
        """The JSON-shaped document of ``value``, read with the reader schema (the event union,
        for input records).

        Raises:
            DecodeError: not the wire format, an unknown schema id, not Avro of that schema, a
                writer schema that does not resolve to the event schema, or JSON text fields
                that are not JSON.
        """
        writer, stream = self._stream(value)
        schema_id = writer.schema_id
        try:
            datum = _read(stream, self._plan(writer))
        except _READ_ERRORS as exc:
            raise DecodeError(
                f"not valid Avro of schema id {schema_id} for {self._name}.avsc: {_reason(exc)}"
            ) from exc
        except _BranchError as exc:
            raise DecodeError(f"schema id {schema_id}: {exc}") from exc
        try:
            return self._datum.from_avro(datum)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(
                f"a JSON text field (such as attributes) of schema id {schema_id} is not JSON: "
                f"{exc}"
            ) from exc

    def decode_event(self, value: bytes | None) -> Event:
        """The event of ``value``: :meth:`read`, then the same validation as a JSON event.

        Raises:
            DecodeError: see :meth:`read`; or the event is invalid (the message names each
                offending field, as for JSON).
        """
        return validate_event(self.read(value))

    def read_document(self, value: bytes | None) -> Any:
        """``value`` read with its own writer schema only: a shop's own Avro document, for the
        mapping of its topic (``docs/mapping.md``).

        Raises:
            DecodeError: not the wire format, an unknown schema id, or not Avro of that schema.
        """
        writer, stream = self._stream(value)
        plan = self._documents.get(writer.schema_id)
        if plan is None:
            branches = record_branches(writer.raw)
            if branches is None:
                plan = _Plan([_Branch(writer.parsed, None)], union=False)
            else:
                plan = _Plan(
                    [_Branch(fastavro.parse_schema(orjson.loads(t)), None) for _, t in branches],
                    union=isinstance(writer.raw, list),
                )
            self._documents[writer.schema_id] = plan
        try:
            return _read(stream, plan)
        except (*_READ_ERRORS, _BranchError) as exc:
            raise DecodeError(
                f"not valid Avro of schema id {writer.schema_id}: {_reason(exc)}"
            ) from exc


class _BranchError(Exception):
    """The union branch a value names cannot be read."""


def _read(stream: io.BytesIO, plan: _Plan) -> Any:
    if plan.union:
        index = _read_long(stream)
        if not 0 <= index < len(plan.branches):
            raise _BranchError(f"the union has no branch {index}")
        branch = plan.branches[index]
    else:
        branch = plan.branches[0]
    if isinstance(branch, str):
        raise _BranchError(branch)
    return schemaless_reader(stream, branch.writer, branch.reader)


def _read_long(stream: io.BytesIO) -> int:
    """An Avro ``long``: a zig-zag varint (a union's branch index)."""
    result = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise EOFError("the data ends inside a union index")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7
        if shift > 63:
            raise ValueError("a union index longer than 10 bytes")


def _shape(text: str) -> bytes:
    """What decides how a schema's data decodes: the schema without its docs, keys sorted."""
    return orjson.dumps(_without_docs(orjson.loads(text)), option=orjson.OPT_SORT_KEYS)


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _without_docs(value) for key, value in schema.items() if key != "doc"}
    if isinstance(schema, list):
        return [_without_docs(item) for item in schema]
    return schema


class AvroEncoder:
    """Writes JSON-shaped values of one schema (an envelope) in the wire format."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        schema: AvroSchema,
        *,
        url: str,
        auto_register: bool,
    ) -> None:
        self.schema = schema
        self.url = url
        self.auto_register = auto_register
        self._datum = DatumCodec(schema.parsed)
        self._serializer = AvroSerializer(
            client,
            schema.text,
            conf={
                "auto.register.schemas": auto_register,
                "subject.name.strategy": topic_subject_name_strategy,
            },
        )
        self._contexts: dict[str, SerializationContext] = {}

    def register(self, topic: str) -> None:
        """Register the schema under ``<topic>-value`` (or look it up, without auto-registration)
        by encoding a sample datum: afterwards, encoding for ``topic`` makes no registry call.
        Blocks on HTTP: call it on a thread.

        Raises:
            ConfigurationError: the registry refused the schema (incompatible with the subject's
                latest version, or not registered while auto-registration is off).
            RegistryError: the registry cannot be reached.
        """
        subject = f"{topic}-value"
        try:
            self._serializer(generate_one(self.schema.parsed), self._context(topic))
        except SchemaRegistryError as exc:
            if exc.http_status_code in (404, 409, 422):
                action = "registering" if self.auto_register else "looking up"
                fix = (
                    "the subject's latest version is not compatible with it: see docs/events.md, "
                    "Avro and Schema Registry"
                    if exc.http_status_code == 409
                    else "register it, or set TALON_STREAM_SCHEMA_REGISTRY_AUTO_REGISTER=true"
                )
                raise ConfigurationError(
                    f"the Schema Registry {self.url} refused {action} {self.schema.name}.avsc "
                    f"under {subject!r}: {exc.error_message} ({fix})"
                ) from exc
            raise translate_error(exc, self.url, f"registering {subject}") from exc
        except Exception as exc:  # the HTTP client's transport errors: translated, re-raised
            raise translate_error(exc, self.url, f"registering {subject}") from exc

    def encode(self, topic: str, value: Any) -> bytes:
        """``value`` (JSON-shaped, as the JSON output would be) in the wire format.

        Raises:
            EncodeError: the value does not fit the schema.
        """
        try:
            encoded = self._serializer(self._datum.to_avro(value), self._context(topic))
        except (ValueError, TypeError, KeyError, SerializationError, orjson.JSONEncodeError) as exc:
            raise EncodeError(str(exc), topic=topic) from exc
        assert isinstance(encoded, bytes)  # only None in, None out
        return encoded

    def _context(self, topic: str) -> SerializationContext:
        context = self._contexts.get(topic)
        if context is None:
            context = self._contexts[topic] = SerializationContext(topic, MessageField.VALUE)
        return context

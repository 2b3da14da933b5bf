"""Avro and the Schema Registry (``docs/events.md``, "Avro and Schema Registry").

The public API is what this package exports: the schemas of ``schemas/`` paired with their
models, the conversions between JSON-shaped values and Avro datums, the compatibility check and
the errors. These need fastavro and pydantic only. The parts that talk to a Schema Registry
import ``confluent_kafka.schema_registry``, so they are imported by their module, and only when a
topic is Avro:

* :mod:`talon_stream.formats.avro.registry` — the registry client, writer schemas fetched ahead of
  decoding;
* :mod:`talon_stream.formats.avro.codec` — the Confluent wire format: decoding input, encoding
  output;
* :mod:`talon_stream.formats.avro.formats` — per-topic formats, what the worker and the DLQ replay
  use.
"""

from talon_stream.formats.avro._compat import Incompatibility, check_backward, history
from talon_stream.formats.avro._datum import DatumCodec
from talon_stream.formats.avro._errors import EncodeError, RegistryError
from talon_stream.formats.avro._models import (
    CoalescedInto,
    DlqEnvelope,
    DlqHeader,
    Effect,
    EffectsEnvelope,
    EnvelopeSource,
    SessionSummary,
    SupersededBy,
)
from talon_stream.formats.avro._schemas import (
    RECORD_MODELS,
    AvroSchema,
    SchemaSet,
    load_schemas,
    schemas,
)

__all__ = [
    "RECORD_MODELS",
    "AvroSchema",
    "CoalescedInto",
    "DatumCodec",
    "DlqEnvelope",
    "DlqHeader",
    "Effect",
    "EffectsEnvelope",
    "EncodeError",
    "EnvelopeSource",
    "Incompatibility",
    "RegistryError",
    "SchemaSet",
    "SessionSummary",
    "SupersededBy",
    "check_backward",
    "history",
    "load_schemas",
    "schemas",
]

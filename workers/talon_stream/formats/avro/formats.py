"""Per-topic record formats: what changes for the topics whose format is Avro.

``TALON_STREAM_TOPIC_FORMATS`` gives each topic a format, ``json`` (the default) or ``avro``; an
Avro topic needs ``TALON_STREAM_SCHEMA_REGISTRY_URL``. :func:`avro_formats` builds, once at
start-up, an :class:`AvroFormats` for the worker — or ``None`` when no topic it reads or writes is
Avro, so the JSON path does no extra work at all:

* an Avro **input** topic's records are decoded by
:class:`~talon_stream.formats.avro.codec.AvroDecoder` (or,
  when the mapping file maps the topic, read as plain documents and mapped);
* an Avro **effects** topic (the effects topic or a routed one) gets each envelope in the
  wire format, ``schemas/effects-envelope.avsc``;
* an Avro **DLQ** topic gets a ``schemas/dlq-envelope.avsc`` record as the value — the original
  key, value and headers and the error — with the same ``talon-stream.*`` headers as with JSON.
  ``talon-stream dlq replay`` unwraps it (:class:`DlqUnwrapper`).

``talon-stream what-if`` reads an Avro effects topic back with :class:`EnvelopeReader`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from talon_stream._exceptions import ConfigurationError, DecodeError, TalonStatusError
from talon_stream._version import __version__
from talon_stream.config._settings import Settings
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord
from talon_stream.formats.avro._errors import RegistryError
from talon_stream.formats.avro._schemas import AvroSchema, SchemaSet, schemas
from talon_stream.formats.avro.codec import AvroDecoder, AvroEncoder
from talon_stream.formats.avro.registry import WriterSchemas, registry_client

__all__ = [
    "AvroFormats",
    "DlqUnwrapper",
    "EnvelopeReader",
    "avro_formats",
    "avro_topics",
    "dlq_unwrapper",
    "envelope_reader",
]

log = logging.getLogger(__name__)

_HTTP_BODY_CHARS = 2000
#: Registry answers worth trying again (as confluent-kafka's client retries them itself).
_TRANSIENT = frozenset((408, 429, 500, 502, 503, 504))
_RETRY_INITIAL_S = 0.5
_RETRY_MAX_S = 30.0


def avro_topics(settings: Settings) -> frozenset[str]:
    """The topics whose format is Avro.

    Raises:
        ConfigurationError: a topic is Avro but no Schema Registry URL is set.
    """
    topics = frozenset(topic for topic, kind in settings.topic_formats.items() if kind == "avro")
    if topics and not settings.schema_registry_url:
        raise ConfigurationError(
            f"TALON_STREAM_TOPIC_FORMATS makes {', '.join(sorted(topics))} Avro, but "
            "TALON_STREAM_SCHEMA_REGISTRY_URL is not set: set it to the Schema Registry's URL "
            "(e.g. http://schema-registry:8081), or make those topics json"
        )
    return topics


def _client(settings: Settings) -> tuple[SchemaRegistryClient, str]:
    url = settings.schema_registry_url
    assert url is not None  # avro_topics checked it
    auth = settings.schema_registry_basic_auth
    client = registry_client(
        url,
        basic_auth=auth.get_secret_value() if auth is not None else None,
        timeout_s=settings.request_timeout_s,
    )
    return client, url


class AvroFormats:
    """The Avro side of one worker: decoders of its Avro input topics, encoders of its Avro
    output topics. Built by :func:`avro_formats`."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        url: str,
        *,
        input_topics: frozenset[str],
        envelope_topics: frozenset[str],
        dlq_topic: str | None,
        auto_register: bool,
        schema_set: SchemaSet | None = None,
    ) -> None:
        found = schema_set or schemas()
        self.url = url
        self._client = client
        #: Input topics whose records are Avro.
        self.input_topics = input_topics
        #: Effects topics (whole or routed) whose envelopes are written in Avro.
        self.envelope_topics = envelope_topics
        #: The DLQ topic when its records are Avro DLQ envelopes, else ``None``.
        self.dlq_topic = dlq_topic
        self.writers = WriterSchemas(client, url)
        self._decoder = AvroDecoder(self.writers, found.event)
        self._envelopes = AvroEncoder(
            client, found.effects_envelope, url=url, auto_register=auto_register
        )
        self._dlq = AvroEncoder(client, found.dlq_envelope, url=url, auto_register=auto_register)

    # --- start-up and batches -----------------------------------------------------------------

    async def start(self) -> None:
        """Register (or look up) the output schemas under their topics' subjects, on a thread.

        Raises:
            ConfigurationError: the registry refused a schema.
            RegistryError: the registry cannot be reached.
        """
        for topic in sorted(self.envelope_topics):
            await asyncio.to_thread(self._envelopes.register, topic)
            log.info("effects envelopes on %s are Avro (subject %s-value)", topic, topic)
        if self.dlq_topic is not None:
            await asyncio.to_thread(self._dlq.register, self.dlq_topic)
            log.info(
                "DLQ records on %s are Avro (subject %s-value)", self.dlq_topic, self.dlq_topic
            )

    async def prefetch(
        self,
        records: Iterable[InputRecord],
        *,
        stopping: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> bool:
        """Fetch the writer schemas of ``records`` (of Avro input topics) not fetched yet, so
        that decoding them needs no HTTP. While the registry cannot be reached (or answers
        408, 429 or 5xx), try again with back-off — a record is never dead-lettered because the
        registry is down — until it answers or ``stopping()``; then ``False``: the records must
        not be processed (they are read again after the restart, nothing was committed).

        Raises:
            RegistryError: the registry refused the request (401, 403: the credentials).
        """
        topics = self.input_topics
        ids = self.writers.unknown(record.value for record in records if record.topic in topics)
        delay = _RETRY_INITIAL_S
        while ids:
            try:
                await self.writers.fetch(ids)
            except RegistryError as exc:
                if exc.status is not None and exc.status not in _TRANSIENT:
                    raise
                log.warning("%s; trying again in %.1f s", exc, delay)
                if stopping():
                    return False
                await sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            return True
        return True

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    # --- per record ---------------------------------------------------------------------------

    def decode_event(self, value: bytes | None) -> Event:
        """See :meth:`AvroDecoder.decode_event
        <talon_stream.formats.avro.codec.AvroDecoder.decode_event>`."""
        return self._decoder.decode_event(value)

    def read_document(self, value: bytes | None) -> Any:
        """See :meth:`AvroDecoder.read_document
        <talon_stream.formats.avro.codec.AvroDecoder.read_document>`."""
        return self._decoder.read_document(value)

    def encode_envelope(self, topic: str, envelope: dict[str, Any]) -> bytes:
        """The effects envelope for ``topic`` in the wire format.

        Raises:
            EncodeError: Talon.One's answer does not fit the schema.
        """
        return self._envelopes.encode(topic, envelope)

    def encode_dlq(
        self,
        record: InputRecord,
        failure: DlqFailure,
        *,
        value: bytes | None,
        value_omitted_bytes: int | None = None,
    ) -> bytes:
        """The DLQ envelope of ``record`` (its ``value``: ``None`` when omitted).

        Raises:
            EncodeError: never for a record the worker read (a safety net).
        """
        assert self.dlq_topic is not None
        return self._dlq.encode(
            self.dlq_topic,
            dlq_envelope(record, failure, value=value, value_omitted_bytes=value_omitted_bytes),
        )


def dlq_envelope(
    record: InputRecord,
    failure: DlqFailure,
    *,
    value: bytes | None,
    value_omitted_bytes: int | None = None,
) -> dict[str, Any]:
    """The JSON-shaped DLQ envelope (``schemas/dlq-envelope.avsc``): what
    :func:`~talon_stream.core.dlq_headers` says, typed, with the original record."""
    error = failure.error
    status = error if isinstance(error, TalonStatusError) else None
    return {
        "key": record.key,
        "value": value,
        "headers": [{"name": name, "value": data} for name, data in record.headers],
        "errorClass": type(error).__name__,
        "errorMessage": str(error),
        "sourceTopic": record.topic,
        "sourcePartition": record.partition,
        "sourceOffset": record.offset,
        "sourceTimestamp": (
            None
            if record.timestamp_ms is None
            else datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC)
        ),
        "attempts": failure.attempts,
        "firstAttemptAt": failure.first_attempt_at,
        "lastAttemptAt": failure.last_attempt_at,
        "workerVersion": __version__,
        "httpStatus": status.status if status is not None else None,
        "httpBody": status.body[:_HTTP_BODY_CHARS] if status is not None else None,
        "talonOperation": status.call.operation.value if status is not None else None,
        "valueOmittedBytes": value_omitted_bytes,
    }


def avro_formats(
    settings: Settings, *, client: SchemaRegistryClient | None = None
) -> AvroFormats | None:
    """The Avro side of a worker configured by ``settings`` (``None``: every topic it reads and
    writes is JSON). ``client`` replaces the registry client built from the settings.

    Raises:
        ConfigurationError: a topic is Avro but no Schema Registry URL is set.
    """
    topics = avro_topics(settings)
    effects = {settings.effects_topic, *settings.effect_routes}
    inputs = topics & set(settings.input_topics)
    envelopes = topics & effects
    dlq = settings.dlq_topic if settings.dlq_topic in topics else None
    unused = topics - inputs - envelopes - {dlq}
    if unused:
        log.warning(
            "TALON_STREAM_TOPIC_FORMATS names %s, which this worker neither reads nor writes",
            ", ".join(sorted(unused)),
        )
    if not (inputs or envelopes or dlq):
        return None
    if client is None:
        client, url = _client(settings)
    else:
        url = settings.schema_registry_url or "(client given)"
    log.info(
        "Avro with the Schema Registry %s: input %s; output %s",
        url,
        ", ".join(sorted(inputs)) or "-",
        ", ".join(sorted(envelopes | ({dlq} if dlq else set()))) or "-",
    )
    return AvroFormats(
        client,
        url,
        input_topics=frozenset(inputs),
        envelope_topics=frozenset(envelopes),
        dlq_topic=dlq,
        auto_register=settings.schema_registry_auto_register,
    )


class _EnvelopeTopicReader:
    """Reads one kind of envelope the worker wrote to an Avro topic, with the writer schemas
    the registry gives."""

    def __init__(self, client: SchemaRegistryClient, url: str, reader: AvroSchema) -> None:
        self._client = client
        self.writers = WriterSchemas(client, url)
        self._decoder = AvroDecoder(self.writers, reader)

    async def prefetch(self, records: Iterable[InputRecord]) -> None:
        """Fetch the writer schemas of ``records`` not fetched yet.

        Raises:
            RegistryError: the registry cannot be reached or refused the request.
        """
        ids = self.writers.unknown(record.value for record in records)
        if ids:
            await self.writers.fetch(ids)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


class DlqUnwrapper(_EnvelopeTopicReader):
    """For ``talon-stream dlq replay`` of an Avro DLQ topic: the original key and value of each
    DLQ record, from its DLQ envelope (the headers stay those of the DLQ record)."""

    def __init__(self, client: SchemaRegistryClient, url: str) -> None:
        super().__init__(client, url, schemas().dlq_envelope)

    def unwrap(self, record: InputRecord) -> InputRecord:
        """``record`` with the original key and value in place of its DLQ envelope.

        Raises:
            DecodeError: the value is not a DLQ envelope in the wire format.
        """
        envelope = self._decoder.read(record.value)
        if not isinstance(envelope, dict) or "errorClass" not in envelope:
            raise DecodeError("the DLQ record's value is not a DLQ envelope")
        return replace(record, key=envelope.get("key"), value=envelope.get("value"))


def dlq_unwrapper(settings: Settings, dlq_topic: str) -> DlqUnwrapper | None:
    """The unwrapper of ``dlq_topic`` when its format is Avro, else ``None``.

    Raises:
        ConfigurationError: the topic is Avro but no Schema Registry URL is set.
    """
    if dlq_topic not in avro_topics(settings):
        return None
    client, url = _client(settings)
    return DlqUnwrapper(client, url)


class EnvelopeReader(_EnvelopeTopicReader):
    """For ``talon-stream what-if`` on an Avro effects topic: each record's effects envelope,
    JSON-shaped as the JSON envelope is: ``effects`` with their props and ``extra`` merged, and
    without the typed fields Talon.One did not send (null in Avro)."""

    def __init__(self, client: SchemaRegistryClient, url: str) -> None:
        super().__init__(client, url, schemas().effects_envelope)

    def read(self, record: InputRecord) -> dict[str, Any]:
        """The effects envelope of ``record``.

        Raises:
            DecodeError: the value is not an effects envelope in the wire format.
        """
        envelope = self._decoder.read(record.value)
        if not isinstance(envelope, dict) or "source" not in envelope:
            raise DecodeError("the record's value is not an effects envelope")
        effects = envelope.get("effects")
        if isinstance(effects, list):
            envelope["effects"] = [
                {k: v for k, v in e.items() if v is not None} if isinstance(e, dict) else e
                for e in effects
            ]
        return envelope


def envelope_reader(settings: Settings, topic: str) -> EnvelopeReader | None:
    """The reader of ``topic``'s effects envelopes when its format is Avro, else ``None``.

    Raises:
        ConfigurationError: the topic is Avro but no Schema Registry URL is set.
    """
    if topic not in avro_topics(settings):
        return None
    client, url = _client(settings)
    return EnvelopeReader(client, url)

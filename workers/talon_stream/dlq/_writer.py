"""Writing to the DLQ: the original record with ``talon-stream.*`` headers saying why
(:func:`~talon_stream.core.dlq_headers`), its value in the DLQ envelope when the DLQ topic is
Avro, and the ``park`` policy's memory of which customers wait behind a dead-lettered record."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from talon_stream._exceptions import ErasedCustomerError, ParkedError
from talon_stream.core._calls import Operation, TalonCall, customer_label
from talon_stream.core._dead_letters import (
    DLQ_HEADER_PREFIX,
    REPLAY_HEADER,
    DlqFailure,
    dlq_headers,
)
from talon_stream.core._envelopes import envelope_id
from talon_stream.core._records import InputRecord, RecordSink
from talon_stream.ops._logs import record_fields
from talon_stream.ops._stats import WorkerStats

if TYPE_CHECKING:  # the Avro side loads the Schema Registry client: only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["DeadLetterWriter"]

log = logging.getLogger(__name__)


class DeadLetterWriter:
    """Publishes the records that cannot be processed to ``topic``. A value larger than
    ``max_record_bytes`` stays in its source topic (a header says how large it was). With
    ``park``, a customer's later records follow its dead-lettered one into the DLQ until a
    replayed record of that customer arrives."""

    def __init__(
        self,
        sink: RecordSink,
        topic: str,
        *,
        stats: WorkerStats,
        max_record_bytes: int = 512 * 1024,
        park: bool = False,
        avro: AvroFormats | None = None,
    ) -> None:
        self._sink = sink
        self._topic = topic
        self._stats = stats
        self._max_record_bytes = max_record_bytes
        #: Under the park policy: lock key → the DLQ'd record its later records wait behind.
        self.parked: dict[str, str] | None = {} if park else None
        self._avro = avro

    def parked_error(self, record: InputRecord, lock_keys: tuple[str, ...]) -> ParkedError | None:
        """Under the park policy, why ``record`` follows an earlier record of its customer into
        the DLQ (``None``: it goes on). A replayed record unparks its customer."""
        parked = self.parked
        if parked is None:
            return None
        if any(name == REPLAY_HEADER for name, _ in record.headers):
            for key in lock_keys:
                parked.pop(key, None)
            return None
        blocker = next((parked[key] for key in lock_keys if key in parked), None)
        if blocker is None:
            return None
        return ParkedError(f"parked behind {blocker}, an earlier record of this customer")

    async def write(
        self,
        record: InputRecord,
        failure: DlqFailure,
        *,
        lock_keys: tuple[str, ...] = (),
        call: TalonCall | None = None,
    ) -> None:
        """Publish ``record`` to the DLQ with why it failed; return once Kafka acknowledged it.

        Raises:
            BrokerError: the DLQ record was refused.
        """
        error = failure.error
        profile_id = call.profile_id if call is not None else None
        session_id = call.session_id if call is not None else None
        if profile_id is not None and (
            isinstance(error, ErasedCustomerError)
            or (call is not None and call.operation is Operation.DELETE_CUSTOMER_DATA)
        ):
            # A customer who asked to be forgotten is named by digest only.
            profile_id, session_id = customer_label(profile_id), None
        log.warning(
            "record %s[%d]@%d to the DLQ: %s",
            record.topic,
            record.partition,
            record.offset,
            error,
            extra=record_fields(
                record.topic,
                record.partition,
                record.offset,
                envelopeId=envelope_id(record.topic, record.partition, record.offset),
                profileId=profile_id,
                sessionId=session_id,
                errorClass=type(error).__name__,
                status=getattr(error, "status", None),
                attempt=failure.attempts,
            ),
        )
        headers = dlq_headers(record, failure)
        value = record.value
        omitted: int | None = None
        if value is not None and len(value) > self._max_record_bytes:
            # Too large for the DLQ as well: the value stays in the source topic, at the
            # coordinates the headers give.
            omitted = len(value)
            headers.append((DLQ_HEADER_PREFIX + "value.omitted.bytes", str(omitted).encode()))
            value = None
        avro = self._avro
        if avro is not None and avro.dlq_topic is not None:
            # The DLQ envelope (schemas/dlq-envelope.avsc) holds the original value; the
            # headers stay as with JSON.
            value = avro.encode_dlq(record, failure, value=value, value_omitted_bytes=omitted)
        await self._sink.send(self._topic, key=record.key, value=value, headers=headers)
        self._stats.dead_lettered += 1
        self._stats.dlq_reasons[type(failure.error).__name__] += 1
        if self.parked is not None and lock_keys:
            where = f"{record.topic}/{record.partition}/{record.offset}"
            for key in lock_keys:
                self.parked.setdefault(key, where)

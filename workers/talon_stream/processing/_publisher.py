"""A record's outcome, published: the effects envelope to the effects topic (and, with routes,
to the topics of its effect types), JSON or Avro by topic; or a DLQ record."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from talon_stream._exceptions import RecordError
from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._envelopes import effects_envelope, superseded_envelope
from talon_stream.core._events import Event
from talon_stream.core._records import Headers, OutputRecord, RecordSink
from talon_stream.core._routing import EffectRouter
from talon_stream.dlq._writer import DeadLetterWriter
from talon_stream.ops._stats import WorkerStats
from talon_stream.processing._prepared import Prepared

if TYPE_CHECKING:  # the Avro side loads the Schema Registry client: only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["OutcomePublisher"]


class OutcomePublisher:
    """Publishes the outcome of each record of one worker; shared by all partitions."""

    def __init__(
        self,
        sink: RecordSink,
        effects_topic: str,
        dead_letters: DeadLetterWriter,
        *,
        stats: WorkerStats,
        router: EffectRouter | None = None,
        avro: AvroFormats | None = None,
    ) -> None:
        self._sink = sink
        self._effects_topic = effects_topic
        self.dead_letters = dead_letters
        self._stats = stats
        #: Where effects go besides the effects topic, by type (``None``: nowhere else).
        self._router = router
        #: The Avro topics' encoders; ``None``: every envelope is JSON.
        self._avro = avro

    async def superseded(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        superseded: dict[str, Any],
        *,
        envelope_key: str,
    ) -> None:
        """Publish the envelope of a record not sent because a newer event of its session was
        already applied (:func:`~talon_stream.core.superseded_envelope`): to the effects topic
        only, as it has no effects to route.

        Raises:
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        record = prepared.record
        processing_ms = (time.perf_counter() - prepared.started) * 1000
        envelope = superseded_envelope(
            record, event, call, superseded, processing_ms=processing_ms, envelope_key=envelope_key
        )
        value = (
            orjson.dumps(envelope)
            if self._avro is None
            else self._envelope_bytes(self._avro, self._effects_topic, envelope)
        )
        await self._sink.send(self._effects_topic, key=record.key, value=value)
        stats = self._stats
        stats.effects_published += 1
        stats.superseded += 1
        stats.recent.append(envelope)

    async def effects(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        response: TalonResponse,
        *,
        envelope_key: str,
        attempts: int,
        headers: Headers | None = None,
        coalesced_into: dict[str, Any] | None = None,
    ) -> None:
        """Publish the effects envelope of ``prepared`` (with ``headers``, e.g. trace context);
        an answer that does not fit the Avro schema sends the record to the DLQ instead.
        ``coalesced_into``: the call was made for another record of the session (its
        ``envelopeId``, ``eventId`` and how many ``records`` it answered for); the envelope says
        so, and its effects are not routed (the owner's envelope routes them).

        Raises:
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        record = prepared.record
        processing_ms = (time.perf_counter() - prepared.started) * 1000
        envelope = effects_envelope(
            record, event, call, response, processing_ms=processing_ms, envelope_key=envelope_key
        )
        if coalesced_into is not None:
            envelope["coalescedInto"] = coalesced_into
        avro = self._avro
        router = self._router if coalesced_into is None else None
        routes = router.route(response.effects) if router is not None and response.effects else {}
        outputs: list[OutputRecord] = []
        try:
            if avro is None:
                value = orjson.dumps(envelope)
            else:
                value = self._envelope_bytes(avro, self._effects_topic, envelope)
            if routes:
                outputs.append((self._effects_topic, record.key, value, headers))
                outputs.extend(
                    (
                        topic,
                        record.key,
                        orjson.dumps({**envelope, "effects": effects})
                        if avro is None
                        else self._envelope_bytes(avro, topic, {**envelope, "effects": effects}),
                        headers,
                    )
                    for topic, effects in routes.items()
                )
        except RecordError as exc:  # an Avro EncodeError: the answer does not fit the schema
            failure = DlqFailure(exc, attempts, prepared.taken_at, datetime.now(tz=UTC))
            await self.dead_letter(prepared, failure)
            return
        if outputs:
            await self._sink.send_all(outputs)
        else:
            await self._sink.send(self._effects_topic, key=record.key, value=value, headers=headers)
        stats = self._stats
        stats.effects_published += 1
        effect_types = stats.effect_types
        for effect in response.effects:
            if isinstance(effect, dict):
                kind = effect.get("effectType", "?")
                effect_types[kind] = effect_types.get(kind, 0) + 1
        stats.recent.append(envelope)

    async def dead_letter(self, prepared: Prepared, failure: DlqFailure) -> None:
        """Publish ``prepared``'s record to the DLQ with why it failed.

        Raises:
            BrokerError: the DLQ record was refused.
        """
        await self.dead_letters.write(
            prepared.record, failure, lock_keys=prepared.lock_keys(), call=prepared.call
        )

    @staticmethod
    def _envelope_bytes(avro: AvroFormats, topic: str, envelope: dict[str, Any]) -> bytes:
        """An envelope for ``topic``: Avro when the topic's format is, else JSON.

        Raises:
            EncodeError: the envelope does not fit the Avro schema.
        """
        if topic in avro.envelope_topics:
            return avro.encode_envelope(topic, envelope)
        return orjson.dumps(envelope)

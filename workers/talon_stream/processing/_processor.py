"""One record, start to outcome: decode → translate → call Talon.One → publish.

:class:`RecordProcessor` ties the stages together, each its own object: the
:class:`~talon_stream.formats.Decoder`, :func:`~talon_stream.core.translate`, the
:class:`~talon_stream.talon.TalonCaller` (retries, halt, limits) and the
:class:`~talon_stream.processing.OutcomePublisher` (effects envelope, routes, DLQ).
:meth:`RecordProcessor.execute` always ends in exactly one outcome record acknowledged by Kafka —
an effects envelope or a DLQ record — or raises a fatal error (a broker that refuses our
records) that must stop the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from talon_stream._exceptions import RecordError, TalonPermanentError
from talon_stream.config._settings import Settings
from talon_stream.core._calls import TalonCall
from talon_stream.core._dead_letters import DlqFailure
from talon_stream.core._envelopes import envelope_id
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord, RecordSink
from talon_stream.core._routing import EffectRouter
from talon_stream.core._translate import TranslationOptions, translate
from talon_stream.dlq._writer import DeadLetterWriter
from talon_stream.formats._decoder import Decoder
from talon_stream.formats.mapping._mappings import Mappings
from talon_stream.ops._stats import WorkerStats
from talon_stream.ops._tracing import CallTrace, start_call_trace
from talon_stream.processing._prepared import Prepared
from talon_stream.processing._publisher import OutcomePublisher
from talon_stream.processing._sessions import SessionLedger, Superseded
from talon_stream.talon._caller import TalonCaller, TalonSender
from talon_stream.talon._halt import Halt
from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter

if TYPE_CHECKING:  # the Avro side loads the Schema Registry client: only when a topic is Avro
    from talon_stream.formats.avro.formats import AvroFormats

__all__ = ["RecordProcessor"]


def _detached(error: RecordError) -> RecordError:
    """``error`` without its traceback and the exceptions it was raised from. A record's error
    waits with the record until it is dead-lettered, and only its class and message are
    published. The rest would keep the frames that raised it alive — the consumer loop's and the
    dispatcher's among them — in cycles the garbage collector cannot always see (pydantic keeps a
    validator's exception out of its reach), and with them the worker's Kafka clients."""
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    return error


def _nothing() -> None:
    """The default ``on_answered``: nobody to tell."""


class RecordProcessor:
    """Processes records for one worker; shared by all partitions."""

    def __init__(
        self,
        decoder: Decoder,
        caller: TalonCaller,
        publisher: OutcomePublisher,
        *,
        options: TranslationOptions,
        stats: WorkerStats,
        sessions: SessionLedger | None = None,
    ) -> None:
        self._decoder = decoder
        self._caller = caller
        self._publisher = publisher
        self._options = options
        self.stats = stats
        #: What the worker knows of the sessions it updated (``None``: every record is sent).
        self.sessions = sessions

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        talon: TalonSender,
        sink: RecordSink,
        *,
        stats: WorkerStats | None = None,
        halt: Halt | None = None,
        rate: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        mappings: Mappings | None = None,
        avro: AvroFormats | None = None,
    ) -> RecordProcessor:
        """The processor a worker configured by ``settings`` runs, calling Talon.One with
        ``talon`` and publishing to ``sink``; the worker passes the objects it shares with its
        dispatcher and metrics (``stats``, ``halt``, ``rate``, ``concurrency``) and what it read
        at start-up (``mappings``, ``avro``)."""
        stats = stats or WorkerStats()
        decoder = Decoder(max_record_bytes=settings.max_record_bytes, mappings=mappings, avro=avro)
        caller = TalonCaller(
            talon,
            stats=stats,
            halt=halt,
            rate=rate,
            concurrency=concurrency,
            retry_initial_s=settings.retry_initial_backoff_s,
            retry_max_s=settings.retry_max_backoff_s,
            unreachable_halt_after_s=settings.unreachable_halt_after_s,
        )
        dead_letters = DeadLetterWriter(
            sink,
            settings.dlq_topic,
            stats=stats,
            max_record_bytes=settings.max_record_bytes,
            park=settings.dlq_policy == "park",
            avro=avro,
        )
        publisher = OutcomePublisher(
            sink,
            settings.effects_topic,
            dead_letters,
            stats=stats,
            router=EffectRouter(settings.effect_routes) if settings.effect_routes else None,
            avro=avro,
        )
        options = TranslationOptions(
            response_content=settings.response_content,
            dry=settings.dry_run,
            profile_run_rule_engine=settings.profile_run_rule_engine,
        )
        return cls(
            decoder,
            caller,
            publisher,
            options=options,
            stats=stats,
            sessions=SessionLedger() if settings.supersede_late_carts else None,
        )

    def prepare(self, record: InputRecord) -> Prepared:
        """Decode and translate ``record`` (pure CPU work, no I/O). A record that cannot become a
        call is kept with its error, to be dead-lettered by :meth:`execute`."""
        stats = self.stats
        stats.consumed += 1
        stats.consumed_by_partition[record.partition_key] += 1
        prepared = Prepared(record, time.perf_counter(), datetime.now(tz=UTC))
        try:
            prepared.event = self._decoder.decode(record)
            prepared.call = translate(prepared.event, self._options)
        except RecordError as exc:
            prepared.error = _detached(exc)
        return prepared

    async def process(self, record: InputRecord) -> None:
        """Bring ``record`` to its outcome: :meth:`prepare` then :meth:`execute`."""
        await self.execute(self.prepare(record))

    async def execute(self, prepared: Prepared, on_answered: Callable[[], None] = _nothing) -> None:
        """Call Talon.One for a prepared record and publish its outcome. ``on_answered`` is
        called once, when no call is in flight for the record any more and only its outcome is
        left to publish (the dispatcher then lets another call start).

        A refused API key halts the worker (the caller's ``halt``) and the call is probed until
        it succeeds: nothing is published meanwhile.

        Raises:
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        event, call = prepared.event, prepared.call
        at = prepared.taken_at
        dead_letters = self._publisher.dead_letters
        if dead_letters.parked is not None:
            parked = dead_letters.parked_error(prepared.record, prepared.lock_keys())
            if parked is not None:
                on_answered()
                await self._publisher.dead_letter(prepared, DlqFailure(parked, 0, at, at))
                return
        if prepared.error is not None or event is None or call is None:
            error = prepared.error or RecordError("the record was not prepared")
            on_answered()
            await self._publisher.dead_letter(prepared, DlqFailure(error, 0, at, at))
            return
        sessions = self.sessions
        if sessions is not None and (superseded := sessions.superseded(event)) is not None:
            on_answered()
            await self._superseded(prepared, event, call, superseded)
            return
        headers = prepared.record.headers
        trace = start_call_trace(headers, call.operation.value) if headers else None
        if trace is None:
            await self._call(prepared, event, call, None, on_answered)
            return
        try:
            await self._call(prepared, event, call, trace, on_answered)
        except BaseException as exc:
            trace.end(exc)
            raise
        trace.end()

    async def _superseded(
        self, prepared: Prepared, event: Event, call: TalonCall, superseded: Superseded
    ) -> None:
        record = prepared.record
        by = superseded.by
        await self._publisher.superseded(
            prepared,
            event,
            call,
            {
                "eventId": by.event_id,
                "type": by.event_type,
                "occurredAt": by.occurred_at.isoformat(),
                "envelopeId": by.envelope_id,
                "sessionState": by.state,
                "reason": superseded.reason,
            },
            envelope_key=envelope_id(record.topic, record.partition, record.offset),
        )

    async def _call(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        trace: CallTrace | None,
        on_answered: Callable[[], None],
    ) -> None:
        """Call Talon.One and publish the outcome; the trace context, if any, goes with the HTTP
        request and on the effects records."""
        record = prepared.record
        key = envelope_id(record.topic, record.partition, record.offset)
        try:
            response, attempts = await self._caller.call(
                call, key, trace.http_headers if trace is not None else None
            )
        except TalonPermanentError as exc:
            failure = DlqFailure(exc, 1, prepared.taken_at, datetime.now(tz=UTC))
            on_answered()
            await self._publisher.dead_letter(prepared, failure)
            return
        sessions = self.sessions
        if sessions is not None and call.session_id is not None:
            # Noted before the session's next record may start (on_answered).
            session = response.body.get("customerSession")
            state = session.get("state") if isinstance(session, dict) else None
            sessions.applied(event, key, state if isinstance(state, str) else None)
        on_answered()
        await self._publisher.effects(
            prepared,
            event,
            call,
            response,
            envelope_key=key,
            attempts=attempts,
            headers=trace.record_headers if trace is not None else None,
        )

"""One record, start to outcome: decode → translate → call Talon.One → publish.

:meth:`RecordProcessor.process` always ends in exactly one outcome record acknowledged by Kafka —
an effects envelope or a DLQ record — or raises a fatal error (a broker that refuses our
records) that must stop the worker. Transient API failures are retried with jittered exponential
back-off for as long as it takes: losing the event is never the answer to an outage. A refused API
key (401/403) or a Talon.One that cannot be reached for ``unreachable_halt_after_s`` halts the
whole worker (:mod:`workers.halt`): calls are then probed one at a time until one succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

from workers.calls import TalonCall
from workers.envelopes import (
    DLQ_HEADER_PREFIX,
    REPLAY_HEADER,
    DlqFailure,
    dlq_headers,
    effects_envelope,
    envelope_id,
)
from workers.events import Event, decode_event
from workers.exceptions import (
    ParkedError,
    RecordError,
    RecordTooLargeError,
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from workers.halt import Halt
from workers.kafka_io import Headers, InputRecord, OutputRecord
from workers.limits import AdaptiveConcurrency, RateLimiter
from workers.logs import record_fields
from workers.mapping import Mappings
from workers.routing import EffectRouter
from workers.stats import WorkerStats
from workers.talon_client import TalonResponse
from workers.tracing import CallTrace, start_call_trace
from workers.translate import TranslationOptions, translate

if TYPE_CHECKING:  # workers.avro loads the Schema Registry client: only when a topic is Avro
    from workers.avro.formats import AvroFormats

# REPLAY_HEADER is workers.envelopes', re-exported here where it has always been importable.
__all__ = ["REPLAY_HEADER", "Prepared", "RecordProcessor", "RecordSink", "TalonSender"]

log = logging.getLogger(__name__)


class TalonSender(Protocol):
    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse: ...


class RecordSink(Protocol):
    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None: ...

    async def send_all(self, records: Sequence[OutputRecord]) -> None: ...


class _RetryWait:
    """Full-jitter exponential back-off that never retries sooner than ``Retry-After`` asks."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s)
        self._max_s = max_s

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TalonFatalError):
            return 0.0  # the halt spaces the probes
        delay = float(self._backoff(state))
        if isinstance(error, TalonStatusError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


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


@dataclass(slots=True)
class Prepared:
    """A record decoded and translated, ready to be scheduled by the customer's lock keys."""

    record: InputRecord
    started: float  # perf_counter when the record was taken
    taken_at: datetime
    event: Event | None = None
    call: TalonCall | None = None
    error: RecordError | None = None

    def lock_keys(self) -> tuple[str, ...]:
        """The customer's ids this record touches: its profile and its session. A record that
        never became a call is locked by its Kafka key, so it keeps its place among its
        customer's records."""
        call = self.call
        if call is not None:
            keys = []
            if call.profile_id:
                keys.append("p:" + call.profile_id)
            if call.session_id:
                keys.append("s:" + call.session_id)
            if keys:
                return tuple(keys)
        if self.record.key:
            return ("p:" + self.record.key.decode(errors="replace"),)
        return (f"r:{self.record.topic}/{self.record.partition}",)


class RecordProcessor:
    """Processes records for one worker; shared by all partitions."""

    def __init__(
        self,
        talon: TalonSender,
        sink: RecordSink,
        *,
        effects_topic: str,
        dlq_topic: str,
        options: TranslationOptions,
        stats: WorkerStats | None = None,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        halt: Halt | None = None,
        unreachable_halt_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rate: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        max_record_bytes: int = 512 * 1024,
        park: bool = False,
        mappings: Mappings | None = None,
        router: EffectRouter | None = None,
        avro: AvroFormats | None = None,
    ) -> None:
        self._talon = talon
        self._sink = sink
        self._effects_topic = effects_topic
        #: Where effects go besides the effects topic, by type (``None``: nowhere else).
        self._router = router
        self._dlq_topic = dlq_topic
        self._options = options
        self.stats = stats or WorkerStats()
        self._wait = _RetryWait(retry_initial_s, retry_max_s)
        self._sleep = sleep
        self.halt = halt or Halt()
        self._unreachable_after = unreachable_halt_after_s
        self._clock = clock
        self._unreachable_since: float | None = None
        self._halted_unreachable = False
        #: The request-rate cap and the adaptive in-flight limit, when configured.
        self.rate = rate
        self.concurrency = concurrency
        self._max_record_bytes = max_record_bytes
        #: Under the park policy: lock key → the DLQ'd record its later records wait behind.
        self.parked: dict[str, str] | None = {} if park else None
        #: The mapping file (TALON_STREAM_MAPPING_FILE): records of its topics are a shop's own
        #: documents, mapped to events; ``None``: every record is a canonical event.
        self._mappings = mappings
        #: The Avro topics' decoders and encoders (workers.avro.formats); ``None``: all JSON.
        self._avro = avro

    def prepare(self, record: InputRecord) -> Prepared:
        """Decode and translate ``record`` (pure CPU work, no I/O). A record that cannot become a
        call is kept with its error, to be dead-lettered by :meth:`execute`."""
        stats = self.stats
        stats.consumed += 1
        stats.consumed_by_partition[record.partition_key] += 1
        prepared = Prepared(record, time.perf_counter(), datetime.now(tz=UTC))
        try:
            size = len(record.value or b"")
            if size > self._max_record_bytes:
                raise RecordTooLargeError(
                    f"the record value has {size} bytes, more than max_record_bytes "
                    f"({self._max_record_bytes}); it was not read"
                )
            mappings = self._mappings
            avro = self._avro
            if avro is not None and record.topic in avro.input_topics:
                if mappings is not None and record.topic in mappings.topics:
                    document = avro.read_document(record.value)
                    prepared.event = mappings.apply(record.topic, document)
                else:
                    prepared.event = avro.decode_event(record.value)
            elif mappings is not None and record.topic in mappings.topics:
                prepared.event = mappings.decode(record.topic, record.value)
            else:
                prepared.event = decode_event(record.value)
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

        A refused API key halts the worker (:attr:`halt`) and the call is probed until it
        succeeds: nothing is published meanwhile.

        Raises:
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        record, event, call = prepared.record, prepared.event, prepared.call
        first_attempt = prepared.taken_at
        if self.parked is not None and await self._parked(prepared, on_answered):
            return
        if prepared.error is not None or event is None or call is None:
            error = prepared.error or RecordError("the record was not prepared")
            failure = DlqFailure(error, 0, first_attempt, first_attempt)
            on_answered()
            await self._dead_letter(record, failure, prepared)
            return
        trace = start_call_trace(record.headers, call.operation.value) if record.headers else None
        if trace is None:
            await self._call(prepared, event, call, None, on_answered)
            return
        try:
            await self._call(prepared, event, call, trace, on_answered)
        except BaseException as exc:
            trace.end(exc)
            raise
        trace.end()

    async def _call(
        self,
        prepared: Prepared,
        event: Event,
        call: TalonCall,
        trace: CallTrace | None,
        on_answered: Callable[[], None],
    ) -> None:
        """Call Talon.One (retrying what may succeed later) and publish the outcome; the trace
        context, if any, goes with the HTTP request and on the effects records."""
        record, first_attempt = prepared.record, prepared.taken_at
        extra = trace.http_headers if trace is not None else None
        out_headers = trace.record_headers if trace is not None else None
        key = envelope_id(record.topic, record.partition, record.offset)
        attempts = 1
        try:
            try:
                response = await self._attempt(call, key, extra)
            except (TalonRetryableError, TalonTransportError, TalonFatalError) as exc:
                response, attempts = await self._retry(call, key, exc, extra)
        except TalonPermanentError as exc:
            now = datetime.now(tz=UTC)
            failure = DlqFailure(exc, attempts, first_attempt, now)
            on_answered()
            await self._dead_letter(record, failure, prepared)
            return
        on_answered()
        processing_ms = (time.perf_counter() - prepared.started) * 1000
        envelope = effects_envelope(
            record, event, call, response, processing_ms=processing_ms, envelope_key=key
        )
        avro = self._avro
        router = self._router
        routes = router.route(response.effects) if router is not None and response.effects else {}
        outputs: list[OutputRecord] = []
        try:
            if avro is None:
                value = orjson.dumps(envelope)
            else:
                value = self._envelope_bytes(avro, self._effects_topic, envelope)
            if routes:
                outputs.append((self._effects_topic, record.key, value, out_headers))
                outputs.extend(
                    (
                        topic,
                        record.key,
                        orjson.dumps({**envelope, "effects": effects})
                        if avro is None
                        else self._envelope_bytes(avro, topic, {**envelope, "effects": effects}),
                        out_headers,
                    )
                    for topic, effects in routes.items()
                )
        except RecordError as exc:  # an Avro EncodeError: the answer does not fit the schema
            failure = DlqFailure(exc, attempts, first_attempt, datetime.now(tz=UTC))
            await self._dead_letter(record, failure, prepared)
            return
        if outputs:
            await self._sink.send_all(outputs)
        else:
            await self._sink.send(
                self._effects_topic, key=record.key, value=value, headers=out_headers
            )
        self.stats.effects_published += 1
        effect_types = self.stats.effect_types
        for effect in response.effects:
            if isinstance(effect, dict):
                kind = effect.get("effectType", "?")
                effect_types[kind] = effect_types.get(kind, 0) + 1
        self.stats.recent.append(envelope)

    async def _attempt(
        self, call: TalonCall, key: str, extra: Mapping[str, str] | None = None
    ) -> TalonResponse:
        """One try of a call, through the halt while it is on; what the answer says about the
        credentials and reachability of Talon.One updates the halt."""
        halt = self.halt
        try:
            if halt.reason is None:
                response = await self._send(call, key, extra)
            else:
                async with halt.turn():
                    response = await self._send(call, key, extra)
        except TalonFatalError as exc:
            self.stats.retry_reasons[str(exc.status)] += 1
            self._halted_unreachable = False
            halt.trip(_fatal_reason(exc))
            raise
        except TalonTransportError as exc:
            self.stats.retry_reasons["transport"] += 1
            self._unreachable(exc)
            raise
        except TalonRetryableError as exc:
            self.stats.retry_reasons[str(exc.status)] += 1
            # An answer, so reachable; but a 5xx says nothing of a key that was refused.
            self._unreachable_since = None
            if self._halted_unreachable:
                self._resume()
            raise
        except TalonPermanentError:
            self._reachable()  # a 4xx other than 401/403: the key was accepted
            raise
        self._reachable()
        return response

    def _unreachable(self, error: TalonTransportError) -> None:
        now = self._clock()
        if self._unreachable_since is None:
            self._unreachable_since = now
        elapsed = now - self._unreachable_since
        if elapsed >= self._unreachable_after and (
            self.halt.reason is None or self._halted_unreachable
        ):
            self._halted_unreachable = True
            self.halt.trip(
                f"Talon.One cannot be reached for {self._unreachable_after:.0f} s or more "
                f"({error.args[0]}): check TALON_STREAM_TALON_BASE_URL, DNS, proxies and "
                "firewalls"
            )

    def _reachable(self) -> None:
        self._unreachable_since = None
        if self.halt.reason is not None:
            self._resume()

    def _resume(self) -> None:
        self._halted_unreachable = False
        self.halt.clear()

    async def _send(
        self, call: TalonCall, key: str, extra: Mapping[str, str] | None = None
    ) -> TalonResponse:
        if self.rate is not None:
            await self.rate.acquire()
        operation = call.operation.value
        self.stats.calls[operation] += 1
        limit = self.concurrency
        if limit is not None:
            limit.started()
        started = time.perf_counter()
        try:
            if extra is None:
                response = await self._talon.send(call, idempotency_key=key)
            else:
                response = await self._talon.send(call, idempotency_key=key, headers=extra)
        except TalonStatusError as exc:
            elapsed = time.perf_counter() - started
            self._answered(operation, exc.status, elapsed)
            if limit is not None:
                if exc.status == 429:
                    limit.overloaded()
                else:
                    limit.succeeded(elapsed)
            raise
        except BaseException as exc:
            if isinstance(exc, TalonTransportError):
                self.stats.answers[(operation, 0)] += 1
            if limit is not None:
                limit.failed()
            raise
        self._answered(operation, response.status, response.elapsed_s)
        if limit is not None:
            limit.succeeded(response.elapsed_s)
        return response

    def _answered(self, operation: str, status: int, elapsed_s: float) -> None:
        stats = self.stats
        stats.statuses[status] += 1
        stats.answers[(operation, status)] += 1
        stats.latency.observe(elapsed_s)

    async def _retry(
        self,
        call: TalonCall,
        key: str,
        first_error: Exception,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[TalonResponse, int]:
        log.info(
            "retrying %s after %s",
            call.describe(),
            first_error,
            extra={
                "envelopeId": key,
                "operation": call.operation.value,
                "profileId": call.profile_id,
                "sessionId": call.session_id,
                "errorClass": type(first_error).__name__,
                "status": getattr(first_error, "status", None),
            },
        )
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(
                (TalonRetryableError, TalonTransportError, TalonFatalError)
            ),
            wait=self._wait,
            stop=stop_never,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                if number == 1:  # the first attempt already failed before we got here
                    raise first_error
                self.stats.retries += 1
                return await self._attempt(call, key, extra), number
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _parked(self, prepared: Prepared, on_answered: Callable[[], None]) -> bool:
        """Under the park policy, dead-letter ``prepared`` if its customer is parked (``True``);
        a replayed record unparks its customer and goes on."""
        parked = self.parked
        assert parked is not None
        keys = prepared.lock_keys()
        if any(name == REPLAY_HEADER for name, _ in prepared.record.headers):
            for key in keys:
                parked.pop(key, None)
            return False
        blocker = next((parked[key] for key in keys if key in parked), None)
        if blocker is None:
            return False
        error = ParkedError(f"parked behind {blocker}, an earlier record of this customer")
        at = prepared.taken_at
        on_answered()
        await self._dead_letter(prepared.record, DlqFailure(error, 0, at, at), prepared)
        return True

    async def _dead_letter(
        self, record: InputRecord, failure: DlqFailure, prepared: Prepared | None = None
    ) -> None:
        error = failure.error
        call = prepared.call if prepared is not None else None
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
                profileId=call.profile_id if call is not None else None,
                sessionId=call.session_id if call is not None else None,
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
        await self._sink.send(self._dlq_topic, key=record.key, value=value, headers=headers)
        self.stats.dead_lettered += 1
        self.stats.dlq_reasons[type(failure.error).__name__] += 1
        if self.parked is not None and prepared is not None:
            where = f"{record.topic}/{record.partition}/{record.offset}"
            for key in prepared.lock_keys():
                self.parked.setdefault(key, where)

    @staticmethod
    def _envelope_bytes(avro: AvroFormats, topic: str, envelope: dict[str, Any]) -> bytes:
        """An envelope for ``topic``: Avro when the topic's format is, else JSON.

        Raises:
            EncodeError: the envelope does not fit the Avro schema.
        """
        if topic in avro.envelope_topics:
            return avro.encode_envelope(topic, envelope)
        return orjson.dumps(envelope)


def _fatal_reason(error: TalonFatalError) -> str:
    """What the operator must fix, from a 401 or 403."""
    if error.status == 401:
        fix = "check TALON_STREAM_TALON_API_KEY (an Integration API key of this application)"
    else:
        fix = (
            "check that the API key belongs to the application and TALON_STREAM_TALON_BASE_URL "
            "is this deployment's URL"
        )
    return f"Talon.One refused the API key (HTTP {error.status}: {error.args[0]}): {fix}"

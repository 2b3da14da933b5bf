"""One record, start to outcome: decode → translate → call Talon.One → publish.

:meth:`RecordProcessor.process` always ends in exactly one outcome record acknowledged by Kafka —
an effects envelope or a DLQ record — or raises a fatal error (a wrong API key, a broker that
refuses our records) that must stop the worker. Transient API failures are retried with jittered
exponential back-off for as long as it takes: losing the event is never the answer to an outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

from workers.calls import TalonCall
from workers.envelopes import DlqFailure, dlq_headers, effects_envelope, envelope_id
from workers.events import Event, decode_event
from workers.exceptions import (
    RecordError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from workers.kafka_io import Headers, InputRecord
from workers.stats import WorkerStats
from workers.talon_client import TalonResponse
from workers.translate import TranslationOptions, translate

__all__ = ["Prepared", "RecordProcessor", "RecordSink", "TalonSender"]

log = logging.getLogger(__name__)


class TalonSender(Protocol):
    async def send(
        self, call: TalonCall, *, idempotency_key: str | None = None
    ) -> TalonResponse: ...


class RecordSink(Protocol):
    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None: ...


class _RetryWait:
    """Full-jitter exponential back-off that never retries sooner than ``Retry-After`` asks."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s)
        self._max_s = max_s

    def __call__(self, state: RetryCallState) -> float:
        delay = float(self._backoff(state))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TalonStatusError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


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
    ) -> None:
        self._talon = talon
        self._sink = sink
        self._effects_topic = effects_topic
        self._dlq_topic = dlq_topic
        self._options = options
        self.stats = stats or WorkerStats()
        self._wait = _RetryWait(retry_initial_s, retry_max_s)
        self._sleep = sleep

    def prepare(self, record: InputRecord) -> Prepared:
        """Decode and translate ``record`` (pure CPU work, no I/O). A record that cannot become a
        call is kept with its error, to be dead-lettered by :meth:`execute`."""
        self.stats.consumed += 1
        prepared = Prepared(record, time.perf_counter(), datetime.now(tz=UTC))
        try:
            prepared.event = decode_event(record.value)
            prepared.call = translate(prepared.event, self._options)
        except RecordError as exc:
            prepared.error = exc
        return prepared

    async def process(self, record: InputRecord) -> None:
        """Bring ``record`` to its outcome: :meth:`prepare` then :meth:`execute`."""
        await self.execute(self.prepare(record))

    async def execute(self, prepared: Prepared) -> None:
        """Call Talon.One for a prepared record and publish its outcome.

        Raises:
            TalonFatalError: the API refused our credentials; nothing was published.
            BrokerError: the outcome could not be published; nothing was acknowledged.
        """
        record, event, call = prepared.record, prepared.event, prepared.call
        first_attempt = prepared.taken_at
        if prepared.error is not None or event is None or call is None:
            error = prepared.error or RecordError("the record was not prepared")
            await self._dead_letter(record, DlqFailure(error, 0, first_attempt, first_attempt))
            return
        key = envelope_id(record.topic, record.partition, record.offset)
        attempts = 1
        try:
            try:
                response = await self._send(call, key)
            except (TalonRetryableError, TalonTransportError) as exc:
                response, attempts = await self._retry(call, key, exc)
        except TalonPermanentError as exc:
            now = datetime.now(tz=UTC)
            await self._dead_letter(record, DlqFailure(exc, attempts, first_attempt, now))
            return
        processing_ms = (time.perf_counter() - prepared.started) * 1000
        envelope = effects_envelope(
            record, event, call, response, processing_ms=processing_ms, envelope_key=key
        )
        await self._sink.send(self._effects_topic, key=record.key, value=orjson.dumps(envelope))
        self.stats.effects_published += 1
        self.stats.effect_types.update(
            effect.get("effectType", "?") for effect in response.effects if isinstance(effect, dict)
        )
        self.stats.recent.append(envelope)

    async def _send(self, call: TalonCall, key: str) -> TalonResponse:
        self.stats.calls[call.operation.value] += 1
        try:
            response = await self._talon.send(call, idempotency_key=key)
        except TalonStatusError as exc:
            self.stats.statuses[exc.status] += 1
            raise
        self.stats.statuses[response.status] += 1
        return response

    async def _retry(
        self, call: TalonCall, key: str, first_error: Exception
    ) -> tuple[TalonResponse, int]:
        log.info("retrying %s after %s", call.describe(), first_error)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TalonRetryableError, TalonTransportError)),
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
                return await self._send(call, key), number
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _dead_letter(self, record: InputRecord, failure: DlqFailure) -> None:
        log.warning(
            "record %s[%d]@%d to the DLQ: %s",
            record.topic,
            record.partition,
            record.offset,
            failure.error,
        )
        await self._sink.send(
            self._dlq_topic,
            key=record.key,
            value=record.value,
            headers=dlq_headers(record, failure),
        )
        self.stats.dead_lettered += 1
        self.stats.dlq_reasons[type(failure.error).__name__] += 1

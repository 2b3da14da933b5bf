"""Fakes shared by the tests: a recording Kafka sink, a scripted Talon.One, and a record
processor assembled from them the way a worker assembles its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from talon_stream.core import (
    Headers,
    OutputRecord,
    RecordSink,
    TalonCall,
    TalonResponse,
    TranslationOptions,
)
from talon_stream.core._routing import EffectRouter
from talon_stream.dlq import DeadLetterWriter
from talon_stream.formats import Decoder
from talon_stream.formats.mapping import Mappings
from talon_stream.ops import WorkerStats
from talon_stream.processing import OutcomePublisher, RecordProcessor
from talon_stream.processing._erasures import ErasureLedger
from talon_stream.talon import AdaptiveConcurrency, Halt, RateLimiter, TalonCaller, TalonSender


class Sink:
    """Keeps every record sent, in order, as acknowledged at once."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, Headers | None]] = []

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        self.records.append((topic, key, value, headers))

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        self.records.extend(records)


class ScriptedTalon:
    """Answers from a script: an exception to raise or a body to return, in order."""

    def __init__(self, *script: Exception | dict[str, Any]) -> None:
        self.script = list(script)
        self.calls: list[tuple[TalonCall, str | None]] = []

    async def send(
        self, call: TalonCall, *, idempotency_key: str | None = None, **_: Any
    ) -> TalonResponse:
        self.calls.append((call, idempotency_key))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return TalonResponse(status=200, body=step, elapsed_s=0.01)


def make_processor(
    talon: TalonSender,
    sink: RecordSink,
    *,
    effects_topic: str = "talon.effects",
    dlq_topic: str = "talon-stream.dlq",
    options: TranslationOptions | None = None,
    stats: WorkerStats | None = None,
    halt: Halt | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    unreachable_halt_after_s: float = 60.0,
    rate: RateLimiter | None = None,
    concurrency: AdaptiveConcurrency | None = None,
    max_record_bytes: int = 512 * 1024,
    park: bool = False,
    router: EffectRouter | None = None,
    mappings: Mappings | None = None,
    avro: Any = None,
    dead_letters: DeadLetterWriter | None = None,
    erasures: ErasureLedger | None = None,
) -> RecordProcessor:
    """A processor of its decoder, caller and publisher, each given what the test sets."""
    stats = stats or WorkerStats()
    decoder = Decoder(max_record_bytes=max_record_bytes, mappings=mappings, avro=avro)
    caller = TalonCaller(
        talon,
        stats=stats,
        halt=halt,
        rate=rate,
        concurrency=concurrency,
        sleep=sleep,
        clock=clock,
        unreachable_halt_after_s=unreachable_halt_after_s,
    )
    dead_letters = dead_letters or DeadLetterWriter(
        sink, dlq_topic, stats=stats, max_record_bytes=max_record_bytes, park=park, avro=avro
    )
    publisher = OutcomePublisher(
        sink, effects_topic, dead_letters, stats=stats, router=router, avro=avro
    )
    return RecordProcessor(
        decoder,
        caller,
        publisher,
        options=options or TranslationOptions(),
        stats=stats,
        erasures=erasures,
    )

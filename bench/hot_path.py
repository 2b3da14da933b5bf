"""What each pure step of the worker's hot path costs per event, measured in-process on the
benchmark's own events and on real emulator answers to them.

    .venv/bin/python bench/hot_path.py            # prints a table and one JSON line
    .venv/bin/python bench/hot_path.py --write    # also bench/results/hot_path.json

The steps are the ones the worker runs for every record besides the I/O itself: decode and
translate (``RecordProcessor.prepare``), building the HTTP request, parsing the answer, the
effects envelope with its routed copies serialised, the envelope id, queueing three records in
librdkafka, and the scheduler's bookkeeping. Their sum set beside ``worker_cpu_us_per_event``
from ``make bench`` shows how much of a worker's CPU goes to the event loop, the sockets, the
tasks and Kafka's threads instead. Each figure is the best of five passes over the events.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import KEY, cpu_model, shop_events

from talon_stream.config import Settings
from talon_stream.core import (
    EffectRouter,
    InputRecord,
    TalonResponse,
    TranslationOptions,
    decode_event,
    effects_envelope,
    envelope_id,
    translate,
)
from talon_stream.demo import spawn_emulator, terminate
from talon_stream.processing import KeyedDispatcher, Prepared, RecordProcessor
from talon_stream.scheduling import Item, KeyedScheduler
from talon_stream.talon import Http11Client, TalonClient, decode_answer, encode_request

RESULTS = Path(__file__).resolve().parent / "results" / "hot_path.json"


def best_us_per_event(step: Callable[[], object], events: int, passes: int = 5) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return round(best / events * 1e6, 2)


async def answers_for(prepared: list[Prepared], base_url: str) -> list[TalonResponse]:
    """The emulator's answers to every call, one after another (the order a worker keeps)."""
    async with TalonClient(base_url, KEY) as client:
        out = []
        for each in prepared:
            assert each.call is not None
            record = each.record
            key = envelope_id(record.topic, record.partition, record.offset)
            out.append(await client.send(each.call, idempotency_key=key))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--write", action="store_true", help="also write " + str(RESULTS))
    args = parser.parse_args()
    n = args.events

    records = [
        InputRecord("shop.events", offset % 12, offset, key, value, [], 1_795_000_000_000 + offset)
        for offset, (key, value) in enumerate(shop_events(n, args.customers, seed=5))
    ]
    options = TranslationOptions()
    settings = Settings(talon_api_key=KEY, effects_topic="effects", dlq_topic="dlq")
    processor = RecordProcessor.from_settings(
        settings,
        None,  # type: ignore[arg-type] - prepare() makes no call
        None,  # type: ignore[arg-type] - nor does it publish
    )
    prepared = [processor.prepare(record) for record in records]
    emulator, base_url = spawn_emulator(KEY)
    try:
        answers = asyncio.run(answers_for(prepared, base_url))
    finally:
        terminate(emulator)
    bodies = [orjson.dumps(answer.body) for answer in answers]
    router = EffectRouter(Settings(talon_api_key=KEY).effect_routes)
    events = [each.event for each in prepared]
    calls = [each.call for each in prepared]
    http = Http11Client(base_url)

    def decode() -> None:
        for record in records:
            decode_event(record.value)

    def translate_all() -> None:
        for event in events:
            assert event is not None
            translate(event, options)

    def prepare() -> None:
        for record in records:
            processor.prepare(record)

    def request() -> None:
        for call in calls:
            assert call is not None
            headers, body, target = encode_request(call, "0b6f5c1e-7d3a-4a55-9c8e-3f1f0e2a6d41")
            http._encode(call.method, target, body, headers)

    def parse_answer() -> None:
        for call, body in zip(calls, bodies, strict=True):
            assert call is not None
            decode_answer(call, 200, body, None, 0.05)

    def envelope() -> None:
        for each, answer in zip(prepared, answers, strict=True):
            assert each.event is not None
            assert each.call is not None
            built = effects_envelope(
                each.record, each.event, each.call, answer, processing_ms=1.0, envelope_key="k"
            )
            orjson.dumps(built)
            for effects in router.route(answer.effects).values():
                orjson.dumps({**built, "effects": effects})

    def ids() -> None:
        ids_of(records)

    producer = Producer(
        {
            "bootstrap.servers": "127.0.0.1:9",  # nothing listens: records only queue locally
            "linger.ms": 60_000,
            "queue.buffering.max.messages": 10_000_000,
            "queue.buffering.max.kbytes": 8_000_000,
        }
    )
    value = b"x" * 700

    def produce_three() -> None:
        for record in records:
            for topic in ("effects", "pricing", "notifications"):
                producer.produce(topic, value=value, key=record.key, on_delivery=_ignore)

    def schedule() -> None:
        scheduler: KeyedScheduler[Prepared] = KeyedScheduler(256)
        items = [Item(p.record.partition_key, p.record.offset, p.lock_keys(), p) for p in prepared]
        for item in items:
            scheduler.submit(item)
        done = 0
        while done < len(items):
            for item in scheduler.take_ready():
                scheduler.answered(item)
                scheduler.complete(item)
                done += 1

    steps: dict[str, Callable[[], None]] = {
        "decode": decode,
        "translate": translate_all,
        "prepare (decode, translate, bookkeeping)": prepare,
        "build the HTTP request": request,
        "parse the answer": parse_answer,
        "envelope + routed copies, serialised": envelope,
        "envelope id": ids,
        "queue three records in librdkafka": produce_three,
        "scheduler: lock keys, submit, start, complete": schedule,
    }
    figures = {name: best_us_per_event(step, n) for name, step in steps.items()}
    producer.purge()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)  # as the worker does (workers/cli.py)
    by_id = dict(zip(ids_of(records), bodies, strict=True))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        whole = min(runner.run(whole_path(records, by_id)) for _ in range(5))
    figures[WHOLE] = round(whole / n * 1e6, 2)
    left_out = ("decode", "translate", WHOLE)
    summed = sum(value for name, value in figures.items() if name not in left_out)
    result: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "events": n,
        "answer_bytes_mean": round(sum(map(len, bodies)) / n),
        "us_per_event": figures,
        "pure_steps_us_per_event": round(summed, 1),
    }
    for name, figure in figures.items():
        print(f"{name:48s} {figure:7.2f} µs")
    print(f"{'sum of the steps (prepare and after)':48s} {summed:7.2f} µs")
    print(json.dumps(result))
    if args.write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


def _ignore(_error: object, _message: object) -> None:
    pass


WHOLE = "whole path in-process (dispatcher, instant I/O)"


def ids_of(records: list[InputRecord]) -> list[str]:
    return [envelope_id(r.topic, r.partition, r.offset) for r in records]


async def _next_pass() -> None:
    """Resume on the loop's next pass, as a task does when its answer has arrived."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[None] = loop.create_future()
    loop.call_soon(answered.set_result, None)
    await answered


class _InstantTalon:
    """Talon.One answering on the loop's next pass with its recorded answer."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self._bodies = bodies

    async def send(self, call: Any, *, idempotency_key: str, **_: object) -> TalonResponse:
        await _next_pass()
        return decode_answer(call, 200, self._bodies[idempotency_key], None, 0.0)


class _InstantKafka:
    """A broker acknowledging on the loop's next pass."""

    async def send(self, topic: str, **_: object) -> None:
        await _next_pass()

    async def send_all(self, records: object) -> None:
        await _next_pass()


def _commit_instantly(dispatcher: KeyedDispatcher) -> None:
    """What the worker's commit does, answered at once: a partition's first call and a
    coalesced one start only once a commit has listed them."""
    if dispatcher.wants_commit:
        dispatcher.mark_committed(dispatcher.committable())


async def whole_path(records: list[InputRecord], bodies: dict[str, bytes]) -> float:
    """CPU seconds for the keyed dispatcher to take every record to its outcome with 256 calls in
    flight, the records handed over in batches as the consumer does (at most 2,000 waiting): the
    worker's own machinery (tasks, futures, scheduler, processor) around the steps, no I/O."""
    settings = Settings(talon_api_key=KEY, effects_topic="effects", dlq_topic="dlq")
    processor = RecordProcessor.from_settings(settings, _InstantTalon(bodies), _InstantKafka())
    dispatcher = KeyedDispatcher(processor, max_in_flight=256, max_buffered_per_partition=10**6)
    dispatcher.assign({record.partition_key for record in records})
    started = time.process_time()
    for first in range(0, len(records), 200):
        for record in records[first : first + 200]:
            dispatcher.submit(record)
        while dispatcher.buffered > 2000:
            _commit_instantly(dispatcher)
            await asyncio.sleep(0.001)
    while processor.stats.effects_published < len(records):
        _commit_instantly(dispatcher)
        await asyncio.sleep(0.001)
    return time.process_time() - started


if __name__ == "__main__":
    main()

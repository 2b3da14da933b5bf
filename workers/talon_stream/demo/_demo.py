"""``talon-stream demo``: the whole stack on one machine, with live progress.

Starts a local broker (Apache Kafka or the embedded Tansu, see
:func:`~talon_stream.demo._broker.open_broker`; or uses ``KAFKA_BOOTSTRAP_SERVERS``), the
Talon.One emulator as a child process and one worker in this process, then feeds the worker a
generated shop stream.
Outcomes are counted independently of the worker, by reading the effects and DLQ topics back.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Producer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from talon_stream._exceptions import TalonStreamError
from talon_stream.config._settings import DEFAULT_INPUT_TOPICS, Settings
from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.demo._broker import LOCAL_CONSUMER_SETTINGS, Broker, open_broker
from talon_stream.demo._generator import CART_TOPIC, GeneratedRecord, ShopSimulator
from talon_stream.demo._subprocesses import spawn_emulator, terminate
from talon_stream.kafka._consumer import AsyncConsumer
from talon_stream.ops._stats import WorkerStats
from talon_stream.processing._worker import Worker
from talon_stream.scheduling._offsets import CommitPoint
from talon_stream.scheduling._replay import Resume

__all__ = ["DemoOptions", "run_demo"]

log = logging.getLogger(__name__)

DEMO_API_KEY = "demo-integration-key"
EFFECTS_TOPIC = "talon.effects"
DLQ_TOPIC = "talon-stream.dlq"
ERASURES_TOPIC = "talon-stream.erasures"
PARTITIONS = 6
_THINK_TIME_S = (0.3, 1.5)  # pause between one shopper's actions
_STALL_S = 60.0  # give up when no outcome arrives for this long


@dataclass(frozen=True)
class DemoOptions:
    events: int | None = None  # stop after this many outcomes; None = until Ctrl-C
    rate: float = 150.0  # generated events per second
    seed: int = 7
    emulator_latency_ms: float = 0.0
    quiet: bool = False
    health_port: int = 0  # the worker's /healthz, /readyz and /metrics (0: a free port)
    #: The cart service writes each cart update up to this late (in order): the worker puts it
    #: back in event-time order, or — later than TALON_STREAM_MAX_IDLE_MS after a newer event of
    #: its session — reports it superseded.
    cart_lag_s: float = 1.5


@dataclass
class _Progress:
    produced: int = 0
    produced_by_type: Counter[str] = field(default_factory=Counter)
    effects: int = 0
    dlq: int = 0
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    seen: set[tuple[str, int, int]] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    last_outcome: float = field(default_factory=time.monotonic)

    @property
    def outcomes(self) -> int:
        return self.effects + self.dlq


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; returns the process exit code."""
    console = console or Console()
    broker = open_broker(announce=console.print)
    emulator: subprocess.Popen[bytes] | None = None
    try:
        broker.create_topics(
            dict.fromkeys(DEFAULT_INPUT_TOPICS, PARTITIONS)
            | {EFFECTS_TOPIC: PARTITIONS, DLQ_TOPIC: 1}
        )
        broker.create_topics({ERASURES_TOPIC: 1}, {"cleanup.policy": "compact"})
        try:
            emulator, base_url = spawn_emulator(
                DEMO_API_KEY, latency_ms=options.emulator_latency_ms
            )
        except RuntimeError as exc:
            raise TalonStreamError(str(exc)) from exc
        return asyncio.run(_demo(options, broker, base_url, console))
    finally:
        terminate(emulator)
        broker.stop()


async def _demo(options: DemoOptions, broker: Broker, base_url: str, console: Console) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    settings = Settings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"talon-stream-demo-{uuid.uuid4().hex[:8]}",
        talon_base_url=base_url,
        talon_api_key=DEMO_API_KEY,
        effects_topic=EFFECTS_TOPIC,
        dlq_topic=DLQ_TOPIC,
        erasures_topic=ERASURES_TOPIC,
        health_host="127.0.0.1",
        health_port=options.health_port,
        **LOCAL_CONSUMER_SETTINGS,
    )
    stats = WorkerStats()
    worker = Worker(settings, stats=stats)
    progress = _Progress()
    worker_task = loop.create_task(worker.run(), name="worker")
    # Feed once the worker owns its partitions, so the stream starts live rather than as a backlog.
    assigned = loop.create_task(worker.wait_until_assigned())
    await asyncio.wait({worker_task, assigned}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assigned.cancel()
    feeder = loop.create_task(_feed(broker.bootstrap_servers, options, progress, stop))
    watcher = loop.create_task(_watch(broker.bootstrap_servers, progress, stop))
    header = f"broker {broker.bootstrap_servers} · Talon.One emulator {base_url}"
    if worker.health_port is not None:
        header += f" · metrics http://127.0.0.1:{worker.health_port}/metrics"
    code = 0
    try:
        with Live(
            _render(header, options, progress, stats),
            console=console,
            refresh_per_second=4,
            transient=False,
            redirect_stderr=False,
        ) as live:
            while not stop.is_set():
                await asyncio.sleep(0.25)
                live.update(_render(header, options, progress, stats))
                if worker_task.done():
                    break
                if options.events is not None and progress.outcomes >= options.events:
                    break
                if progress.produced and time.monotonic() - progress.last_outcome > _STALL_S:
                    console.print(f"[red]no outcome for {_STALL_S:.0f} s: giving up[/red]")
                    code = 1
                    break
    finally:
        stop.set()
        worker.stop()
        for task in (feeder, watcher):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(feeder, watcher, return_exceptions=True)
        try:
            await worker_task
        except TalonStreamError as exc:
            console.print(f"[red]the worker stopped: {exc}[/red]")
            code = 2
    _summary(console, options, progress, stats)
    if options.events is not None and progress.outcomes < options.events and code == 0:
        console.print("stopped (Ctrl-C) before all requested outcomes arrived")
    return code


async def _feed(
    bootstrap: str, options: DemoOptions, progress: _Progress, stop: asyncio.Event
) -> None:
    """Emit shopper journeys at ``options.rate`` events/s, each shopper pausing between steps."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "log.connection.close": False,
        }
    )
    simulator = ShopSimulator(seed=options.seed)
    rng = simulator._rng  # one seeded source for journeys and pacing
    mean_think = sum(_THINK_TIME_S) / 2
    shoppers = max(8, int(options.rate * mean_think * 1.5))
    ready: list[tuple[float, int, list[GeneratedRecord]]] = []
    now = time.monotonic()
    for n in range(shoppers):
        heapq.heappush(ready, (now + rng.uniform(0, mean_think), n, simulator.journey()))
    interval = 1.0 / options.rate if options.rate > 0 else 0.0
    next_emit = now
    counter = shoppers
    limit = options.events
    generated = 0
    # The cart service writes late: (when it writes, order, record, when it happened in ms).
    late: list[tuple[float, int, GeneratedRecord, int]] = []
    cart_written = 0.0

    def write(record: GeneratedRecord, happened_ms: int) -> None:
        # Stamped with when it happened: the worker orders co-partitioned topics by it.
        producer.produce(record.topic, value=record.value, key=record.key, timestamp=happened_ms)
        producer.poll(0)
        progress.produced += 1
        progress.produced_by_type[record.event_type] += 1

    try:
        while not stop.is_set() and (limit is None or generated < limit):
            due, n, script = ready[0]
            step_at = max(due, next_emit)
            while late and late[0][0] <= step_at:  # late carts due before the next step
                wait = late[0][0] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                _at, _seq, record, happened_ms = heapq.heappop(late)
                write(record, happened_ms)
            wait = step_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            heapq.heappop(ready)
            record = script.pop(0)
            generated += 1
            happened_ms = time.time_ns() // 1_000_000
            if record.topic == CART_TOPIC and options.cart_lag_s > 0:
                # In order, as one service writes its topic, each up to cart_lag_s late.
                cart_written = max(
                    cart_written, time.monotonic() + rng.uniform(0, options.cart_lag_s)
                )
                heapq.heappush(late, (cart_written, generated, record, happened_ms))
            else:
                write(record, happened_ms)
            next_emit = max(next_emit + interval, time.monotonic() - 1.0)
            if script:
                heapq.heappush(ready, (time.monotonic() + rng.uniform(*_THINK_TIME_S), n, script))
            else:
                counter += 1
                heapq.heappush(ready, (time.monotonic(), counter, simulator.journey()))
    finally:
        while late:  # what the cart service still owes
            _at, _seq, record, happened_ms = heapq.heappop(late)
            write(record, happened_ms)
        await asyncio.get_running_loop().run_in_executor(None, producer.flush, 10)


def run_producer(bootstrap: str, *, rate: float, events: int | None, seed: int) -> int:
    """Feed a generated shop stream into an existing Kafka's input topics until ``events`` are
    produced (or SIGINT/SIGTERM), with no broker, emulator or worker of its own: the producer
    of a compose stack. Returns the number of records produced."""
    options = DemoOptions(events=events, rate=rate, seed=seed)
    progress = _Progress()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        feeding = loop.create_task(_feed(bootstrap, options, progress, stop))
        while not feeding.done():
            await asyncio.wait({feeding}, timeout=10)
            log.info("%d events produced", progress.produced)
        await feeding

    asyncio.run(main())
    return progress.produced


async def _watch(bootstrap: str, progress: _Progress, stop: asyncio.Event) -> None:
    """Count outcomes by reading the effects and DLQ topics, one per source record."""
    consumer = AsyncConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"talon-stream-demo-watch-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "fetch.wait.max.ms": 50,
            "log.connection.close": False,
        }
    )

    async def nothing_to_commit(
        _: list[PartitionKey], __: object
    ) -> dict[PartitionKey, CommitPoint]:
        return {}

    async def assigned(_: list[PartitionKey], __: dict[PartitionKey, Resume]) -> None:
        return None

    try:
        await consumer.subscribe(
            [EFFECTS_TOPIC, DLQ_TOPIC], on_assign=assigned, on_revoke=nothing_to_commit
        )
        while not stop.is_set():
            for record in await consumer.consume(500, 0.2):
                _count_outcome(record, progress)
    finally:
        await consumer.close()


def _count_outcome(record: InputRecord, progress: _Progress) -> None:
    if record.topic == DLQ_TOPIC:
        headers = dict(record.headers)
        source = (
            headers.get("talon-stream.source.topic", b"").decode(),
            int(headers.get("talon-stream.source.partition", b"-1")),
            int(headers.get("talon-stream.source.offset", b"-1")),
        )
        if source not in progress.seen:
            progress.seen.add(source)
            progress.dlq += 1
            progress.dlq_reasons[headers.get("talon-stream.error.class", b"?").decode()] += 1
    else:
        envelope = orjson.loads(record.value or b"{}")
        src = envelope.get("source", {})
        source = (src.get("topic", ""), int(src.get("partition", -1)), int(src.get("offset", -1)))
        if source not in progress.seen:
            progress.seen.add(source)
            progress.effects += 1
    progress.last_outcome = time.monotonic()


def _render(header: str, options: DemoOptions, progress: _Progress, stats: WorkerStats) -> Any:
    elapsed = max(1e-6, time.monotonic() - progress.started)
    target = f" / {options.events}" if options.events else ""
    counts = Table.grid(padding=(0, 2))
    counts.add_row(
        "events in",
        f"{progress.produced}{target}",
        "rate",
        f"{progress.outcomes / elapsed:,.0f} outcomes/s",
    )
    counts.add_row("outcomes", f"{progress.outcomes}{target}", "effects out", str(progress.effects))
    counts.add_row("DLQ", str(progress.dlq), "retries", str(stats.retries))
    calls = ", ".join(f"{op} {n}" for op, n in stats.calls.most_common()) or "-"
    effects = ", ".join(f"{kind} {n}" for kind, n in stats.effect_types.most_common(8)) or "-"
    reasons = ", ".join(f"{kind} {n}" for kind, n in progress.dlq_reasons.most_common()) or "-"
    detail = Table.grid(padding=(0, 2))
    detail.add_row("calls", calls)
    detail.add_row("effects", effects)
    detail.add_row("DLQ reasons", reasons)
    sample = Table(title="latest effects", expand=True, show_lines=False)
    sample.add_column("event")
    sample.add_column("session")
    sample.add_column("state")
    sample.add_column("effects")
    for envelope in list(stats.recent)[-5:]:
        session = envelope.get("session") or {}
        sample.add_row(
            envelope["source"]["type"],
            str(envelope.get("sessionId") or envelope.get("profileId")),
            str(session.get("state", "")),
            _describe_effects(envelope.get("effects", [])),
        )
    return Panel(Group(counts, detail, sample), title="talon-stream demo", subtitle=header)


def _describe_effects(effects: list[dict[str, Any]]) -> str:
    parts = []
    for effect in effects[:4]:
        props = effect.get("props") or {}
        kind = effect.get("effectType", "?")
        if "value" in props and isinstance(props["value"], int | float):
            parts.append(f"{kind} {props['value']:g}")
        elif "value" in props:
            parts.append(f"{kind} {props['value']}")
        elif "title" in props:
            parts.append(f"{kind} '{props['title']}'")
        else:
            parts.append(kind)
    more = f" +{len(effects) - 4}" if len(effects) > 4 else ""
    return ", ".join(parts) + more if parts else "(none)"


def _summary(
    console: Console, options: DemoOptions, progress: _Progress, stats: WorkerStats
) -> None:
    elapsed = time.monotonic() - progress.started
    console.print()
    console.print(
        f"demo finished: {progress.produced} events produced, {progress.outcomes} outcomes "
        f"({progress.effects} effects envelopes, {progress.dlq} DLQ) in {elapsed:.1f} s"
    )
    for op, n in stats.calls.most_common():
        console.print(f"  {op:<26} {n:>7} calls")
    console.print(
        f"  superseded (late carts)    {stats.superseded:>7} records, "
        f"coalesced: {stats.calls_saved} calls saved"
    )
    for kind, n in progress.dlq_reasons.most_common():
        console.print(f"  DLQ {kind:<22} {n:>7} records")

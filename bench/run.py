"""The throughput benchmark: ways to drive the same Talon.One traffic, side by side, in one run.

One local broker (Apache Kafka or Tansu, as ``open_broker`` picks), one emulator with a fixed
latency, one input topic holding the same events for every contender (a realistic shop mix keyed
by customer):

* ``naive``            one consumer calling the official ``talon-one-sdk`` synchronously per record;
* ``quix_streams``     a real peer: the Quix Streams application a Python team would write
                       (``bench/peers/quix_streams/app.py``, in a virtualenv of its own, made on
                       first use), one StreamingDataFrame calling Talon.One per message;
* ``parallel_consumer`` a real peer: Confluent's Parallel Consumer 0.5.3.2 with KEY ordering and the
                       same in-flight budget, the JDK's HTTP client on its worker threads
                       (``bench/peers/parallel_consumer``, built with Maven on first use);
* ``partition_serial`` the real worker with one call in flight per partition (the HTTP-sink model);
* ``kafka_connect``    a real peer: Apache Kafka Connect 4.4.0, standalone, with an HTTP sink
                       connector served on Maven Central (clescot's kafka-connect-http-connectors
                       0.8.84), 12 tasks sharing the same in-flight budget
                       (``bench/peers/kafka_connect``, fetched with Maven on first use). A generic
                       HTTP sink cannot translate a shop event, so the bench translates the input
                       topic ahead of time into a topic of HTTP requests (same partitions, keys and
                       order; each request's ``Idempotency-Key`` is its input record's envelope
                       id) for the connector to send: that work is not counted for it;
* ``talon_stream``     the real worker (keyed dispatch);
* ``ceiling``          a bare asyncio loop on aiohttp making the same calls (``Idempotency-Key``
                       included) with the same concurrency, no Kafka;
* ``talon_stream_eos`` (with ``--only ...,talon_stream_eos``) the real worker with
                       ``processing_guarantee=exactly-once``, read ``read_committed``. With it in
                       the run, the latency of both workers is measured to the moment a reader
                       sees the envelope (a transaction's records are seen only once committed).

The slow contenders are measured over a time window (they would take an hour for the whole
input); the others drain it. Latency comes from paced phases of the ``talon_stream`` run after
the drain (input timestamp → effects record timestamp), at 12.5, 25 and 50 % of its measured
rate (``--latency-loads``; ``p50_ms``/``p99_ms`` are the last one's), so they show processing
latency, not queueing behind a backlog. Each phase reports the worker's stages (two scrapes of
its ``talon_stream_stage_seconds`` histograms), each record's latency split with the emulator's
request log — the call itself, the wait for the customer's previous call (the order guarantee)
and what the pipeline adds for customers with nothing in flight — and the CPU per event of every
process and of the whole machine while paced. Each worker's paced events go to a topic of its
own that it reads beside the input topic, so the input topic holds the same events for every
contender.

    .venv/bin/python bench/run.py                       # make bench
    .venv/bin/python bench/run.py --events 20000 --latency-ms 10 --customers 100

Prints a table and writes bench/results/latest.json plus a dated copy, and a chart of it,
bench/results/latest.png (``bench/charts.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from talon_stream.core import Operation, TranslationOptions, decode_event, envelope_id, translate
from talon_stream.demo import (
    LOCAL_CONSUMER_SETTINGS,
    Broker,
    ShopSimulator,
    free_port,
    open_broker,
    spawn,
    spawn_emulator,
    terminate,
)

KEY = "bench-key"
RESULTS = Path(__file__).parent / "results"
PEERS = Path(__file__).parent / "peers"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- workload --------------------------------------------------------------------------------
def shop_events(
    count: int, customers: int, seed: int, prefix: str = "session"
) -> Iterator[tuple[bytes, bytes]]:
    """``count`` (key, value) records: shopper journeys interleaved as in a live shop, each
    customer's events in order. No deliberately broken records."""
    # Every shopper has a profile, so ``customers`` is exactly the number of keys.
    simulator = ShopSimulator(
        seed=seed,
        customers=customers,
        poison_rate=0.0,
        session_prefix=prefix,
        anonymous_rate=0.0,
    )
    active: list[list[Any]] = []
    produced = 0
    rng = simulator._rng
    while produced < count:
        while len(active) < 200:
            active.append(simulator.journey())
        script = active[rng.randrange(len(active))]
        record = script.pop(0)
        if not script:
            active.remove(script)
        produced += 1
        yield record.key, record.value


def produce_input(bootstrap: str, topic: str, records: Iterator[tuple[bytes, bytes]]) -> int:
    # Idempotent: a retried batch must not land behind a later one (each customer's events
    # in order is the workload's premise).
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "log.connection.close": False,
        }
    )
    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    return count


# --- observation ---------------------------------------------------------------------------
@dataclass
class Watch:
    """Counts outcome records on the effects and DLQ topics, in a thread."""

    bootstrap: str
    topics: list[str]
    count: int = 0
    first_at: float | None = None
    last_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    record_latency: bool = False  # time each effects envelope: input timestamp → effects record
    #: Each timed envelope: its id (the call's Idempotency-Key), record key, input and effects
    #: timestamps (ms), for :func:`latency_breakdown`.
    timed: list[tuple[str, bytes, float, float]] = field(default_factory=list)
    read_committed: bool = False
    #: Time envelopes to their arrival here (what a reader sees) instead of their own timestamp.
    latency_to_arrival: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"bench-watch-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 3000,
                "heartbeat.interval.ms": 300,
                "fetch.wait.max.ms": 20,
                "log.connection.close": False,
                "isolation.level": "read_committed" if self.read_committed else "read_uncommitted",
            }
        )
        consumer.subscribe(self.topics)
        while not self._stop.is_set():
            for message in consumer.consume(1000, 0.1):
                if message.error() is not None:
                    continue
                now = time.monotonic()
                self.count += 1
                self.first_at = self.first_at or now
                self.last_at = now
                if self.record_latency and message.topic().startswith("bench.effects"):
                    self._latency(message)
        consumer.close()

    def _latency(self, message: Any) -> None:
        envelope = orjson.loads(message.value())
        _, effects_ms = message.timestamp()
        if self.latency_to_arrival:
            effects_ms = time.time() * 1000
        input_ms = datetime.fromisoformat(envelope["source"]["timestamp"]).timestamp() * 1000
        self.latencies_ms.append(effects_ms - input_ms)
        self.timed.append((envelope["envelopeId"], message.key() or b"", input_ms, effects_ms))

    def wait_for(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.count >= count


def cpu_model() -> str:
    """The machine's CPU model (Linux), recorded with every result: figures differ by machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_of(pid: int | None) -> float:
    """User+sys CPU seconds of process ``pid``, or of this process when None."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    return proc_cpu_s(pid)


def proc_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- contenders ------------------------------------------------------------------------------
@dataclass
class Stack:
    broker: Broker
    base_url: str
    topic: str
    events: int


def paced_topic(stack: Stack, name: str) -> str:
    """Where contender ``name``'s latency phase produces."""
    return f"{stack.topic}.paced.{name}"


def run_worker_process(
    stack: Stack,
    name: str,
    dispatch: str,
    max_in_flight: int,
    *,
    exactly_once: bool = False,
    latency_to_arrival: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[Any, Watch]:
    """Start the real worker as a child process on the stack, and a watch of its outcomes;
    ``env`` adds to (or overrides) its settings."""
    effects, dlq = f"bench.effects.{name}", f"bench.dlq.{name}"
    # The latency phase's events go to a topic of this contender's own: the shared input topic
    # keeps exactly ``stack.events`` records, so a contender started later neither re-reads
    # another's paced events (with their old timestamps) nor replays their sessions.
    paced = paced_topic(stack, name)
    stack.broker.create_topics({effects: 12, dlq: 1, paced: 12})
    health_port = free_port()
    env = {
        **os.environ,
        "TALON_STREAM_HEALTH_PORT": str(health_port),
        "TALON_STREAM_BOOTSTRAP_SERVERS": stack.broker.bootstrap_servers,
        "TALON_STREAM_GROUP_ID": f"bench-{name}-{uuid.uuid4().hex[:6]}",
        "TALON_STREAM_INPUT_TOPICS": f"{stack.topic},{paced}",
        "TALON_STREAM_EFFECTS_TOPIC": effects,
        "TALON_STREAM_DLQ_TOPIC": dlq,
        "TALON_STREAM_TALON_BASE_URL": stack.base_url,
        "TALON_STREAM_TALON_API_KEY": KEY,
        "TALON_STREAM_DISPATCH": dispatch,
        "TALON_STREAM_MAX_IN_FLIGHT": str(max_in_flight),
        "TALON_STREAM_SESSION_TIMEOUT_MS": str(LOCAL_CONSUMER_SETTINGS["session_timeout_ms"]),
        "TALON_STREAM_HEARTBEAT_INTERVAL_MS": str(LOCAL_CONSUMER_SETTINGS["heartbeat_interval_ms"]),
        "TALON_STREAM_FETCH_WAIT_MAX_MS": str(LOCAL_CONSUMER_SETTINGS["fetch_wait_max_ms"]),
        "TALON_STREAM_PROCESSING_GUARANTEE": "exactly-once" if exactly_once else "at-least-once",
        # The paced topic is not another service's view of the same customers: read each topic
        # on its own (merged, a record would wait up to the max idle time for the quiet one).
        "TALON_STREAM_MAX_IDLE_MS": "-1",
        **(env or {}),
    }
    watch = Watch(
        stack.broker.bootstrap_servers,
        [effects, dlq],
        read_committed=exactly_once,
        latency_to_arrival=latency_to_arrival,
    ).start()
    process = spawn(
        [sys.executable, "-m", "talon_stream.cli", "run", "--log-level", "error"],
        env=env,
        stderr=None,
    )
    process.metrics_url = f"http://127.0.0.1:{health_port}/metrics"
    return process, watch


def run_worker(
    stack: Stack,
    name: str,
    dispatch: str,
    max_in_flight: int,
    window_s: float | None,
    neighbours: dict[str, int | None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The real worker as a child process; returns eps, CPU per event and peak RSS, and the
    CPU per event of each of its ``neighbours`` (name → process ID; None for this process)
    over the same stretch. ``options``: :func:`run_worker_process`'s."""
    process, watch = run_worker_process(stack, name, dispatch, max_in_flight, **options)
    try:
        if not watch.wait_for(1, 60):
            raise SystemExit(f"{name}: no outcome within 60 s")
        beside = neighbours or {}
        cpu_beside = {each: cpu_of(pid) for each, pid in beside.items()}
        cpu_start, started = proc_cpu_s(process.pid), time.monotonic()
        target = stack.events
        if window_s is not None:
            time.sleep(window_s)
            done = watch.count
        else:
            if not watch.wait_for(target, 900):
                raise SystemExit(f"{name}: only {watch.count} of {target} outcomes")
            done = target
        elapsed = time.monotonic() - started
        cpu = proc_cpu_s(process.pid) - cpu_start
        rss = proc_peak_rss_mb(process.pid)
        per_event = {
            each: round((cpu_of(pid) - cpu_beside[each]) / max(1, done - 1) * 1e6, 1)
            for each, pid in beside.items()
        }
        return {
            "eps": round((done - 1) / elapsed, 1),
            "events": done,
            "cpu_us_per_event": round(cpu / max(1, done - 1) * 1e6, 1),
            "neighbours_cpu_us_per_event": per_event,
            "neighbours": beside,
            "peak_rss_mb": round(rss, 1),
            "process": process,
            "watch": watch,
            "paced_topic": paced_topic(stack, name),
        }
    finally:
        if window_s is not None:
            terminate(process, grace_s=5)
            watch.stop()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (``/proc/stat``)."""
    fields = [int(each) for each in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user … steal (guest time is counted in user already)
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def measure_latency(
    stack: Stack,
    result: dict[str, Any],
    rate: float,
    events: int,
    seed: int,
    sessions: str = "paced",
) -> dict[str, Any]:
    """Feed ``events`` more records (sessions named ``sessions``-…) at ``rate`` per second to
    the running worker: the latency point — end-to-end percentiles, the stages, each record's
    split (:func:`latency_breakdown`), the CPU per event of each process and the whole
    machine's CPU use while paced. Also sets ``result``'s ``p50_ms``, ``p99_ms`` and
    ``latencies_ms`` (sorted) to this point's."""
    watch: Watch = result["watch"]
    watch.latencies_ms.clear()
    watch.record_latency = True  # the backlog is drained: every new envelope is a paced event
    rate = max(10.0, rate)
    producer = Producer(
        {
            "bootstrap.servers": stack.broker.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 1,
        }
    )
    time.sleep(3)  # the drain's tail (last commits, the order check's request-log read) settles
    watch.latencies_ms.clear()
    watch.timed.clear()
    stages_before = stage_histograms(result["process"].metrics_url)
    processes = {"worker": result["process"].pid, **result.get("neighbours", {})}
    cpu_before = {name: cpu_of(pid) for name, pid in processes.items()}
    machine_before = machine_cpu()
    start = time.monotonic()
    expected = watch.count + events
    for n, (key, value) in enumerate(shop_events(events, 5000, seed + 1, prefix=sessions)):
        producer.produce(result["paced_topic"], key=key, value=value)
        producer.poll(0)
        delay = start + (n + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    watch.wait_for(expected, 120)
    elapsed = time.monotonic() - start
    machine_after = machine_cpu()
    point: dict[str, Any] = {
        "rate": round(rate, 1),
        "paced_eps": round(events / elapsed, 1),
        "machine_cpu_busy": round(
            (machine_after[0] - machine_before[0])
            / max(1e-9, machine_after[1] - machine_before[1]),
            2,
        ),
        "cpu_us_per_event": {
            name: round((cpu_of(pid) - cpu_before[name]) / events * 1e6, 1)
            for name, pid in processes.items()
        },
    }
    time.sleep(1.5)  # a commit interval: the last records' commit stage is observed
    point["stages_ms"] = stage_quantiles(
        stages_before, stage_histograms(result["process"].metrics_url)
    )
    point["latency_breakdown"] = latency_breakdown(watch.timed, request_log(stack.base_url))
    latencies = sorted(watch.latencies_ms)
    point["p50_ms"] = round(statistics.median(latencies), 1) if latencies else None
    point["p99_ms"] = (
        round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        if latencies
        else None
    )
    result["latencies_ms"] = latencies
    result["p50_ms"], result["p99_ms"] = point["p50_ms"], point["p99_ms"]
    return point


def stage_histograms(metrics_url: str) -> dict[str, list[tuple[float, float]]]:
    """The worker's stage histograms, scraped from its ``/metrics``."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        return parse_stage_histograms(response.read().decode())


def parse_stage_histograms(text: str) -> dict[str, list[tuple[float, float]]]:
    """``talon_stream_stage_seconds`` (and the call duration, as ``http_exchange``) from the
    Prometheus text: per stage, ``(upper bound s, cumulative count)`` in order."""
    stages: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "talon_stream_stage_seconds_bucket":
                stage = sample.labels["stage"]
            elif sample.name == "talon_stream_call_duration_seconds_bucket":
                # The HTTP exchange alone, within the call stage: request written → answer read.
                stage = "http_exchange"
            else:
                continue
            stages.setdefault(stage, []).append((float(sample.labels["le"]), sample.value))
    return stages


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile (s) of cumulative ``buckets``, interpolated inside its bucket as
    Prometheus' histogram_quantile does; None when empty."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def stage_quantiles(
    before: dict[str, list[tuple[float, float]]], after: dict[str, list[tuple[float, float]]]
) -> dict[str, dict[str, float | int | None]]:
    """Per stage, the calls observed between two scrapes and their p50/p99 (ms)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for stage, buckets in after.items():
        earlier = dict(before.get(stage, []))
        delta = [(bound, count - earlier.get(bound, 0.0)) for bound, count in buckets]
        p50, p99 = histogram_quantile(delta, 0.5), histogram_quantile(delta, 0.99)
        out[stage] = {
            "calls": int(delta[-1][1]) if delta else 0,
            "p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "p99_ms": None if p99 is None else round(p99 * 1000, 2),
        }
    return out


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    values = sorted(values)
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None}
    return {
        "count": len(values),
        "p50_ms": round(values[len(values) // 2], 1),
        "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 1),
    }


def latency_breakdown(
    timed: list[tuple[str, bytes, float, float]], entries: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each paced record's latency split with the emulator's request log (the call's
    Idempotency-Key is the envelope id): the call itself (Talon.One's time), the wait for the
    customer's previous call (it ended after this record was written: the per-customer order),
    and the rest — what the pipeline adds. ``added_free``: that rest for records whose customer
    had no call in flight when they were written. ``entries``: the emulator's request log."""
    calls: dict[str, tuple[float, float]] = {}
    for entry in entries:
        key = entry.get("idempotencyKey")
        if key:
            first = calls.get(key)
            started = entry["started"] * 1000 if first is None else first[0]
            calls[key] = (started, entry["ended"] * 1000)
    previous_end: dict[bytes, float] = {}
    free: list[float] = []
    busy_added: list[float] = []
    key_wait: list[float] = []
    before_call: list[float] = []
    after_call: list[float] = []
    call_ms: list[float] = []
    unmatched = 0
    for envelope_key, record_key, input_ms, effects_ms in sorted(timed, key=lambda t: t[2]):
        call = calls.get(envelope_key)
        if call is None:  # not called (superseded), or coalesced under another key
            unmatched += 1
            continue
        started, ended = call
        call_ms.append(ended - started)
        waited = max(0.0, previous_end.get(record_key, 0.0) - input_ms)
        previous_end[record_key] = ended
        added = effects_ms - input_ms - (ended - started)
        if waited > 0:
            key_wait.append(waited)
            busy_added.append(added - waited)
        else:
            free.append(added)
            before_call.append(started - input_ms)
            after_call.append(effects_ms - ended)
    return {
        "call": _percentiles(call_ms),
        "added_free": _percentiles(free),
        "added_free_before_call": _percentiles(before_call),
        "added_free_after_call": _percentiles(after_call),
        "key_wait": _percentiles(key_wait),
        "added_busy_beside_key_wait": _percentiles(busy_added),
        "unmatched": unmatched,
    }


def print_latency(point: dict[str, Any]) -> None:
    def ms(part: dict[str, Any]) -> str:
        return f"p50 {part['p50_ms']} / p99 {part['p99_ms']} ms ({part['count']} records)"

    breakdown, stages = point["latency_breakdown"], point["stages_ms"]
    pad = " " * 20
    for label, part in (
        ("the call itself (Talon.One)", "call"),
        ("added, customer free", "added_free"),
        ("  before the call", "added_free_before_call"),
        ("  after the call", "added_free_after_call"),
        ("waiting for the customer", "key_wait"),
    ):
        print(f"{pad}{label:<29}{ms(breakdown[part])}")
    print(
        f"{pad}stages (p50/p99 ms): "
        + ", ".join(f"{stage} {each['p50_ms']}/{each['p99_ms']}" for stage, each in stages.items())
    )
    print(
        f"{pad}CPU per event: "
        + ", ".join(f"{each} {cost:.0f} µs" for each, cost in point["cpu_us_per_event"].items())
    )


def run_naive(stack: Stack, window_s: float) -> dict[str, Any]:
    """One consumer, the official SDK, one synchronous call per record."""
    import talon_one

    configuration = talon_one.Configuration(
        host=stack.base_url,
        api_key={"api_key_v1": KEY},
        api_key_prefix={"api_key_v1": "ApiKey-v1"},
    )
    api = talon_one.IntegrationApi(talon_one.ApiClient(configuration))
    consumer = Consumer(
        {
            "bootstrap.servers": stack.broker.bootstrap_servers,
            "group.id": f"bench-naive-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "session.timeout.ms": 6000,
            "log.connection.close": False,
        }
    )
    consumer.subscribe([stack.topic])
    options = TranslationOptions()
    done, started = 0, None
    cpu0 = time.process_time()
    while started is None or time.monotonic() - started < window_s:
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        started = started or time.monotonic()
        call = translate(decode_event(message.value()), options)
        body = call.body or {}
        if call.operation is Operation.UPDATE_CUSTOMER_SESSION:
            api.update_customer_session_v2(
                call.integration_id, talon_one.IntegrationRequest.from_dict(body)
            )
        elif call.operation is Operation.RETURN_CART_ITEMS:
            api.return_cart_items(
                call.integration_id, talon_one.ReturnIntegrationRequest.from_dict(body)
            )
        elif call.operation is Operation.REOPEN_CUSTOMER_SESSION:
            api.reopen_customer_session(call.integration_id)
        elif call.operation is Operation.UPDATE_CUSTOMER_PROFILE:
            api.update_customer_profile_v2(
                call.integration_id,
                talon_one.CustomerProfileIntegrationRequestV2.from_dict(body),
                run_rule_engine=True,
            )
        else:
            api.track_event_v2(talon_one.IntegrationEventV2Request.from_dict(body), silent="no")
        done += 1
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.close()
    return {
        "eps": round(done / elapsed, 1),
        "events": done,
        "cpu_us_per_event": round((time.process_time() - cpu0) / max(1, done) * 1e6, 1),
    }


def peer_python(name: str) -> Path:
    """The Python of peer ``name``'s own virtualenv (``bench/peers/.venv-<name>``, made on
    first use from its ``requirements.txt`` and this project, whose translation it imports)."""
    venv = PEERS / f".venv-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    requirements = PEERS / name / "requirements.txt"
    if not stamp.exists() or stamp.stat().st_mtime < requirements.stat().st_mtime:
        print(f"{name}: making its virtualenv {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(requirements), "-e", str(PEERS.parent.parent)], check=True)
        stamp.touch()
    return python


def peer_version(python: Path, module: str) -> str:
    found = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "unknown"


def run_quix(stack: Stack, window_s: float, index: dict[str, tuple[bytes, int]]) -> dict[str, Any]:
    """The Quix Streams application (a peer), measured over ``window_s`` like the other slow
    contenders: events/s, CPU per event of its process."""
    python = peer_python("quix_streams")
    output = "bench.effects.quix"
    stack.broker.create_topics({output: 12})
    watch = Watch(stack.broker.bootstrap_servers, [output]).start()
    process = spawn(
        [
            str(python),
            str(PEERS / "quix_streams" / "app.py"),
            "--bootstrap",
            stack.broker.bootstrap_servers,
            "--input",
            stack.topic,
            "--output",
            output,
            "--group",
            f"bench-quix-{uuid.uuid4().hex[:6]}",
            "--talon-url",
            stack.base_url,
            "--api-key",
            KEY,
        ],
        env=dict(os.environ),
        stderr=None,
    )
    try:
        if not watch.wait_for(1, 90):
            raise SystemExit("quix_streams: no answer within 90 s")
        done0, cpu0, started = watch.count, proc_cpu_s(process.pid), time.monotonic()
        time.sleep(window_s)
        done, elapsed = watch.count - done0, time.monotonic() - started
        cpu = proc_cpu_s(process.pid) - cpu0
    finally:
        terminate(process, grace_s=5)
        watch.stop()
    return {
        "eps": round(done / elapsed, 1),
        "events": done,
        "cpu_us_per_event": round(cpu / max(1, done) * 1e6, 1),
        "version": peer_version(python, "quixstreams"),
        **order_violations(stack.base_url, index),
    }


def run_parallel_consumer(
    stack: Stack, in_flight: int, index: dict[str, tuple[bytes, int]]
) -> dict[str, Any]:
    """Confluent's Parallel Consumer (a peer), draining the whole input like talon_stream:
    events/s, CPU per event and peak RSS of its JVM, and Talon.One's answers by status."""
    home = PEERS / "parallel_consumer"
    jar = home / "target" / "parallel-consumer-peer-1.jar"
    source = home / "src" / "main" / "java" / "bench" / "Peer.java"
    newest = max(source.stat().st_mtime, (home / "pom.xml").stat().st_mtime)
    if not jar.exists() or jar.stat().st_mtime < newest:
        print("parallel_consumer: building it with Maven (once)")
        subprocess.run(["mvn", "-q", "-B", "package"], cwd=home, check=True)
    classpath = f"{jar}:{(home / 'target' / 'classpath.txt').read_text().strip()}"
    output = "bench.effects.parallel_consumer"
    stack.broker.create_topics({output: 12})
    watch = Watch(stack.broker.bootstrap_servers, [output]).start()
    process = spawn(
        [
            "java",
            "-cp",
            classpath,
            "bench.Peer",
            stack.broker.bootstrap_servers,
            stack.topic,
            output,
            f"bench-pc-{uuid.uuid4().hex[:6]}",
            stack.base_url,
            KEY,
            str(in_flight),
        ],
        env=dict(os.environ),
        stderr=None,
    )
    try:
        if not watch.wait_for(1, 120):
            raise SystemExit("parallel_consumer: no answer within 120 s")
        cpu0, started = proc_cpu_s(process.pid), time.monotonic()
        if not watch.wait_for(stack.events, 900):
            raise SystemExit(f"parallel_consumer: only {watch.count} of {stack.events} answers")
        elapsed = time.monotonic() - started
        cpu = proc_cpu_s(process.pid) - cpu0
        rss = proc_peak_rss_mb(process.pid)
    finally:
        terminate(process, grace_s=5)
        watch.stop()
    return {
        "eps": round((stack.events - 1) / elapsed, 1),
        "events": stack.events,
        "cpu_us_per_event": round(cpu / max(1, stack.events - 1) * 1e6, 1),
        "peak_rss_mb": round(rss, 1),
        "version": "0.5.3.2",
        "statuses": emulator_statuses(stack.base_url),
        **order_violations(stack.base_url, index),
    }


#: Talon.One answers the peers retry (the Kafka Connect peer's connector is told the same).
TRANSIENT = frozenset({408, 409, 429, 500, 502, 503, 504})


def translate_to_requests(stack: Stack, topic: str) -> int:
    """Copy the input topic into ``topic`` ahead of time (same partition, key and order for each
    record), each record replaced by the HTTP request talon-stream makes for it, as the HTTP
    sink connector reads one: ``url``, ``method``, ``headers`` (the API key, and as
    ``Idempotency-Key`` the envelope id of the *input* record's coordinates, so the order check
    matches each call to its input record), ``bodyAsString``. Returns the records written."""
    stack.broker.create_topics({topic: 12})
    consumer = Consumer(
        {
            "bootstrap.servers": stack.broker.bootstrap_servers,
            "group.id": f"bench-requests-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log.connection.close": False,
        }
    )
    consumer.subscribe([stack.topic])
    producer = Producer(
        {
            "bootstrap.servers": stack.broker.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
            "log.connection.close": False,
        }
    )
    options = TranslationOptions()
    done, deadline = 0, time.monotonic() + 300
    while done < stack.events and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is not None:
                continue
            call = translate(decode_event(message.value()), options)
            key = envelope_id(message.topic(), message.partition(), message.offset())
            headers = {"Authorization": [f"ApiKey-v1 {KEY}"], "Idempotency-Key": [key]}
            query = f"?{urlencode(call.query)}" if call.query else ""
            request: dict[str, Any] = {
                "url": f"{stack.base_url}{call.path}{query}",
                "method": call.method,
                "headers": headers,
                "bodyType": "STRING",
            }
            if call.body is not None:
                headers["Content-Type"] = ["application/json"]
                request["bodyAsString"] = orjson.dumps(call.body).decode()
            while True:
                try:
                    producer.produce(
                        topic,
                        key=message.key(),
                        value=orjson.dumps(request),
                        partition=message.partition(),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            done += 1
        producer.poll(0)
    producer.flush(60)
    consumer.close()
    return done


def emulator_calls(base_url: str) -> int:
    """How many calls the emulator has answered (its health figure: cheap to poll)."""
    with urllib.request.urlopen(f"{base_url}/__emulator/health", timeout=10) as response:
        return int(json.loads(response.read())["requests"])


def run_kafka_connect(
    stack: Stack, window_s: float | None, index: dict[str, tuple[bytes, int]], in_flight: int
) -> dict[str, Any]:
    """Apache Kafka Connect in standalone mode with a real HTTP sink connector (a peer): the
    real thing behind the partition_serial stand-in. Built with Maven on first use
    (``bench/peers/kafka_connect``: Connect's runtime, and the connector's plugin bundle as
    published on Maven Central).

    A generic HTTP sink cannot turn a shop event into its Talon.One call, so the translation is
    done ahead of time by :func:`translate_to_requests`, into a topic of HTTP requests that the
    connector reads; neither its time nor its CPU is counted here. That is an advantage given to
    the peer. It drains the whole input (or, given ``window_s``, runs that long from its first
    call): input records given a final answer (not one it retries) per second from its first
    call to its last, the CPU per record and the peak RSS of its JVM (from its first call on,
    like Parallel Consumer's), then Talon.One's answers by status and the per-customer order,
    over every call it made."""
    began = time.monotonic()
    home = PEERS / "kafka_connect"
    pom = (home / "pom.xml").read_text()
    versions = dict(re.findall(r"<(kafka|connector)\.version>([^<]+)<", pom))
    classpath_file = home / "target" / "classpath.txt"
    if (
        not classpath_file.exists()
        or classpath_file.stat().st_mtime < (home / "pom.xml").stat().st_mtime
    ):
        print("kafka_connect: fetching Kafka Connect and the connector with Maven (once)")
        subprocess.run(["mvn", "-q", "-B", "package"], cwd=home, check=True)
    requests_topic = f"{stack.topic}.requests"
    translated = translate_to_requests(stack, requests_topic)
    if translated != stack.events:
        raise SystemExit(f"kafka_connect: translated {translated} of {stack.events} records")
    tasks = 12  # one per input partition
    settings = {
        "tasks.max": tasks,
        "in_flight_per_task": max(1, in_flight // tasks),
        "max.poll.records": 500,  # the worker's default: the batch each task sends at once
        "retries": 10,
    }
    folder = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    fill = {
        "bootstrap": stack.broker.bootstrap_servers,
        "rest_port": free_port(),
        "plugin_path": home / "target" / "plugins",
        "offsets_file": folder / "connect.offsets",
        "name": f"bench-http-sink-{uuid.uuid4().hex[:6]}",
        "topic": requests_topic,
        "tasks": tasks,
        "in_flight_per_task": settings["in_flight_per_task"],
        "retries": settings["retries"],
    }
    for name in ("worker.properties", "connector.properties"):
        (folder / name).write_text((home / name).read_text().format(**fill))
    log = (folder / "connect.log").open("wb")
    process = spawn(
        [
            "java",
            # The sink task links a class that names Confluent's Schema Registry client, which is
            # not on Maven Central (the connector uses it only to publish answers with a schema,
            # off here): without bytecode verification the JVM resolves that name lazily, never.
            "-XX:+UnlockDiagnosticVMOptions",
            "-XX:-BytecodeVerificationRemote",
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "-cp",
            classpath_file.read_text().strip(),
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(folder / "worker.properties"),
            str(folder / "connector.properties"),
        ],
        env=dict(os.environ),
        stdout=log.fileno(),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while emulator_calls(stack.base_url) < 1:
            text = (folder / "connect.log").read_text(errors="replace")
            dead = "unrecoverable exception" in text or process.poll() is not None
            if dead or time.monotonic() > deadline:
                raise SystemExit(
                    f"kafka_connect: no call made; its log ({folder}) ends:\n{text[-3000:]}"
                )
            time.sleep(0.2)
        cpu0, started = proc_cpu_s(process.pid), time.time()
        calls, quiet_since = 0, time.monotonic()
        while time.time() - started < (window_s or 900.0):
            time.sleep(0.2)
            now = emulator_calls(stack.base_url)
            if now != calls:
                calls, quiet_since = now, time.monotonic()
            elif window_s is None and calls >= stack.events and time.monotonic() - quiet_since > 1:
                break  # a call per record made, and none for a second: no retry pending
            elif process.poll() is not None or time.monotonic() - quiet_since > 60:
                break  # stopped, or stalled: reported as not drained
        cpu, ended = proc_cpu_s(process.pid) - cpu0, time.time()
        rss = proc_peak_rss_mb(process.pid)
    finally:
        terminate(process, grace_s=5)
        log.close()
    with urllib.request.urlopen(f"{stack.base_url}/__emulator/requests", timeout=120) as response:
        entries = json.loads(response.read())
    final = [
        entry
        for entry in entries
        if entry["status"] not in TRANSIENT
        and entry.get("idempotencyKey") in index
        and entry["ended"] <= ended
    ]
    if window_s is None:
        done = len({entry["idempotencyKey"] for entry in final})
        first = min(entry["started"] for entry in entries)
        span = max(entry["ended"] for entry in final) - first
        eps = (done - 1) / span
    else:
        done = len({entry["idempotencyKey"] for entry in final if entry["ended"] >= started})
        eps = done / (ended - started)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "eps": round(eps, 1),
        "events": done,
        "drained": window_s is None and done == stack.events,
        "cpu_us_per_event": round(cpu / max(1, done) * 1e6, 1),
        "peak_rss_mb": round(rss, 1),
        "version": f"Kafka Connect {versions['kafka']}",
        "connector": f"io.github.clescot:kafka-connect-http-connectors:{versions['connector']}",
        "settings": settings,
        "translated_ahead": True,
        "wall_s": round(time.monotonic() - began, 1),  # build (first use), translation, run
        "statuses": emulator_statuses(stack.base_url),
        **order_violations(stack.base_url, index),
    }


def run_ceiling(
    stack: Stack,
    events: int,
    customers: int,
    seed: int,
    in_flight: int,
    window_s: float | None = None,
    emulator_pid: int | None = None,
) -> dict[str, Any]:
    """The same calls from a bare aiohttp loop. Each customer's calls are made by one lane in
    order, so it respects Talon.One's per-ID rule as the worker does, and each carries an
    ``Idempotency-Key`` as the worker's do (the emulator then does the same work: it
    fingerprints and stores every answer)."""
    options = TranslationOptions()
    by_customer: dict[bytes, list[tuple[str, str, bytes, dict[str, str]]]] = {}
    for index, (key, value) in enumerate(shop_events(events, customers, seed)):
        call = translate(decode_event(value), options)
        query = "&".join(f"{k}={v}" for k, v in call.query.items())
        path = f"{call.path}?{query}" if query else call.path
        body = orjson.dumps(call.body) if call.body is not None else b""
        headers = {"Idempotency-Key": envelope_id("ceiling", 0, index)}
        by_customer.setdefault(key, []).append((call.method, path, body, headers))
    # One lane per customer group keeps per-customer order without locks.
    lanes = list(by_customer.values())
    cpu0 = time.process_time()
    emulator_cpu0 = proc_cpu_s(emulator_pid) if emulator_pid is not None else 0.0

    done = 0

    async def run_all() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        headers = {"Authorization": f"ApiKey-v1 {KEY}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(
            stack.base_url, connector=connector, headers=headers
        ) as session:
            pending = iter(lanes)

            async def lane() -> None:
                nonlocal done
                for calls in pending:
                    for method, path, body, extra in calls:
                        if window_s is not None and time.perf_counter() - started > window_s:
                            return
                        async with session.request(
                            method, path, data=body or None, headers=extra
                        ) as response:
                            orjson.loads(await response.read() or b"{}")
                        done += 1

            started = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(in_flight)))
            return time.perf_counter() - started

    seconds = asyncio.run(run_all())
    result = {
        "eps": round(done / seconds, 1),
        "events": done,
        "cpu_us_per_event": round((time.process_time() - cpu0) / max(1, done) * 1e6, 1),
    }
    if emulator_pid is not None:
        emulator_cpu = proc_cpu_s(emulator_pid) - emulator_cpu0
        result["emulator_cpu_us_per_event"] = round(emulator_cpu / max(1, done) * 1e6, 1)
    return result


def cpu_bound_vs_ceiling(results: dict[str, Any]) -> float | None:
    """``talon_stream / ceiling`` as it would be if the machine's cores bounded both: the CPU
    every process spends per event in the ceiling run (client, emulator) over the same in the
    talon_stream run (worker, emulator, broker, this process's consumer). None without the
    broker's figure (an external broker)."""
    keyed = ("worker", "emulator", "broker", "bench")
    if any(f"{each}_cpu_us_per_event" not in results for each in keyed):
        return None
    talon_stream = sum(results[f"{each}_cpu_us_per_event"] for each in keyed)
    ceiling = results["ceiling_cpu_us_per_event"] + results["ceiling_emulator_cpu_us_per_event"]
    return round(ceiling / talon_stream, 2)


def start_emulator(latency_ms: float) -> tuple[Any, str]:
    return spawn_emulator(KEY, latency_ms=latency_ms)


def input_index(bootstrap: str, topic: str, count: int) -> dict[str, tuple[bytes, int]]:
    """Every input record's ``Idempotency-Key`` (the envelope id of its coordinates, which the
    worker and both peers send) → its key and offset: what the order check reads the
    emulator's request log with."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-index-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log.connection.close": False,
        }
    )
    consumer.subscribe([topic])
    index: dict[str, tuple[bytes, int]] = {}
    deadline = time.monotonic() + 120
    while len(index) < count and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                key = envelope_id(message.topic(), message.partition(), message.offset())
                index[key] = (message.key() or b"", message.offset())
    consumer.close()
    return index


def order_violations(base_url: str, index: dict[str, tuple[bytes, int]]) -> dict[str, int]:
    """From the emulator's request log: per customer (record key), the calls in the order they
    started must follow the records' offsets (a retry repeats one). Counts the calls matched to
    an input record, and those that started before a call of an earlier record of the key."""
    with urllib.request.urlopen(f"{base_url}/__emulator/requests", timeout=120) as response:
        entries = json.loads(response.read())
    by_key: dict[bytes, list[tuple[float, int]]] = {}
    for entry in entries:
        found = index.get(entry.get("idempotencyKey") or "")
        if found is not None:
            by_key.setdefault(found[0], []).append((entry["started"], found[1]))
    matched = violations = 0
    for calls in by_key.values():
        calls.sort()
        highest = -1
        for _, offset in calls:
            matched += 1
            if offset < highest:
                violations += 1
            highest = max(highest, offset)
    return {"calls_checked": matched, "order_violations": violations}


def request_log(base_url: str) -> list[dict[str, Any]]:
    """Every call the emulator answered, oldest first."""
    with urllib.request.urlopen(f"{base_url}/__emulator/requests", timeout=120) as response:
        entries: list[dict[str, Any]] = json.loads(response.read())
    return entries


def emulator_statuses(base_url: str) -> dict[str, int]:
    """Answers by status, and every refusal by status and operation ("400 updateSession")."""
    with urllib.request.urlopen(f"{base_url}/__emulator/requests", timeout=60) as response:
        entries = json.loads(response.read())
    counts: dict[str, int] = {}
    for entry in entries:
        status = str(entry["status"])
        counts[status] = counts.get(status, 0) + 1
        if entry["status"] >= 300:
            label = f"{status} {entry['operation']}"
            counts[label] = counts.get(label, 0) + 1
            if os.environ.get("BENCH_DUMP_REFUSALS"):
                print(json.dumps(entry), file=sys.stderr)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--window-s", type=float, default=20.0, help="for the slow contenders")
    parser.add_argument("--latency-events", type=int, default=3000)
    parser.add_argument(
        "--latency-loads",
        default="0.125,0.25,0.5",
        help="the paced phases' rates, as fractions of the rate the worker just measured; "
        "the last one is the headline p50/p99",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="one paced phase at this many events/s instead of --latency-loads",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--only",
        default=(
            "naive,quix_streams,parallel_consumer,partition_serial,kafka_connect,talon_stream,ceiling"
        ),
    )
    parser.add_argument(
        "--window-all",
        action="store_true",
        help="measure every contender over --window-s (for sweeps); no latency phase",
    )
    parser.add_argument("--out", type=Path, default=None, help="write results here instead")
    args = parser.parse_args()
    contenders = args.only.split(",")

    broker = open_broker(announce=lambda line: print(line, flush=True))
    emulator, base_url = start_emulator(args.latency_ms)
    statuses: dict[str, int] = {}

    def fresh_emulator() -> None:
        """Every contender starts from an empty Talon.One: the same events, the same answers."""
        nonlocal emulator
        for status, count in emulator_statuses(stack.base_url).items():
            statuses[status] = statuses.get(status, 0) + count
        terminate(emulator)
        emulator, stack.base_url = start_emulator(args.latency_ms)

    results: dict[str, Any] = {
        "events": args.events,
        "customers": args.customers,
        "partitions": 12,
        "latency_ms": args.latency_ms,
        "in_flight": args.in_flight,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "broker": broker.kind,
    }
    try:
        topic = f"bench.in.{uuid.uuid4().hex[:6]}"
        broker.create_topics({topic: 12})
        produced = produce_input(
            broker.bootstrap_servers, topic, shop_events(args.events, args.customers, args.seed)
        )
        stack = Stack(broker, base_url, topic, produced)
        print(f"{produced} events on {topic} (12 partitions, {args.customers} customers)")
        index = input_index(broker.bootstrap_servers, topic, produced)

        if "naive" in contenders:
            naive = run_naive(stack, args.window_s)
            results["naive_eps"] = naive["eps"]
            print(
                f"naive             {naive['eps']:>9.1f} events/s ({naive['events']} in the window)"
            )

        def peer(name: str, run: Callable[[], dict[str, Any]], says: str) -> None:
            """A real peer on a fresh emulator: its result, and its line in the table."""
            fresh_emulator()
            result = run()
            results[name], results[f"{name}_eps"] = result, result["eps"]
            print(
                f"{name:<18}{result['eps']:>9.1f} events/s, {says.format(**result)}, "
                f"{result['order_violations']} calls out of order of {result['calls_checked']}"
            )

        if "quix_streams" in contenders:
            peer(
                "quix_streams",
                lambda: run_quix(stack, args.window_s, index),
                "{events} in the window, {cpu_us_per_event:.0f} µs CPU per event, "
                "Quix Streams {version}",
            )
        if "parallel_consumer" in contenders:
            peer(
                "parallel_consumer",
                lambda: run_parallel_consumer(stack, args.in_flight, index),
                "{cpu_us_per_event:.0f} µs CPU/event (JVM), {peak_rss_mb:.0f} MB peak, "
                "answers {statuses}",
            )
        if "partition_serial" in contenders:
            fresh_emulator()
            serial = run_worker(stack, "serial", "partition", args.in_flight, args.window_s)
            results["partition_serial_eps"] = serial["eps"]
            print(
                f"partition_serial  {serial['eps']:>9.1f} events/s ({serial['events']} in window)"
            )
        if "kafka_connect" in contenders:
            peer(
                "kafka_connect",
                lambda: run_kafka_connect(
                    stack, args.window_s if args.window_all else None, index, args.in_flight
                ),
                "{events} given a final answer, {cpu_us_per_event:.0f} µs CPU/event (JVM), "
                "{peak_rss_mb:.0f} MB peak, {version} + {connector}, answers {statuses}",
            )
        to_arrival = "talon_stream_eos" in contenders
        for variant, exactly_once in (("talon_stream", False), ("talon_stream_eos", True)):
            if variant not in contenders:
                continue
            fresh_emulator()
            # What the processes sharing the machine spend per event beside the worker.
            neighbours: dict[str, int | None] = {"emulator": emulator.pid, "bench": None}
            broker_pid = getattr(broker, "pid", None)
            if broker_pid is not None:  # an external broker's CPU is not ours to read
                neighbours["broker"] = broker_pid
            keyed = run_worker(
                stack,
                "eos" if exactly_once else "keyed",
                "keyed",
                args.in_flight,
                args.window_s if args.window_all else None,
                neighbours,
                exactly_once=exactly_once,
                latency_to_arrival=to_arrival,
            )
            prefix = "eos_" if exactly_once else ""
            try:
                results.update(
                    {
                        f"{variant}_eps": keyed["eps"],
                        f"{prefix}worker_cpu_us_per_event": keyed["cpu_us_per_event"],
                        f"{prefix}peak_rss_mb": keyed["peak_rss_mb"],
                    }
                )
                results.update(
                    (f"{prefix}{each}_cpu_us_per_event", cost)
                    for each, cost in keyed["neighbours_cpu_us_per_event"].items()
                )
                order = order_violations(stack.base_url, index)  # before the paced phase
                results[f"{prefix}order_check"] = order
                results[f"{prefix}statuses"] = emulator_statuses(stack.base_url)
                print(
                    f"{variant:<18}{keyed['eps']:>9.1f} events/s, "
                    f"{keyed['cpu_us_per_event']:.0f} µs CPU/event, "
                    f"{keyed['peak_rss_mb']:.0f} MB peak, "
                    f"{order['order_violations']} calls out of order of {order['calls_checked']}"
                )
                print(
                    "                  beside it per event: "
                    + ", ".join(
                        f"{each} {cost:.0f} µs"
                        for each, cost in keyed["neighbours_cpu_us_per_event"].items()
                    )
                )
                # With --window-all the worker was stopped at the end of its window: no latency.
                loads = (
                    []
                    if args.window_all
                    else [args.latency_rate / keyed["eps"]]
                    if args.latency_rate
                    else [float(each) for each in args.latency_loads.split(",")]
                )
                points = []
                seen = "seen by a reader" if to_arrival else "effects record written"
                for number, load in enumerate(loads):
                    point = measure_latency(
                        stack,
                        keyed,
                        keyed["eps"] * load,
                        args.latency_events,
                        args.seed,
                        sessions=f"paced{number}",
                    )
                    point["load"] = round(load, 3)
                    points.append(point)
                    print(
                        f"                  paced at {point['paced_eps']}/s ({load:.0%} of the "
                        f"drain rate; machine CPU {point['machine_cpu_busy']:.0%} busy): "
                        f"latency ({seen}) p50 {point['p50_ms']} ms, p99 {point['p99_ms']} ms"
                    )
                    print_latency(point)
                if points:  # the headline: the last point (half the drain rate by default)
                    results[f"{prefix}latency_points"] = points
                    results[f"{prefix}p50_ms"] = points[-1]["p50_ms"]
                    results[f"{prefix}p99_ms"] = points[-1]["p99_ms"]
            finally:
                terminate(keyed["process"], grace_s=10)
                keyed["watch"].stop()
        if to_arrival:
            results["latency_measured_to"] = "arrival at a reader"
        if "ceiling" in contenders:
            fresh_emulator()
            ceiling = run_ceiling(
                stack,
                args.events,
                args.customers,
                args.seed,
                args.in_flight,
                args.window_s if args.window_all else None,
                emulator.pid,
            )
            results["ceiling_eps"] = ceiling["eps"]
            results["ceiling_cpu_us_per_event"] = ceiling["cpu_us_per_event"]
            results["ceiling_emulator_cpu_us_per_event"] = ceiling["emulator_cpu_us_per_event"]
            print(
                f"ceiling           {ceiling['eps']:>9.1f} events/s, "
                f"{ceiling['cpu_us_per_event']:.0f} µs CPU/call (the bare client loop alone), "
                f"emulator {ceiling['emulator_cpu_us_per_event']:.0f} µs"
            )
        fresh_emulator()
        results["emulator_statuses"] = statuses
        results["emulator_409s"] = statuses.get("409", 0)
    finally:
        terminate(emulator)
        broker.stop()

    if "talon_stream_eps" in results and "talon_stream_eos_eps" in results:
        results["eos_vs_at_least_once_eps"] = round(
            results["talon_stream_eos_eps"] / results["talon_stream_eps"], 3
        )
    # talon_stream's events/s over each other contender's that ran (places: how it is rounded).
    for other, places in (
        ("parallel_consumer", 2),
        ("quix_streams", 1),
        ("partition_serial", 2),
        ("kafka_connect", 2),
        ("ceiling", 2),
    ):
        if "talon_stream_eps" in results and f"{other}_eps" in results:
            results[f"talon_stream_vs_{other}"] = round(
                results["talon_stream_eps"] / results[f"{other}_eps"], places
            )
    if "talon_stream_eps" in results and "ceiling_eps" in results:
        bound = cpu_bound_vs_ceiling(results)
        if bound is not None:
            results["cpu_bound_vs_ceiling"] = bound
            print(
                f"talon_stream / ceiling if only the CPU bound both: {bound:.2f} "
                "(CPU per event of every process on the machine, ceiling ÷ talon_stream)"
            )
    print(json.dumps(results, indent=2))
    text = json.dumps(results, indent=2) + "\n"
    if args.out is not None:
        args.out.write_text(text)
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{time.strftime('%Y-%m-%d')}.json").write_text(text)
    try:  # a chart that fails costs the chart, not the figures written above
        import charts

        charts.run_chart(results, RESULTS / "latest.png")
    except Exception as error:  # noqa: BLE001
        print(f"warning: no chart drawn: {error!r}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What the chaos scenarios are made of: a workload, a producer that remembers where each record
landed, a reader of the effects and DLQ topics on a background thread, and ``talon-stream run``
as a child process that can be killed.

Nothing here asserts: the scenarios collect, :mod:`tests.chaos.judge` decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from talon_stream.demo._broker import LOCAL_CONSUMER_SETTINGS
from talon_stream.demo._generator import GeneratedRecord, ShopSimulator
from talon_stream.demo._subprocesses import spawn
from tests.chaos.judge import DlqRecord, SourceRecord

__all__ = [
    "OutcomeCollector",
    "Planned",
    "WorkerProcess",
    "committed_offsets",
    "http_json",
    "interleaved_journeys",
    "produce_planned",
    "wait_until",
    "worker_env",
]


@dataclass(frozen=True, slots=True)
class Planned:
    """A record to produce, with what should become of it."""

    key: bytes | None
    value: bytes | None
    expect_dlq: bool = False
    expect_error_class: str | None = None


def interleaved_journeys(
    count: int, *, seed: int, customers: int, anonymous_rate: float = 0.15, active: int = 200
) -> list[Planned]:
    """``count`` valid records of whole shopper journeys, interleaved as in a live shop: up to
    ``active`` shoppers at once, each one's records in order."""
    simulator = ShopSimulator(
        seed=seed,
        customers=customers,
        poison_rate=0.0,
        anonymous_rate=anonymous_rate,
        session_prefix=f"s{seed}",
    )
    rng = random.Random(seed)
    scripts: list[list[GeneratedRecord]] = []
    planned: list[Planned] = []
    while len(planned) < count:
        while len(scripts) < active:
            scripts.append(simulator.journey())
        script = scripts[rng.randrange(len(scripts))]
        record = script.pop(0)
        if not script:
            scripts.remove(script)
        planned.append(Planned(record.key, record.value))
    return planned


def produce_planned(
    bootstrap: str,
    topic: str,
    planned: Sequence[Planned],
    *,
    max_message_bytes: int | None = None,
    timeout_s: float = 60.0,
    topic_of: Callable[[Planned], str] | None = None,
    timestamps: Sequence[int] | None = None,
) -> list[SourceRecord]:
    """Produce ``planned`` in order (idempotent producer: per-partition order holds) and return
    each record with the partition and offset the broker gave it. ``topic_of``: each record's
    topic (else ``topic``); ``timestamps``: each record's timestamp in ms (else the send time)."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "log.connection.close": False,
    }
    if max_message_bytes is not None:
        config["message.max.bytes"] = max_message_bytes
    producer = Producer(config)
    placed: list[SourceRecord | None] = [None] * len(planned)
    errors: list[str] = []

    def delivered(index: int) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(str(error))
                return
            plan = planned[index]
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            placed[index] = SourceRecord(
                message.topic() or topic,
                partition,
                offset,
                plan.key,
                plan.value,
                expect_dlq=plan.expect_dlq,
                expect_error_class=plan.expect_error_class,
            )

        return report

    for index, plan in enumerate(planned):
        where = topic_of(plan) if topic_of is not None else topic
        stamp = {} if timestamps is None else {"timestamp": timestamps[index]}
        while True:
            try:
                producer.produce(
                    where, key=plan.key, value=plan.value, on_delivery=delivered(index), **stamp
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining or errors:
        raise RuntimeError(f"{remaining} records unsent, errors: {errors[:3]}")
    return [record for record in placed if record is not None]


class OutcomeCollector:
    """Reads the effects and DLQ topics from their beginning on a background thread.

    Partitions are assigned directly (no group, nothing committed). Envelopes are kept reduced
    to ``envelopeId`` and ``source``; every value and header is searched for ``secrets`` (API
    keys must never be written to a record)."""

    def __init__(
        self,
        bootstrap: str,
        effects_topic: str,
        dlq_topic: str,
        partitions: Mapping[str, int],
        *,
        secrets: Sequence[str] = (),
        read_committed: bool = False,
    ) -> None:
        self._effects_topic = effects_topic
        self._dlq_topic = dlq_topic
        self._secrets = [secret.encode() for secret in secrets if secret]
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"chaos-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
                "fetch.wait.max.ms": 50,
                "log.connection.close": False,
            }
        )
        self._consumer.assign(
            [
                TopicPartition(topic, partition, OFFSET_BEGINNING)
                for topic in (effects_topic, dlq_topic)
                for partition in range(partitions[topic])
            ]
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.envelopes: list[dict[str, Any]] = []
        self.dlq: list[DlqRecord] = []
        self.leaks: list[str] = []
        self._envelope_ids: set[str] = set()
        self._dlq_coordinates: set[tuple[str, int, int]] = set()
        self.last_arrival = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="chaos-collector", daemon=True)

    def __enter__(self) -> OutcomeCollector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, 0.1):
                if message.error() is None:
                    self._take(message)

    def _take(self, message: Message) -> None:
        value = message.value()
        raw_value = value.encode() if isinstance(value, str) else value
        # A consumed message's headers are always a list of (name, value) pairs.
        headers: list[tuple[str, str | bytes | None]] = message.headers() or []  # type: ignore[assignment]
        raw_headers = [
            (name, data.encode() if isinstance(data, str) else data) for name, data in headers
        ]
        topic = message.topic()
        where = f"{topic}/{message.partition()}/{message.offset()}"
        for secret in self._secrets:
            if raw_value is not None and secret in raw_value:
                self.leaks.append(f"{where}: the value holds an API key")
            if any(data is not None and secret in data for _, data in raw_headers):
                self.leaks.append(f"{where}: a header holds an API key")
        with self._lock:
            self.last_arrival = time.monotonic()
            if topic == self._effects_topic and raw_value is not None:
                envelope = orjson.loads(raw_value)
                reduced = {"envelopeId": envelope["envelopeId"], "source": envelope["source"]}
                if envelope.get("coalescedInto"):
                    reduced["coalescedInto"] = envelope["coalescedInto"]
                self.envelopes.append(reduced)
                self._envelope_ids.add(envelope["envelopeId"])
            elif topic == self._dlq_topic:
                record = DlqRecord.from_headers(raw_headers)
                self.dlq.append(record)
                if record.coordinates is not None:
                    self._dlq_coordinates.add(record.coordinates)

    def missing(self, records: Sequence[SourceRecord]) -> int:
        """How many of ``records`` have no outcome yet."""
        with self._lock:
            ids, dead = self._envelope_ids, self._dlq_coordinates
            return sum(1 for r in records if r.envelope_id not in ids and r.coordinates not in dead)

    def outcomes(self) -> int:
        with self._lock:
            return len(self.envelopes) + len(self.dlq)

    def has_outcome(self, record: SourceRecord) -> bool:
        with self._lock:
            return (
                record.envelope_id in self._envelope_ids
                or record.coordinates in self._dlq_coordinates
            )

    async def settle(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Wait until nothing new has arrived for ``quiet_s`` (late duplicates included)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                idle = time.monotonic() - self.last_arrival
            if idle >= quiet_s:
                return
            await asyncio.sleep(0.1)


async def wait_until(
    condition: Callable[[], bool], *, timeout_s: float, what: str, poll_s: float = 0.05
) -> float:
    """Wait for ``condition``; return the seconds it took.

    Raises:
        TimeoutError: it did not hold within ``timeout_s`` (the message names ``what``).
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(poll_s)
    return time.monotonic() - started


def worker_env(fields: Mapping[str, object]) -> dict[str, str]:
    """The environment of ``talon-stream run`` for these settings fields (plus the local
    consumer timings), on top of ours without any ``TALON_STREAM_*`` we may have."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALON_STREAM_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    merged: dict[str, object] = {**LOCAL_CONSUMER_SETTINGS, **fields}
    for name, value in merged.items():
        if isinstance(value, (tuple, list)):
            text = ",".join(str(part) for part in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env["TALON_STREAM_" + name.upper()] = text
    return env


class WorkerProcess:
    """``talon-stream run`` as a child process, its stderr appended to ``log_path``."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, log_level: str = "info") -> None:
        self._env = dict(env)
        self.log_path = log_path
        self._log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self.starts = 0

    def start(self) -> None:
        """Start it (again); spawn from the main thread (see talon_stream.demo._subprocesses)."""
        self._log = self.log_path.open("ab")
        self.process = spawn(
            [sys.executable, "-m", "talon_stream.cli", "run", "--log-level", self._log_level],
            env=self._env,
            stderr=self._log.fileno(),
        )
        self.starts += 1

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def alive(self) -> bool:
        """True while it runs.

        Raises:
            RuntimeError: it exited by itself (the message has its exit code and last log lines).
        """
        process = self.process
        if process is None or process.poll() is None:
            return True
        tail = "\n".join(self.log_text().splitlines()[-15:])
        raise RuntimeError(f"the worker exited by itself with code {process.returncode}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye to the group."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        self._close_log()

    async def terminate(self, timeout_s: float) -> tuple[int | None, float]:
        """SIGTERM once it has started, and wait; returns the exit code (``None``: still
        running after ``timeout_s``, then killed) and the seconds it took to exit. (A SIGTERM
        while the interpreter itself starts ends any Python program with -15, before the
        worker can install its handler; that is not what a scenario checks.)"""
        process = self.process
        if process is None:
            return None, 0.0
        await self.started(timeout_s)
        started = time.monotonic()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, timeout_s)
        took = time.monotonic() - started
        code = process.poll()
        if code is None:
            self.kill()
        self._close_log()
        return code, took

    async def started(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until this start of the worker has installed its signal
        handlers: it logs ``talon-stream <version> starting (pid <pid>)`` right after (at log
        level info)."""
        deadline = time.monotonic() + timeout_s
        process = self.process
        while time.monotonic() < deadline and process is not None and self.running():
            if f" starting (pid {process.pid})" in self.log_text():
                return True
            await asyncio.sleep(0.05)
        return False

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def http_json(
    method: str, url: str, body: object | None = None, timeout_s: float = 5.0
) -> tuple[int, Any]:
    """A blocking JSON request (run it with ``asyncio.to_thread``); any status is returned."""
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            payload = answer.read()
            status = int(answer.status)
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    return status, orjson.loads(payload) if payload else None

"""``talon-stream dlq replay``: DLQ records go back to their source topics as they were, in order
per key, on a real broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from talon_one_emulator import EmulatorConfig, EmulatorServer, load_campaigns
from talon_stream._exceptions import (
    BrokerError,
    DecodeError,
    TalonPermanentError,
    TalonStreamError,
    TranslationError,
)
from talon_stream.cli._main import EXIT_BROKER, main
from talon_stream.config._settings import Settings
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.core._dead_letters import REPLAY_HEADER, DlqFailure, dlq_headers
from talon_stream.core._records import Headers, InputRecord
from talon_stream.demo._broker import Broker
from talon_stream.demo._subprocesses import free_port
from talon_stream.dlq import (
    DeadLetter,
    DlqTopicNotFoundError,
    Replay,
    ReplayDeliveryError,
    ReplayFilter,
    ReplayObserver,
    ReplayOptions,
    replay_dlq,
)
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_topic
from tests.integration.conftest import API_KEY, create_topics, running, wait_for, worker_settings
from tests.integration.test_end_to_end import TUTORIAL_CART, event

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
KEYS = (b"ada", b"bob", b"cy", b"dee")
RECORDS = 24


@dataclass(frozen=True)
class Failed:
    """A record the worker dead-lettered, as the test wrote it to the DLQ."""

    source_topic: str
    source_partition: int
    key: bytes
    value: bytes
    headers: Headers
    error_class: str
    failed_at: datetime


@dataclass
class Seeded:
    dlq: str
    carts: str
    orders: str
    #: DLQ coordinates ("dlq/partition/offset") -> what was dead-lettered there.
    by_coordinates: dict[str, Failed]
    #: The records in the order they were dead-lettered.
    order: list[str]


def _error(n: int, key: str) -> TalonStreamError:
    session = TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION,
        f"{key}-s1",
        {"customerSession": {"attributes": {"favouriteColour": "teal"}}},
        profile_id=key,
        session_id=f"{key}-s1",
    )
    if n % 3 == 0:
        return TalonPermanentError(
            "The submitted data was invalid",
            call=session,
            status=400,
            body='{"message":"The submitted data was invalid","errors":[{"title":"Unknown",'
            '"source":{"pointer":"/customerSession/attributes/favouriteColour"}}],'
            '"StatusCode":400}',
        )
    if n % 3 == 1:
        return DecodeError("the value is not valid JSON: unexpected end of data")
    return TranslationError("order.items_returned needs payload.items")


def seed_dlq(broker: Broker, unique: str, count: int = RECORDS) -> Seeded:
    """DLQ records as the worker writes them: four keys interleaved, two source topics, three
    kinds of failure, one a minute from T0; original headers include a repeated name and an
    empty value."""
    dlq, carts, orders = f"dlq-{unique}", f"carts-{unique}", f"orders-{unique}"
    broker.create_topics({dlq: 3, carts: 3, orders: 3})
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    written: list[Failed] = []
    coordinates: list[str | None] = [None] * count
    source_offsets: Counter[tuple[str, int]] = Counter()
    for n in range(count):
        key = KEYS[n % len(KEYS)]
        topic = carts if (n // len(KEYS)) % 2 == 0 else orders
        partition = KEYS.index(key) % 3
        offset = source_offsets[(topic, partition)]
        source_offsets[(topic, partition)] += 1
        headers: Headers = [
            ("traceparent", f"00-{n:032x}-{n:016x}-01".encode()),
            ("x-tag", b"first"),
            ("x-tag", b"second"),
            ("x-empty", b""),
        ]
        value = orjson.dumps({"eventId": f"e-{n}", "type": "cart.updated", "n": n})
        record = InputRecord(
            topic, partition, offset, key, value, headers, int(T0.timestamp() * 1000)
        )
        error = _error(n, key.decode())
        failed_at = T0 + timedelta(minutes=n)
        attempts = 1 if isinstance(error, TalonPermanentError) else 0
        failure = DlqFailure(error, attempts, failed_at - timedelta(seconds=1), failed_at)
        written.append(
            Failed(topic, partition, key, value, headers, type(error).__name__, failed_at)
        )

        def delivered(err: KafkaError | None, message: Any, n: int = n) -> None:
            assert err is None, err
            coordinates[n] = f"{dlq}/{message.partition()}/{message.offset()}"

        sent: list[tuple[str, str | bytes | None]] = [*dlq_headers(record, failure)]
        producer.produce(
            dlq,
            key=key,
            value=value,
            headers=sent,
            timestamp=int(failed_at.timestamp() * 1000),  # produced when the worker gave up
            on_delivery=delivered,
        )
    assert producer.flush(10) == 0
    order = [c for c in coordinates if c is not None]
    assert len(order) == count
    return Seeded(dlq, carts, orders, dict(zip(order, written, strict=True)), order)


def read_back(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record now on ``topic``, partition by partition in offset order (no group)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-back-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found: dict[int, list[Any]] = defaultdict(list)
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while at_end != set(partitions):
            assert time.monotonic() < deadline, f"{topic}: only {sorted(at_end)} read to the end"
            for message in consumer.consume(500, 0.2):
                error, partition = message.error(), message.partition()
                assert partition is not None
                if error is None:
                    found[partition].append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(partition)
    finally:
        consumer.close()
    return [message for p in sorted(found) for message in found[p]]


def replay_of(message: Any) -> str:
    [value] = [v for k, v in message.headers() if k == REPLAY_HEADER]
    return str(value.decode())


def settings_for(broker: Broker, dlq: str) -> Settings:
    return Settings(bootstrap_servers=broker.bootstrap_servers, dlq_topic=dlq)


def assert_replayed_as_written(
    seeded: Seeded, messages: list[Any], *, same_partition: bool
) -> None:
    """Each message is its DLQ record's original: key, value, headers in order, then only
    ``talon-stream.replay.of``; and each key's records on a topic keep their dead-lettering
    order."""
    per_key: dict[tuple[str, bytes], list[str]] = defaultdict(list)
    for message in messages:
        coordinates = replay_of(message)
        failed = seeded.by_coordinates[coordinates]
        assert message.key() == failed.key
        assert message.value() == failed.value
        assert message.headers() == [*failed.headers, (REPLAY_HEADER, coordinates.encode())]
        if same_partition:
            assert message.partition() == failed.source_partition
        per_key[(message.topic(), failed.key)].append(coordinates)
    for key, replayed in per_key.items():
        original = [c for c in seeded.order if c in set(replayed)]
        assert replayed == original, f"{key!r} out of order"
        assert len({int(c.rsplit("/", 2)[1]) for c in replayed}) == 1  # one DLQ partition a key


async def test_replay_republishes_each_record_as_it_was_in_key_order(
    broker: Broker, unique: str
) -> None:
    seeded = seed_dlq(broker, unique)

    summary = await replay_dlq(settings_for(broker, seeded.dlq), ReplayOptions(seeded.dlq))

    written = list(seeded.by_coordinates.values())
    assert (summary.scanned, summary.selected, summary.replayed) == (RECORDS, RECORDS, RECORDS)
    assert summary.skipped_by_filter.total() == 0
    assert summary.skipped_no_source_topic == 0
    assert summary.partitions == 3
    assert summary.by_error_class == Counter(f.error_class for f in written)
    assert summary.by_error_class == {
        "TalonPermanentError": 8,
        "DecodeError": 8,
        "TranslationError": 8,
    }
    assert summary.by_source_topic == {seeded.carts: 12, seeded.orders: 12}
    for topic in (seeded.carts, seeded.orders):
        messages = read_back(broker.bootstrap_servers, topic)
        assert sorted(replay_of(m) for m in messages) == sorted(
            c for c, f in seeded.by_coordinates.items() if f.source_topic == topic
        )
        assert_replayed_as_written(seeded, messages, same_partition=True)


FILTERS: dict[str, tuple[ReplayFilter, Callable[[Failed], bool]]] = {
    "error class": (
        ReplayFilter(error_classes=frozenset({"DecodeError", "TranslationError"})),
        lambda f: f.error_class in {"DecodeError", "TranslationError"},
    ),
    "key": (ReplayFilter(keys=frozenset({b"ada", b"cy"})), lambda f: f.key in {b"ada", b"cy"}),
    "time window": (
        ReplayFilter(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=13)),
        lambda f: T0 + timedelta(minutes=5) <= f.failed_at < T0 + timedelta(minutes=13),
    ),
    "all at once": (
        ReplayFilter(
            since=T0 + timedelta(minutes=3),
            error_classes=frozenset({"TalonPermanentError"}),
            keys=frozenset({b"bob", b"dee"}),
        ),
        lambda f: (
            f.failed_at >= T0 + timedelta(minutes=3)
            and f.error_class == "TalonPermanentError"
            and f.key in {b"bob", b"dee"}
        ),
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_filters_select_what_is_replayed(broker: Broker, unique: str, name: str) -> None:
    selection, wanted = FILTERS[name]
    seeded = seed_dlq(broker, unique)
    target = f"target-{unique}"
    broker.create_topics({target: 3})

    summary = await replay_dlq(
        settings_for(broker, seeded.dlq),
        ReplayOptions(seeded.dlq, selection, to_topic=target),
    )

    expected = sorted(c for c, f in seeded.by_coordinates.items() if wanted(f))
    assert 0 < len(expected) < RECORDS
    assert (summary.scanned, summary.selected, summary.replayed) == (
        RECORDS,
        len(expected),
        len(expected),
    )
    assert summary.skipped_by_filter.total() == RECORDS - len(expected)
    messages = read_back(broker.bootstrap_servers, target)
    assert sorted(replay_of(m) for m in messages) == expected
    assert_replayed_as_written(seeded, messages, same_partition=False)


async def test_source_topic_filter(broker: Broker, unique: str) -> None:
    seeded = seed_dlq(broker, unique)
    selection = ReplayFilter(source_topics=frozenset({seeded.orders}))

    summary = await replay_dlq(
        settings_for(broker, seeded.dlq), ReplayOptions(seeded.dlq, selection)
    )

    assert (summary.selected, summary.replayed) == (12, 12)
    assert summary.skipped_by_filter == {"topic": 12}
    assert summary.by_source_topic == {seeded.orders: 12}
    assert read_back(broker.bootstrap_servers, seeded.carts) == []
    assert len(read_back(broker.bootstrap_servers, seeded.orders)) == 12


def test_dry_run_lists_the_records_and_produces_nothing(broker: Broker, unique: str) -> None:
    seeded = seed_dlq(broker, unique)

    result = CliRunner().invoke(
        main,
        [
            "dlq",
            "replay",
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--dlq-topic",
            seeded.dlq,
            "--error-class",
            "DecodeError",
            "--dry-run",
        ],
    )

    assert result.exit_code == 0, result.output
    expected = [c for c, f in seeded.by_coordinates.items() if f.error_class == "DecodeError"]
    listed = [line.split(" ")[0] for line in result.stdout.splitlines() if " -> " in line]
    assert sorted(listed) == sorted(expected)
    assert f"scanned {RECORDS} records in 3 partitions, selected 8, would replay 8" in result.stdout
    assert "dry run: nothing produced" in result.stdout
    assert "skipped by filter: 16 (error-class 16)" in result.stdout
    assert read_back(broker.bootstrap_servers, seeded.carts) == []
    assert read_back(broker.bootstrap_servers, seeded.orders) == []


def test_the_command_replays_and_prints_a_summary(broker: Broker, unique: str) -> None:
    seeded = seed_dlq(broker, unique)

    result = CliRunner().invoke(
        main,
        [
            "dlq",
            "replay",
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--dlq-topic",
            seeded.dlq,
            "--key",
            "bob",
            "--key",
            "dee",
            "--since",
            "2026-11-22T10:04:00Z",
            "--until",
            "2026-11-22 12:00",  # no offset: UTC
        ],
    )

    assert result.exit_code == 0, result.output
    expected = [
        c
        for c, f in seeded.by_coordinates.items()
        if f.key in {b"bob", b"dee"} and f.failed_at >= T0 + timedelta(minutes=4)
    ]
    assert len(expected) == 10
    assert f"scanned {RECORDS} records in 3 partitions, selected 10, replayed 10" in result.stdout
    assert "skipped by filter: 14 (key 10, time 4)" in result.stdout
    assert "by error class: " in result.stdout
    assert f"by source topic: {seeded.orders} 6, {seeded.carts} 4" in result.stdout
    messages = [
        *read_back(broker.bootstrap_servers, seeded.carts),
        *read_back(broker.bootstrap_servers, seeded.orders),
    ]
    assert sorted(replay_of(m) for m in messages) == sorted(expected)
    assert_replayed_as_written(seeded, messages, same_partition=True)


class Recorder(ReplayObserver):
    def __init__(self) -> None:
        self.selected_records: list[Replay] = []
        self.skips: list[tuple[str, str]] = []

    def selected(self, replay: Replay) -> None:
        self.selected_records.append(replay)

    def skipped(self, letter: DeadLetter, reason: str) -> None:
        self.skips.append((letter.coordinates, reason))


async def test_records_that_cannot_be_replayed_are_skipped_and_counted(
    broker: Broker, unique: str
) -> None:
    dlq, target = f"dlq-{unique}", f"target-{unique}"
    broker.create_topics({dlq: 1, target: 1})
    record = InputRecord("shop.carts", 0, 7, b"ada", b"{}", [("traceparent", b"x")], None)
    failure = DlqFailure(DecodeError("not an event"), 0, T0, T0)
    headers = dlq_headers(record, failure)
    orphan: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in headers if k != "talon-stream.source.topic"
    ]
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    producer.produce(dlq, key=b"ada", value=b"{}", headers=orphan)
    assert producer.flush(10) == 0

    recorder = Recorder()
    summary = await replay_dlq(settings_for(broker, dlq), ReplayOptions(dlq), observer=recorder)
    assert (summary.scanned, summary.selected, summary.replayed) == (1, 0, 0)
    assert summary.skipped_no_source_topic == 1
    assert recorder.skips == [
        (f"{dlq}/0/0", "no talon-stream.source.topic header (give --to TOPIC)")
    ]
    assert any("give --to TOPIC to replay them" in line for line in summary.lines())

    summary = await replay_dlq(settings_for(broker, dlq), ReplayOptions(dlq, to_topic=target))
    assert (summary.selected, summary.replayed, summary.skipped_no_source_topic) == (1, 1, 0)
    [message] = read_back(broker.bootstrap_servers, target)
    assert message.headers() == [("traceparent", b"x"), (REPLAY_HEADER, f"{dlq}/0/0".encode())]

    # A record whose value the worker left out of the DLQ (too large) is never published: that
    # would publish a null value (a tombstone) instead of the event.
    big = InputRecord("shop.carts", 2, 9, b"bob", b"x" * 600_000, [], None)
    omitted: list[tuple[str, str | bytes | None]] = [
        *dlq_headers(big, failure),
        ("talon-stream.value.omitted.bytes", b"600000"),
    ]
    producer.produce(dlq, key=b"bob", value=None, headers=omitted)
    assert producer.flush(10) == 0
    recorder = Recorder()
    summary = await replay_dlq(
        settings_for(broker, dlq), ReplayOptions(dlq, to_topic=target), observer=recorder
    )
    assert (summary.scanned, summary.selected, summary.replayed) == (2, 1, 1)
    assert summary.skipped_value_omitted == 1
    assert recorder.skips == [
        (
            f"{dlq}/0/1",
            "its value (600000 bytes) was not kept in the DLQ; the original is at shop.carts/2/9",
        )
    ]
    assert any("value not kept in the DLQ (too large): 1" in line for line in summary.lines())
    assert [m.value() for m in read_back(broker.bootstrap_servers, target)] == [b"{}", b"{}"]

    # A target topic that does not exist is not created: its records are skipped and counted.
    missing = f"missing-{unique}"
    recorder = Recorder()
    summary = await replay_dlq(
        settings_for(broker, dlq), ReplayOptions(dlq, to_topic=missing), observer=recorder
    )
    assert (summary.selected, summary.replayed, summary.skipped_value_omitted) == (0, 0, 1)
    assert summary.skipped_missing_topic == {missing: 1}
    assert recorder.skips[0] == (f"{dlq}/0/0", f"the topic {missing!r} does not exist")
    assert missing not in topics(broker)


async def test_replay_ends_while_records_keep_arriving(broker: Broker, unique: str) -> None:
    seeded = seed_dlq(broker, unique)
    stop = threading.Event()
    added = 0

    def keep_dead_lettering() -> None:
        nonlocal added
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 1})
        record = InputRecord(seeded.carts, 0, 0, b"ada", b"{}", [], None)
        headers: list[tuple[str, str | bytes | None]] = [
            *dlq_headers(record, DlqFailure(DecodeError("late"), 0, T0, T0))
        ]
        while not stop.is_set():
            producer.produce(seeded.dlq, key=KEYS[added % 4], value=b"{}", headers=headers)
            producer.poll(0)
            added += 1
            time.sleep(0.002)
        producer.flush(10)

    feeder = threading.Thread(target=keep_dead_lettering)
    feeder.start()
    try:
        await wait_for(lambda: added > 50, what="the feeder to start")
        started = time.monotonic()
        summary = await asyncio.wait_for(
            replay_dlq(settings_for(broker, seeded.dlq), ReplayOptions(seeded.dlq)), 60
        )
        elapsed = time.monotonic() - started
        produced_by_then = RECORDS + added
    finally:
        stop.set()
        feeder.join()
    assert RECORDS + 50 < summary.scanned <= produced_by_then
    assert summary.replayed == summary.scanned
    assert elapsed < 30


async def test_a_missing_dlq_topic_is_a_clear_error(broker: Broker, unique: str) -> None:
    missing = f"no-such-dlq-{unique}"
    with pytest.raises(DlqTopicNotFoundError) as caught:
        await replay_dlq(settings_for(broker, missing), ReplayOptions(missing, timeout_s=5))
    assert caught.value.topic == missing
    assert f"the DLQ topic {missing!r} does not exist" in str(caught.value)
    assert missing not in topics(broker)  # looking it up did not create it


def topics(broker: Broker) -> set[str]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "probe"})
    try:
        return set(consumer.list_topics(timeout=10).topics)
    finally:
        consumer.close()


async def test_a_refused_record_stops_the_replay_before_its_key_goes_on(
    broker: Broker, unique: str
) -> None:
    """A record the producer refuses (larger than its message.max.bytes) ends the run with an
    error naming it, and the later records of its key are not sent: order holds."""
    dlq, carts = f"dlq-{unique}", f"carts-{unique}"
    # The DLQ topic takes records up to 4 MB (a broker enforces 1 MiB by default); the replay's
    # producer keeps librdkafka's 1 MB message.max.bytes.
    broker.create_topics({dlq: 1}, {"max.message.bytes": "4000000"})
    broker.create_topics({carts: 1})
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "message.max.bytes": 4_000_000}
    )
    failure = DlqFailure(DecodeError("not an event"), 0, T0, T0)
    errors: list[object] = []
    for n, value in enumerate([b"first", b"x" * 2_000_000, b"third"]):
        record = InputRecord(carts, 0, n, b"ada", value, [], None)
        sent: list[tuple[str, str | bytes | None]] = [*dlq_headers(record, failure)]
        producer.produce(
            dlq, key=b"ada", value=value, headers=sent, on_delivery=lambda e, _: errors.append(e)
        )
    assert producer.flush(10) == 0
    assert errors == [None, None, None], "the DLQ did not take the three records"

    with pytest.raises(ReplayDeliveryError) as caught:
        await replay_dlq(settings_for(broker, dlq), ReplayOptions(dlq))

    assert caught.value.replay.letter.coordinates == f"{dlq}/0/1"
    assert f"could not replay {dlq}/0/1 to {carts!r}" in str(caught.value)
    assert caught.value.summary.replayed == 1
    assert [m.value() for m in read_back(broker.bootstrap_servers, carts)] == [b"first"]


def test_the_command_exits_non_zero_on_a_missing_topic_or_broker(
    broker: Broker, unique: str
) -> None:
    missing = f"no-such-dlq-{unique}"
    args = ["dlq", "replay", "--dlq-topic", missing, "--timeout", "3"]
    result = CliRunner().invoke(main, [*args, "--bootstrap-servers", broker.bootstrap_servers])
    assert result.exit_code == EXIT_BROKER
    assert f"the DLQ topic {missing!r} does not exist" in result.stderr

    nobody = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = CliRunner().invoke(main, [*args, "--bootstrap-servers", nobody])
    assert result.exit_code == EXIT_BROKER
    assert f"cannot reach the Kafka broker at {nobody} within 3s" in result.stderr
    assert time.monotonic() - started < 15


async def test_an_unreachable_broker_fails_within_the_timeout() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerError, match="cannot reach the Kafka broker"):
        await replay_dlq(
            Settings(bootstrap_servers=nobody), ReplayOptions("talon-stream.dlq", timeout_s=2)
        )
    assert time.monotonic() - started < 10


async def test_a_record_dead_lettered_for_a_400_is_processed_once_fixed_and_replayed(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    topic = create_topics(broker, settings, partitions=1)
    who = {"profileId": "eve", "sessionId": "eve-s1"}
    teal = event(2, "cart.updated", **who, payload={"attributes": {"favouriteColour": "teal"}})
    produce(
        broker.bootstrap_servers,
        topic,
        [
            (b"eve", event(1, "cart.updated", **who, payload={"cartItems": TUTORIAL_CART})),
            (b"eve", teal),
        ],
    )
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= 2, what="2 outcomes")
    assert (worker.stats.effects_published, worker.stats.dead_lettered) == (1, 1)

    # The fix: the Application now declares the session attribute. (The emulator reads its
    # declarations at start-up, so a second one, with the same key, stands for the fixed one.)
    campaigns = load_campaigns()
    attributes = campaigns.attributes.model_copy(
        update={
            "customer_session": {
                **campaigns.attributes.customer_session,
                "favouriteColour": "string",
            }
        }
    )
    fixed_campaigns = campaigns.model_copy(update={"attributes": attributes})
    with EmulatorServer(EmulatorConfig(api_keys=[API_KEY], campaigns=fixed_campaigns)) as fixed:
        summary = await replay_dlq(settings, ReplayOptions(settings.dlq_topic))
        assert (summary.scanned, summary.replayed) == (1, 1)
        assert summary.by_error_class == {"TalonPermanentError": 1}

        # A worker of the same group, pointed at the fixed Application, takes the replayed record.
        fixed_worker = Worker(worker_settings(broker, fixed, unique))
        async with running(fixed_worker):
            await wait_for(lambda: fixed_worker.stats.outcomes >= 1, what="the replayed record")
        assert (fixed_worker.stats.effects_published, fixed_worker.stats.dead_lettered) == (1, 0)
        [call] = [e for e in fixed.state.request_log if e["operation"]]
        assert (call["path"], call["status"]) == ("/v2/customer_sessions/eve-s1", 200)
        assert call["body"]["customerSession"]["attributes"] == {"favouriteColour": "teal"}

    replayed: Any = read_topic(broker.bootstrap_servers, topic, 3)[2]
    assert replayed.value() == teal
    assert dict(replayed.headers())[REPLAY_HEADER] == f"{settings.dlq_topic}/0/0".encode()
    effects = read_topic(broker.bootstrap_servers, settings.effects_topic, 2)
    envelopes = [orjson.loads(m.value()) for m in effects]  # type: ignore[attr-defined]
    assert [(e["source"]["eventId"], e["source"]["offset"], e["status"]) for e in envelopes] == [
        ("e-1", 0, 200),
        ("e-2", 2, 200),
    ]

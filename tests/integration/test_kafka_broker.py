"""Apache Kafka on loopback (KafkaBroker): records and committed offsets survive a kill -9, a
frozen broker answers again once thawed, and no broker outlives its owner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from talon_stream.demo._kafka import KafkaBroker
from talon_stream.demo._kafka_jars import kafka_runnable
from tests.conftest import outlives_its_owner

pytestmark = pytest.mark.skipif(
    not kafka_runnable(), reason="Apache Kafka needs Java 17+ and Maven (or its cached jars)"
)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for n in range(start, start + count):
        producer.produce(topic, key=str(n % 7).encode(), value=str(n).encode())
    assert producer.flush(15) == 0


def consume(bootstrap: str, topic: str, group: str, count: int) -> list[int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "fetch.wait.max.ms": 50,
        }
    )
    consumer.subscribe([topic])
    values: list[int] = []
    deadline = time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(int(message.value()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=15
        )
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in offsets)


def test_data_survives_kill_9_and_a_frozen_broker_recovers_when_thawed() -> None:
    topic, group = f"k-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    with KafkaBroker() as broker:
        bootstrap = broker.bootstrap_servers
        assert broker.description.startswith("apache-kafka 4.")
        broker.create_topics({topic: 3, f"{topic}-wide": 12})
        listed = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        # create_topics returns once every new partition has a leader (producers start at once)
        assert all(p.leader == 1 for p in listed[f"{topic}-wide"].partitions.values())
        produce(bootstrap, topic, 300)
        assert sorted(consume(bootstrap, topic, group, 300)) == list(range(300))
        assert committed(bootstrap, topic, group, 3) == 300

        pid = broker.pid
        broker.kill()
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        broker.restart()
        assert broker.bootstrap_servers == bootstrap  # the same port
        assert broker.pid != pid
        assert committed(bootstrap, topic, group, 3) == 300  # the group's offsets survived
        produce(bootstrap, topic, 50, start=300)
        assert sorted(consume(bootstrap, topic, group, 50)) == list(range(300, 350))
        every = consume(bootstrap, topic, f"{group}-again", 350)
        assert sorted(every) == list(range(350))  # the records from before the crash

        broker.freeze()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=1.5)
        broker.thaw()
        assert topic in admin.list_topics(timeout=15).topics
        produce(bootstrap, topic, 10, start=350)

        folder = broker.log_path.parent if broker.log_path else None
        process_pid = broker.pid
    assert folder is not None
    assert not folder.exists(), "stop() left the broker's data behind"
    assert process_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process_pid, 0)


def test_a_frozen_broker_dies_with_its_owner() -> None:
    script = textwrap.dedent(
        """
        import time
        from talon_stream.demo._kafka import KafkaBroker
        broker = KafkaBroker()
        broker.start()
        broker.freeze()  # a SIGTERM would wait for a SIGCONT forever
        print(broker.pid, broker.log_path.parent, flush=True)
        time.sleep(120)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid, folder = owner.stdout.readline().split()
    broker_pid = int(pid)
    try:
        assert not outlives_its_owner(owner, broker_pid), (
            "the Kafka broker outlived the process that started it"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the owner died before it could

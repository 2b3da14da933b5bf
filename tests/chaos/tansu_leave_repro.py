"""Reproduce, with plain confluent-kafka consumers, how partitions get stranded on Tansu 0.6.

Three cooperative-sticky members of one group; the third joins, and the first leaves while
the follow-up round of that join may still be in progress. Sometimes (about 1 trial in 30
here; far more often under load, and with consumers whose revoke callback takes a while, as
the worker's does) the partitions of the leaver, and the one a member had just revoked for the
newcomer, are assigned to nobody and no further rebalance happens: the two members left keep
heartbeating, holding 3 of the 6 partitions, for as long as one waits. Not checked against
Apache Kafka (no Docker engine on the development VM).

    .venv/bin/python -m tests.chaos.tansu_leave_repro --trials 30 --revoke-s 0.3
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from talon_stream.demo._broker import EmbeddedBroker

PARTITIONS = 6


def member(
    bootstrap: str, group: str, topic: str, held: set[int], stop: threading.Event, revoke_s: float
) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )

    def assigned(_: Consumer, partitions: list[TopicPartition]) -> None:
        held.update(p.partition for p in partitions)

    def revoked(_: Consumer, partitions: list[TopicPartition]) -> None:
        time.sleep(revoke_s)  # the worker drains and commits here
        held.difference_update(p.partition for p in partitions)

    consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    while not stop.is_set():
        consumer.poll(0.1)
    consumer.close()
    held.clear()


def wait(condition: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while not condition() and time.monotonic() - started < timeout_s:
        time.sleep(0.05)
    return time.monotonic() - started


def trial(broker: EmbeddedBroker, revoke_s: float, wait_s: float) -> bool:
    topic, group = f"leave-{uuid.uuid4().hex[:8]}", f"leave-{uuid.uuid4().hex[:8]}"
    broker.create_topics({topic: PARTITIONS})
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for n in range(600):
        producer.produce(topic, key=str(n).encode(), value=b"x")
    producer.flush(10)
    held: list[set[int]] = [set(), set(), set()]
    stops = [threading.Event() for _ in held]
    threads = [
        threading.Thread(
            target=member,
            args=(broker.bootstrap_servers, group, topic, held[n], stops[n], revoke_s),
            daemon=True,
        )
        for n in range(3)
    ]
    threads[0].start()
    threads[1].start()
    wait(lambda: len(held[0] | held[1]) == PARTITIONS, 30)
    threads[2].start()
    wait(lambda: bool(held[2]), 30)
    before = [sorted(h) for h in held]
    stops[0].set()  # the first member leaves, maybe mid-round
    threads[0].join(30)
    took = wait(lambda: len(held[1] | held[2]) == PARTITIONS, wait_s)
    after = [sorted(h) for h in held]
    ok = len(held[1] | held[2]) == PARTITIONS
    print(f"{'ok' if ok else 'STRANDED'} in {took:.1f} s: before {before}, after {after}")
    for n in (1, 2):
        stops[n].set()
        threads[n].join(30)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--revoke-s", type=float, default=0.3)
    parser.add_argument("--wait-s", type=float, default=30.0)
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        results = [trial(broker, args.revoke_s, args.wait_s) for _ in range(args.trials)]
    print(f"stranded partitions in {results.count(False)} of {len(results)} trials")


if __name__ == "__main__":
    main()

"""The dispatchers on a real event loop. The keyed one: customers in parallel, one call per
customer, commits only past finished records, revoke waits for calls in flight. The
partition-serial one: the same pause, resume and commit bookkeeping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import orjson

from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.core._records import Headers, InputRecord, OutputRecord
from talon_stream.core._translate import TranslationOptions
from talon_stream.processing._dispatch import KeyedDispatcher, PartitionSerialDispatcher
from talon_stream.scheduling._offsets import MAX_SPAN, CommitPoint, decode_finished, decode_groups
from talon_stream.scheduling._replay import Resume
from talon_stream.talon._halt import Halt
from tests.fakes import make_processor

PARTITION = ("shop.orders", 0)
#: The group committed offset 0 and the log was empty at assignment (a partition the group
#: never committed waits for its first commit).
COMMITTED = {PARTITION: Resume(0, log_end=0)}


class SlowTalon:
    """Answers after a random short delay; records overlap per customer and peak parallelism."""

    def __init__(self) -> None:
        self.active: dict[str, int] = {}
        self.overlaps = 0
        self.peak = 0
        self.order: dict[str, list[int]] = {}
        self._rng = random.Random(3)

    async def send(self, call: TalonCall, *, idempotency_key: str | None = None) -> TalonResponse:
        key = call.session_id or ""
        if self.active.get(key):
            self.overlaps += 1
        self.active[key] = self.active.get(key, 0) + 1
        self.peak = max(self.peak, sum(self.active.values()))
        assert call.body is not None
        self.order.setdefault(key, []).append(call.body["customerSession"]["attributes"]["n"])
        await asyncio.sleep(self._rng.uniform(0.001, 0.01))
        self.active[key] -= 1
        return TalonResponse(status=200, body={"effects": []}, elapsed_s=0.0)


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        self.count += 1

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        self.count += len(records)


def record(offset: int, customer: int, n: int) -> InputRecord:
    value = orjson.dumps(
        {
            "eventId": f"e-{offset}",
            "type": "cart.updated",
            "occurredAt": "2026-11-22T10:00:00Z",
            "sessionId": f"s-{customer}",
            "payload": {"attributes": {"n": n}},
        }
    )
    return InputRecord("shop.orders", 0, offset, f"s-{customer}".encode(), value, [], None)


def dispatcher(
    talon: SlowTalon, sink: Sink, max_in_flight: int, *, coalesce: bool = False
) -> KeyedDispatcher:
    processor = make_processor(
        talon,
        sink,
        effects_topic="fx",
        dlq_topic="dlq",
        options=TranslationOptions(response_content=()),
    )
    return KeyedDispatcher(
        processor,
        max_in_flight=max_in_flight,
        max_buffered_per_partition=50,
        coalesce=coalesce,
    )


async def until(condition: object, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def test_many_customers_in_flight_one_call_each_in_order() -> None:
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=16)
    keyed.assign([PARTITION], COMMITTED)
    rng = random.Random(5)
    seen: dict[int, int] = {}
    for offset in range(400):
        customer = rng.randrange(40)
        seen[customer] = seen.get(customer, 0) + 1
        keyed.submit(record(offset, customer, seen[customer]))
    await until(lambda: sink.count == 400)
    assert talon.overlaps == 0
    assert 8 < talon.peak <= 16  # parallel across customers, never above the cap
    for key, order in talon.order.items():
        assert order == sorted(order), f"{key} out of order"
    assert keyed.committable() == {PARTITION: CommitPoint(400)}
    keyed.mark_committed({PARTITION: CommitPoint(400)})
    assert keyed.committable() == {}  # nothing new since the commit
    assert keyed.failure is None


async def test_buffer_bound_pauses_and_resumes_the_partition() -> None:
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=1)
    keyed.assign([PARTITION], COMMITTED)
    for offset in range(60):
        keyed.submit(record(offset, 0, offset + 1))
    assert keyed.partitions_to_pause() == [PARTITION]
    assert keyed.partitions_to_pause() == []  # already paused
    await until(lambda: keyed.buffered <= 25)
    assert keyed.partitions_to_resume() == [PARTITION]
    await until(lambda: sink.count == 60)


async def test_revoke_waits_for_calls_in_flight_and_commits_only_finished_records() -> None:
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=4)
    keyed.assign([PARTITION], COMMITTED)
    for offset in range(100):
        keyed.submit(record(offset, offset % 3, offset))
    await until(lambda: sink.count >= 5)
    offsets = await keyed.revoke([PARTITION], timeout_s=5)
    assert talon.overlaps == 0
    assert sum(talon.active.values()) == 0  # nothing left running for the revoked partition
    done = sink.count
    # The commit stops at the first record without an outcome; a record of another customer
    # that finished beyond it (at most the in-flight cap) is replayed by the next owner.
    commit = offsets[PARTITION]
    assert done - 4 <= commit.offset <= done
    # The records of other customers that finished beyond it go with the commit, so that the
    # next owner does not run them again: every finished record is accounted for.
    assert commit.offset + len(decode_finished(commit.offset, commit.metadata)) == done
    await asyncio.sleep(0.05)
    assert sink.count == done  # the dropped records were not run
    keyed.submit(record(100, 0, 100))  # late records of a revoked partition are ignored
    assert keyed.buffered == 0


async def test_partition_serial_pauses_resumes_and_commits() -> None:
    started = asyncio.Event()
    go = asyncio.Event()
    done: list[int] = []

    async def process(record: InputRecord) -> None:
        started.set()
        await go.wait()
        done.append(record.offset)

    halt = Halt()
    serial = PartitionSerialDispatcher(process, max_buffered_per_partition=10, halt=halt)
    other = ("shop.orders", 1)
    serial.assign([PARTITION, other])
    for offset in range(12):
        serial.submit(record(offset, 0, offset))
    await started.wait()
    assert serial.partitions_to_pause() == [PARTITION]
    assert serial.partitions_to_pause() == []  # already paused
    assert serial.partitions_to_resume() == []  # 12 buffered, above half the bound
    halt.trip("test")
    assert serial.partitions_to_pause() == [other]  # halted: every partition
    assert serial.committable() == {}
    go.set()
    await until(lambda: len(done) == 12)
    assert serial.partitions_to_resume() == []  # halted
    halt.clear()
    assert sorted(serial.partitions_to_resume()) == [PARTITION, other]
    assert serial.committable() == {PARTITION: CommitPoint(12)}
    serial.mark_committed(
        {PARTITION: CommitPoint(12), ("shop.orders", 9): CommitPoint(3)}
    )  # an unknown one is ignored
    assert serial.committable() == {}
    serial.submit(record(12, 0, 12))
    await until(lambda: len(done) == 13)
    assert await serial.close(timeout_s=1) == {PARTITION: CommitPoint(13)}
    assert serial.failure is None


class HeldSink(Sink):
    """A broker that acknowledges only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = 0

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        await self.send(records[0][0], key=None, value=None)

    async def send(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> None:
        self.waiting += 1
        await self.release.wait()
        self.waiting -= 1
        self.count += 1


async def test_a_call_answered_frees_its_slot_while_its_outcome_waits_for_the_broker() -> None:
    talon, sink = SlowTalon(), HeldSink()
    keyed = dispatcher(talon, sink, max_in_flight=2)
    keyed.assign([PARTITION], COMMITTED)
    keyed.submit(record(0, 1, 1))  # customer 1
    keyed.submit(record(1, 1, 2))  # customer 1 again: waits for the first one's outcome
    keyed.submit(record(2, 2, 1))
    keyed.submit(record(3, 3, 1))  # a third customer: needs a slot the first call gave back
    await until(lambda: sink.waiting == 3)
    # Two slots, three calls answered and none acknowledged: a slot goes on when its call is
    # answered. Customer 1's second record is not called before its first one's outcome.
    assert talon.order == {"s-1": [1], "s-2": [1], "s-3": [1]}
    assert keyed.in_flight == 0
    assert keyed.committable() == {}  # nothing acknowledged: nothing to commit
    sink.release.set()
    await until(lambda: sink.count == 4)
    assert talon.order == {"s-1": [1, 2], "s-2": [1], "s-3": [1]}
    assert talon.overlaps == 0
    assert keyed.committable() == {PARTITION: CommitPoint(4)}


async def test_records_the_last_owner_finished_are_not_run_again() -> None:
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=8)
    keyed.assign([PARTITION], {PARTITION: Resume(0, frozenset({3, 5, 6}))})
    for offset in range(10):
        keyed.submit(record(offset, offset, 1))
    await until(lambda: sink.count == 7)
    assert keyed.skipped == 3
    assert sorted(talon.order) == [f"s-{n}" for n in (0, 1, 2, 4, 7, 8, 9)]
    assert keyed.committable() == {PARTITION: CommitPoint(10)}


async def test_a_partition_whose_records_span_too_many_offsets_is_paused() -> None:
    held = HeldSink()
    keyed = dispatcher(SlowTalon(), held, max_in_flight=2)
    keyed.assign([PARTITION], COMMITTED)
    keyed.submit(record(0, 0, 1))  # its outcome is held: the commit cannot pass offset 0
    keyed.submit(record(MAX_SPAN // 2, 1, 1))
    await until(lambda: held.waiting == 2)
    assert keyed.partitions_to_pause() == [PARTITION]
    held.release.set()
    await until(lambda: held.count == 2)
    assert keyed.partitions_to_resume() == [PARTITION]


async def test_a_coalesced_call_starts_once_a_commit_lists_it() -> None:
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=8, coalesce=True)
    keyed.assign([PARTITION], COMMITTED)
    for offset in range(4):
        keyed.submit(record(offset, 0, offset))  # the first goes alone, three wait behind it
    await until(lambda: sink.count == 1)
    await asyncio.sleep(0.02)
    assert keyed.wants_commit
    assert sink.count == 1  # the three wait for the commit
    points = keyed.committable()
    assert points[PARTITION].groups == frozenset({1})
    assert decode_groups(1, points[PARTITION].metadata) == {1: 3}
    keyed.mark_committed(points)
    await until(lambda: sink.count == 4)
    assert talon.order == {"s-0": [0, 3]}  # two calls: the first, then the three as one
    assert not keyed.wants_commit
    assert keyed.committable() == {PARTITION: CommitPoint(4)}  # finished: no longer listed


async def test_a_replay_makes_the_calls_of_the_earlier_owner_again() -> None:
    """The earlier owner committed offset 0, listing a call of three records led by offset 1
    (session s-0: offsets 1, 3 and 4); the log held 6 records: they go as before — 0 on its own,
    1, 3 and 4 as one call — though coalescing is off here; offset 6, appended since, is live."""
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=8)
    keyed.assign([PARTITION], {PARTITION: Resume(0, groups={1: 3}, log_end=6)})
    for offset, customer in enumerate([0, 0, 1, 0, 0, 1, 0]):
        keyed.submit(record(offset, customer, offset))
    await until(lambda: sink.count == 7)
    assert talon.order == {"s-0": [0, 4, 6], "s-1": [2, 5]}


async def test_a_partition_the_group_never_committed_makes_its_first_call_after_a_commit() -> None:
    """So that a next owner knows calls may have been made from where this one started."""
    talon, sink = SlowTalon(), Sink()
    keyed = dispatcher(talon, sink, max_in_flight=8)
    keyed.assign([PARTITION])
    keyed.submit(record(5, 0, 5))
    await asyncio.sleep(0.02)
    assert sink.count == 0
    assert keyed.wants_commit
    points = keyed.committable()
    assert points == {PARTITION: CommitPoint(5)}  # where reading started: passes no record
    keyed.mark_committed(points)
    await until(lambda: sink.count == 1)
    keyed.submit(record(6, 0, 6))
    await until(lambda: sink.count == 2)  # anchored: no further wait

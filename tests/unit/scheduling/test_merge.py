"""EventTimeMerge: co-partitioned topics read as one stream per partition number, in timestamp
order, waiting a bounded time for partitions that are behind or empty; and, with the offsets
tracker, never a commit past a record still waiting."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.scheduling._merge import EventTimeMerge, co_partitioned_groups
from talon_stream.scheduling._offsets import PartitionOffsets

IDLE = 1000


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(topic: str, partition: int, offset: int, ts: int | None, key: str = "c") -> InputRecord:
    return InputRecord(topic, partition, offset, key.encode(), b"{}", [], ts)


def merge_of(clock: Clock, *topics: str) -> EventTimeMerge:
    merge = EventTimeMerge([list(topics)], max_idle_ms=IDLE, clock=clock)
    merge.assign([(topic, 0) for topic in topics])
    return merge


def caught_up(_key: PartitionKey) -> bool:
    return False


def behind(_key: PartitionKey) -> bool:
    return True


def offsets(released: list[InputRecord]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in released]


def test_topics_are_grouped_by_partition_count_in_the_order_given() -> None:
    counts = {"shop.carts": 12, "shop.orders": 12, "shop.events": 3, "shop.customers": 12}
    assert co_partitioned_groups(counts) == [
        ["shop.carts", "shop.orders", "shop.customers"],
        ["shop.events"],
    ]


def test_records_of_all_partitions_come_out_in_timestamp_order() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    start = int(clock.now) - 500
    for each in (
        record("carts", 0, 0, start + 100),
        record("carts", 0, 1, start + 300),
        record("orders", 0, 0, start + 200),
        record("orders", 0, 1, start + 400),
    ):
        assert merge.add(each)
    # "carts" would be empty below the last "orders" record, which happened 100 ms ago: it
    # waits for a newer cart, caught up or not, for up to max_idle after its timestamp.
    assert offsets(merge.release(caught_up)) == [("carts", 0), ("orders", 0), ("carts", 1)]
    assert merge.buffered == 1
    assert merge.buffered_in(("orders", 0)) == 1


def test_an_equal_timestamp_goes_to_the_topic_configured_first() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, 100))
    merge.add(record("carts", 0, 0, 100))
    merge.add(record("orders", 0, 1, 500))
    merge.add(record("carts", 0, 1, 500))
    assert offsets(merge.release(caught_up))[:2] == [("carts", 0), ("orders", 0)]


def test_a_caught_up_empty_partition_holds_a_record_until_max_idle_after_its_timestamp() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, int(clock.now) - 300))  # happened 300 ms ago
    assert merge.release(caught_up) == []
    assert merge.next_deadline() == clock.now + 700
    clock.now += 699
    assert merge.release(caught_up) == []
    clock.now += 1
    assert offsets(merge.release(caught_up)) == [("orders", 0)]
    assert merge.next_deadline() is None


def test_an_old_record_goes_at_once_when_the_other_partitions_are_caught_up() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, int(clock.now) - 60_000))
    assert offsets(merge.release(caught_up)) == [("orders", 0)]


def test_a_partition_behind_holds_a_backlog_until_it_delivers() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, int(clock.now) - 60_000))
    assert merge.waiting_on() == {("carts", 0)}
    assert merge.release(behind) == []  # the carts backlog is not fetched yet
    assert merge.next_deadline() == clock.now + IDLE
    clock.now += 10
    merge.add(record("carts", 0, 0, int(clock.now) - 61_000))  # older: it goes first
    merge.add(record("carts", 0, 1, int(clock.now) - 59_000))
    assert offsets(merge.release(behind)) == [("carts", 0), ("orders", 0)]
    # Now "orders" is the empty one: while it may hold older records, the cart waits...
    assert merge.waiting_on() == {("orders", 0)}
    assert merge.release(behind) == []
    # ...and once it is caught up, the cart is long past its producers' allowance.
    assert offsets(merge.release(caught_up)) == [("carts", 1)]


def test_a_partition_behind_is_waited_for_beyond_max_idle() -> None:
    """Its records are on the broker: they are waited for however long fetching them takes (a
    restart's backlog, fetched partition after partition), as Kafka Streams does."""
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, int(clock.now) - 60_000))
    clock.now += 10 * IDLE
    assert merge.release(behind) == []
    assert offsets(merge.release(caught_up)) == [("orders", 0)]  # nothing more to fetch


def test_a_partition_the_worker_paused_is_waited_for_beyond_max_idle() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.held = {("carts", 0)}  # back-pressure: its records wait to be run, it will deliver
    merge.add(record("orders", 0, 0, int(clock.now) - 60_000))
    clock.now += 10 * IDLE
    assert merge.release(behind) == []
    assert merge.next_deadline() is None  # nothing to wake up for: the resume will do
    merge.held.clear()
    assert merge.release(behind) == []  # resumed: its records are on their way
    assert offsets(merge.release(caught_up)) == [("orders", 0)]


def test_a_partition_that_delivered_something_newer_holds_nothing_back() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("carts", 0, 0, 500))
    merge.add(record("orders", 0, 0, 100))
    merge.add(record("orders", 0, 1, 700))
    assert offsets(merge.release(behind)) == [("orders", 0), ("carts", 0)]
    # carts is empty now, but has delivered 500: a newer orders record still waits for it...
    assert merge.buffered_in(("orders", 0)) == 1
    merge.add(record("orders", 0, 2, 800))
    merge.add(record("carts", 0, 1, 900))
    # ...and one no newer than what it delivered would not.
    assert offsets(merge.release(behind)) == [("orders", 1), ("orders", 2)]


def test_a_record_without_a_timestamp_counts_as_produced_when_fetched() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, None))
    merge.add(record("carts", 0, 0, int(clock.now) - 5))
    assert offsets(merge.release(caught_up)) == [("carts", 0)]


def test_topics_not_merged_and_partitions_not_assigned_pass_through() -> None:
    clock = Clock()
    merge = EventTimeMerge([["carts", "orders"], ["events"]], max_idle_ms=IDLE, clock=clock)
    merge.assign([("carts", 0), ("orders", 0), ("events", 0)])
    assert merge.merges(("carts", 3))
    assert not merge.merges(("events", 0))  # alone in its group
    assert not merge.add(record("events", 0, 0, 1))
    assert not merge.add(record("carts", 1, 0, 1))  # partition 1 is not ours
    assert merge.buffered == 0


def test_a_revoked_partition_drops_its_waiting_records_and_leaves_its_task() -> None:
    clock = Clock()
    merge = merge_of(clock, "carts", "orders")
    merge.add(record("orders", 0, 0, 100))
    merge.add(record("orders", 0, 1, 200))
    merge.revoke([("orders", 0)])
    assert merge.buffered == 0
    assert not merge.add(record("orders", 0, 2, 300))
    merge.add(record("carts", 0, 0, 100))
    assert offsets(merge.release(behind)) == [("carts", 0)]  # alone in its task now


def test_with_nothing_to_merge_the_merge_is_inactive() -> None:
    assert not EventTimeMerge([["orders"]], max_idle_ms=IDLE, clock=Clock()).active
    assert EventTimeMerge([["a", "b"]], max_idle_ms=IDLE, clock=Clock()).active


# --- properties ---------------------------------------------------------------------------------
@dataclass
class Produced:
    key: str
    topic: str
    partition: int
    offset: int
    ts: int
    appended: int  # in the log: a producer's lag after the event
    fetched: int  # handed to the worker


@st.composite
def shops(draw: st.DrawFn, backlog: bool = False) -> list[Produced]:
    """Customers' events spread over co-partitioned topics; each topic's producer writes in
    timestamp order with a lag, each partition is fetched in order with a delay, and every
    record reaches the worker within the idle bound of its timestamp. With ``backlog``, every
    record is in the log long before the worker starts, and each partition's backlog is fetched
    whenever, up to five times the idle bound after the start."""
    topics = ["carts", "orders", "customers"][: draw(st.integers(2, 3))]
    partitions = draw(st.integers(1, 2))
    keys = [f"c{n}" for n in range(draw(st.integers(1, 5)))]
    count = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(1, 400), min_size=count, max_size=count))
    start = 1_000_000
    stamps = list(itertools.accumulate(gaps, initial=start - 100_000 if backlog else start))[1:]
    last: dict[tuple[str, int], tuple[int, int, int]] = {}
    out = []
    for ts in stamps:
        key = draw(st.sampled_from(keys))
        topic = draw(st.sampled_from(topics))
        partition = keys.index(key) % partitions
        offset, appended_before, fetched_before = last.get((topic, partition), (-1, 0, 0))
        if backlog:
            appended = start - 1  # all of it there before the worker starts
            fetched = max(fetched_before, start + draw(st.integers(0, 5 * IDLE)))
        else:
            # In the log a producer's lag after the event, behind what the partition had...
            appended = max(appended_before, ts + draw(st.integers(0, IDLE - 1)))
            # ...fetched after it, in order: always within the idle bound of the timestamp.
            fetched = max(fetched_before, appended + draw(st.integers(0, ts + IDLE - 1 - appended)))
            assert fetched - ts < IDLE
        last[(topic, partition)] = (offset + 1, appended, fetched)
        out.append(Produced(key, topic, partition, offset + 1, ts, appended, fetched))
    return out


def _run(shop: list[Produced], checks: list[int]) -> tuple[list[Produced], EventTimeMerge]:
    """Feed the records to a merge as they are fetched and release at every moment anything
    changes (fetches, the merge's own deadlines, and ``checks`` more); returns the records in
    the order released."""
    topics = list(dict.fromkeys(p.topic for p in sorted(shop, key=lambda p: p.topic)))
    clock = Clock(0)
    merge = EventTimeMerge([topics], max_idle_ms=IDLE, clock=clock)
    merge.assign({(p.topic, p.partition) for p in shop})
    by_coordinates = {(p.topic, p.partition, p.offset): p for p in shop}
    pending = sorted(shop, key=lambda p: (p.fetched, p.offset))
    moments = sorted({p.fetched for p in shop} | set(checks))
    released: list[Produced] = []

    def is_behind(key: PartitionKey) -> bool:
        return any(
            p.appended <= clock.now < p.fetched for p in shop if (p.topic, p.partition) == key
        )

    def release() -> None:
        # As the worker does: the consumer is asked about the partitions empty right now, and
        # that answer serves the whole call.
        behind = {key for key in merge.waiting_on() if is_behind(key)}
        released.extend(
            by_coordinates[(each.topic, each.partition, each.offset)]
            for each in merge.release(behind.__contains__)
        )

    while pending or merge.buffered:
        deadline = merge.next_deadline()
        upcoming = [t for t in moments if t > clock.now]
        if pending:
            upcoming.append(pending[0].fetched)
        if deadline is not None:
            upcoming.append(int(deadline) + (deadline % 1 > 0))
        clock.now = max(clock.now, min(upcoming)) if upcoming else clock.now + IDLE
        while pending and pending[0].fetched <= clock.now:
            p = pending.pop(0)
            if not merge.add(record(p.topic, p.partition, p.offset, p.ts, p.key)):
                released.append(p)  # a topic alone: straight through, as the dispatcher does
        release()
    return released, merge


@settings(max_examples=300, deadline=None)
@given(shops(), st.lists(st.integers(1_000_000, 1_020_000), max_size=10))
def test_each_customers_records_come_out_in_event_time_order(
    shop: list[Produced], checks: list[int]
) -> None:
    released, merge = _run(shop, checks)
    assert sorted((p.topic, p.partition, p.offset) for p in released) == sorted(
        (p.topic, p.partition, p.offset) for p in shop
    )  # every record, once
    by_key: dict[str, list[int]] = defaultdict(list)
    for p in released:
        by_key[p.key].append(p.ts)
    for key, stamps in by_key.items():
        assert stamps == sorted(stamps), f"{key} out of event-time order: {stamps}"
    by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
    for p in released:
        by_partition[(p.topic, p.partition)].append(p.offset)
    assert all(found == sorted(found) for found in by_partition.values())
    assert merge.buffered == 0


@settings(max_examples=300, deadline=None)
@given(shops(backlog=True), st.lists(st.integers(1_000_000, 1_002_000), max_size=10))
def test_a_backlog_comes_out_in_event_time_order_however_late_its_partitions_are_fetched(
    shop: list[Produced], checks: list[int]
) -> None:
    released, _merge = _run(shop, checks)
    by_key: dict[str, list[int]] = defaultdict(list)
    for p in released:
        by_key[p.key].append(p.ts)
    for key, stamps in by_key.items():
        assert stamps == sorted(stamps), f"{key} out of event-time order: {stamps}"


@settings(max_examples=200, deadline=None)
@given(shops(), st.data())
def test_the_committable_offset_never_passes_a_record_still_waiting_or_running(
    shop: list[Produced], data: st.DataObject
) -> None:
    released, _merge = _run(shop, [])
    tracked: dict[tuple[str, int], PartitionOffsets] = defaultdict(PartitionOffsets)
    unfinished: dict[tuple[str, int], set[int]] = defaultdict(set)
    for p in shop:
        unfinished[(p.topic, p.partition)].add(p.offset)  # fetched or not, none is done yet
    running: list[Produced] = []
    for p in released:
        assert tracked[(p.topic, p.partition)].begin(p.offset)
        running.append(p)
        # Some of those running finish, in any order.
        for done in data.draw(st.lists(st.sampled_from(running), unique_by=id, max_size=3)):
            running.remove(done)
            tracked[(done.topic, done.partition)].finish(done.offset)
            unfinished[(done.topic, done.partition)].discard(done.offset)
        for key, offsets_ in tracked.items():
            point = offsets_.committable()
            if point is not None and unfinished[key]:
                assert point.offset <= min(unfinished[key])

"""Event-time order across co-partitioned topics: pure logic, no I/O.

Shops publish a customer's carts, orders and profile changes from different services to
different topics. Topics with the same partition count and the same key partitioning are
*co-partitioned*: a customer's records are in partition *p* of each. :class:`EventTimeMerge`
reads partition *p* of every such topic as one stream — a *task*, as Kafka Streams calls it —
and hands records on in order of their Kafka timestamp, so that a ``cart.updated`` that happened
before an ``order.placed`` is run before it even when the cart service's topic lags.

Within one partition records keep their offset order, always. Across the partitions of a task,
the record with the oldest timestamp among the partitions' first buffered records goes first,
once no partition of the task can still deliver an older one. An empty partition holds that
record back:

* not at all once it has delivered a record at least as new (its records are in timestamp
  order, as one producing service writes them), so nothing older can follow;
* for as long as it is *behind* — its log holds records not handed over yet, or that is not
  known yet — or paused by the worker (:attr:`EventTimeMerge.held`: its records wait to be run,
  so it will be fetched again): what it holds is on the broker, and is waited for, as Kafka
  Streams waits "to fetch data that is already present on the brokers" whatever its
  ``max.task.idle.ms``;
* when it is caught up (nothing in its log past what it delivered), until ``max_idle_ms`` have
  passed since the record's timestamp or since it was fetched, whichever comes first: the time a
  lagging producer is given to write an older record.

So a task's records come out in timestamp order when every record reaches the broker within
``max_idle_ms`` of its timestamp (and the worker's clock agrees with the producers'), a backlog
always does, and a record waits for a quiet topic at most ``max_idle_ms``. (The wait for a
partition that is behind lasts as long as fetching it takes: a partition that cannot be fetched
at all — its leader unavailable — stalls its task, as in Kafka Streams.)

A record's offset is not begun while it waits here, so a commit never passes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from talon_stream.core._records import InputRecord, PartitionKey

__all__ = ["EventTimeMerge", "co_partitioned_groups"]

#: A task: the co-partitioned group (its index) and the partition number.
_Task = tuple[int, int]


def co_partitioned_groups(partition_counts: Mapping[str, int]) -> list[list[str]]:
    """The input topics grouped by partition count, in the order given: the topics of a group
    are merged partition by partition (their keys must be partitioned alike, which the default
    partitioner of every Kafka client does). A group of one is read on its own."""
    groups: dict[int, list[str]] = {}
    for topic, count in partition_counts.items():
        groups.setdefault(count, []).append(topic)
    return list(groups.values())


@dataclass
class _Buffer:
    """One assigned partition of a task: what was fetched and not yet handed on."""

    rank: int  # the topic's place in the configuration: the tie-break between equal timestamps
    records: deque[tuple[InputRecord, float]] = field(default_factory=deque)  # (record, fetched)
    #: The newest timestamp the partition has delivered (None: nothing yet).
    watermark: int | None = None


def _timestamp(record: InputRecord, fetched_ms: float) -> float:
    # A record without a timestamp (magic v0) counts as produced when it was fetched.
    return fetched_ms if record.timestamp_ms is None else record.timestamp_ms


class EventTimeMerge:
    """Buffers the records of co-partitioned topics per partition and releases them in
    timestamp order per task (see the module's documentation).

    ``groups``: the co-partitioned groups of input topics (:func:`co_partitioned_groups`);
    topics in no group, or alone in theirs, pass straight through. ``clock``: wall-clock
    milliseconds (the same clock as the records' timestamps).
    """

    def __init__(
        self,
        groups: Iterable[Iterable[str]],
        *,
        max_idle_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self._group_of: dict[str, int] = {}
        self._rank: dict[str, int] = {}
        for index, group in enumerate(groups):
            topics = list(group)
            if len(topics) < 2:
                continue
            for rank, topic in enumerate(topics):
                self._group_of[topic] = index
                self._rank[topic] = rank
        self._max_idle_ms = max_idle_ms
        self._clock = clock
        self._tasks: dict[_Task, dict[PartitionKey, _Buffer]] = {}
        self._buffered = 0
        #: The partitions the worker paused (back-pressure, halt): nothing overtakes them by
        #: time while they hold records back; the worker's own set, kept up to date by it.
        self.held: set[PartitionKey] = set()

    @property
    def active(self) -> bool:
        """Whether any topics are merged at all."""
        return bool(self._group_of)

    @property
    def buffered(self) -> int:
        """Records waiting here."""
        return self._buffered

    def buffered_in(self, key: PartitionKey) -> int:
        buffer = self._buffer(key)
        return 0 if buffer is None else len(buffer.records)

    def merges(self, key: PartitionKey) -> bool:
        """Whether the partition's records go through the merge."""
        return key[0] in self._group_of

    def assign(self, partitions: Iterable[PartitionKey]) -> None:
        for topic, partition in partitions:
            group = self._group_of.get(topic)
            if group is None:
                continue
            task = self._tasks.setdefault((group, partition), {})
            task.setdefault((topic, partition), _Buffer(self._rank[topic]))

    def revoke(self, partitions: Iterable[PartitionKey]) -> None:
        """Forget the partitions and drop their buffered records (they were never begun: their
        next owner reads them again)."""
        for key in partitions:
            group = self._group_of.get(key[0])
            if group is None:
                continue
            task = self._tasks.get((group, key[1]))
            if task is None:
                continue
            buffer = task.pop(key, None)
            if buffer is not None:
                self._buffered -= len(buffer.records)
            if not task:
                del self._tasks[(group, key[1])]

    def add(self, record: InputRecord) -> bool:
        """Buffer ``record``; False when it does not go through the merge (pass it on at once)
        — its topic is not merged, or its partition is not assigned."""
        buffer = self._buffer(record.partition_key)
        if buffer is None:
            return False
        fetched = self._clock()
        buffer.records.append((record, fetched))
        self._buffered += 1
        stamp = _timestamp(record, fetched)
        if buffer.watermark is None or stamp > buffer.watermark:
            buffer.watermark = int(stamp)
        return True

    def waiting_on(self) -> set[PartitionKey]:
        """The empty partitions of the tasks that hold records: the ones whose catching up
        (:meth:`release`'s ``behind``) may decide whether a record goes."""
        out: set[PartitionKey] = set()
        for task in self._tasks.values():
            if any(buffer.records for buffer in task.values()):
                out.update(key for key, buffer in task.items() if not buffer.records)
        return out

    def release(
        self,
        behind: Callable[[PartitionKey], bool],
        asked: set[PartitionKey] | None = None,
    ) -> list[InputRecord]:
        """The records that may go on now, in the order to run them. ``behind(partition)``:
        whether the log of an empty partition (one of :meth:`waiting_on`) holds records it has
        not delivered yet, or that is unknown; ``asked``: the :meth:`waiting_on` that answer is
        about, when the caller has it already."""
        now = self._clock()
        # ``behind`` speaks of the partitions empty now; one that empties during this call
        # counts as behind until the next call asks about it.
        if asked is None:
            asked = self.waiting_on()
        out: list[InputRecord] = []
        for task in self._tasks.values():
            while True:
                head = self._head(task)
                if head is None:
                    break
                record, fetched = head.records[0]
                if not self._may_go(task, record, fetched, now, asked, behind):
                    break
                head.records.popleft()
                self._buffered -= 1
                out.append(record)
        return out

    def next_deadline(self) -> float | None:
        """The earliest wall-clock time (ms) still to come at which a held-back record may go
        by time alone, so the caller does not sleep past it; None when nothing is held back.
        (A record past its time that is still held back waits for a fetch, not for a time.)"""
        now = self._clock()
        deadline: float | None = None
        for task in self._tasks.values():
            head = self._head(task)
            if head is None:
                continue
            record, fetched = head.records[0]
            if self._held_back(task, _timestamp(record, fetched)):
                continue  # it waits for a paused partition, not for a time
            due = fetched + self._max_idle_ms
            allowance = _timestamp(record, fetched) + self._max_idle_ms
            if now < allowance < due:
                due = allowance
            if due <= now:
                continue  # past its time and still held back: it waits for a fetch
            deadline = due if deadline is None else min(deadline, due)
        return deadline

    # --- internals -----------------------------------------------------------------------------
    def _buffer(self, key: PartitionKey) -> _Buffer | None:
        group = self._group_of.get(key[0])
        if group is None:
            return None
        task = self._tasks.get((group, key[1]))
        return None if task is None else task.get(key)

    @staticmethod
    def _head(task: Mapping[PartitionKey, _Buffer]) -> _Buffer | None:
        """The partition whose first record is the oldest (ties: the earlier topic)."""
        best: _Buffer | None = None
        best_order: tuple[float, int] | None = None
        for buffer in task.values():
            if not buffer.records:
                continue
            order = (_timestamp(*buffer.records[0]), buffer.rank)
            if best_order is None or order < best_order:
                best, best_order = buffer, order
        return best

    def _may_go(
        self,
        task: Mapping[PartitionKey, _Buffer],
        record: InputRecord,
        fetched: float,
        now: float,
        asked: set[PartitionKey],
        behind: Callable[[PartitionKey], bool],
    ) -> bool:
        stamp = _timestamp(record, fetched)
        blocked = False
        for key, buffer in task.items():
            if buffer.records:
                continue  # its first record is not older, or it would be the head
            if buffer.watermark is not None and buffer.watermark >= stamp:
                continue  # it has delivered something as new: nothing older can follow
            if key in self.held or key not in asked or behind(key):
                return False  # what it holds is on the broker (or it may be): wait for it
            if now - stamp >= self._max_idle_ms:
                continue  # caught up, and a lagging producer had its time
            blocked = True
        # Caught up: a lagging producer's record is waited for at most max idle after the fetch.
        return not blocked or now - fetched >= self._max_idle_ms

    def _held_back(self, task: Mapping[PartitionKey, _Buffer], stamp: float) -> bool:
        """Whether a paused partition of ``task`` may still deliver something older."""
        return any(
            not buffer.records
            and key in self.held
            and (buffer.watermark is None or buffer.watermark < stamp)
            for key, buffer in task.items()
        )

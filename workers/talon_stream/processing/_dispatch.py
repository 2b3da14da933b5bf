"""How records are run: the seam between the consumer loop and the record processor.

:class:`Dispatcher` is what the worker talks to. Two implementations:

* :class:`KeyedDispatcher` (the default) runs many customers at once through the
  :class:`~talon_stream.scheduling.KeyedScheduler`: one call in flight per profile ID and per
  session
  ID, in offset order per customer, up to a global cap;
* :class:`PartitionSerialDispatcher` runs each partition's records one at a time — the model of
  HTTP sink connectors that keep the order, kept as a baseline for benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Generic, Protocol, TypeVar

from talon_stream.core._calls import Operation
from talon_stream.core._records import InputRecord, PartitionKey
from talon_stream.processing._prepared import Prepared
from talon_stream.processing._processor import RecordProcessor, coalescible
from talon_stream.scheduling._merge import EventTimeMerge
from talon_stream.scheduling._offsets import MAX_SPAN, CommitPoint, PartitionOffsets
from talon_stream.scheduling._replay import LIVE, ReplayGroups, Resume, waits_for_commit
from talon_stream.scheduling._scheduler import Item, KeyedScheduler
from talon_stream.talon._applications import Halts
from talon_stream.talon._halt import Halt
from talon_stream.talon._limits import AdaptiveConcurrency

__all__ = ["Dispatcher", "KeyedDispatcher", "PartitionSerialDispatcher"]

log = logging.getLogger(__name__)

Process = Callable[[InputRecord], Awaitable[None]]
#: Per partition, what the group's commit says (finished offsets, coalesced calls, log end).
Resumes = Mapping[PartitionKey, Resume]

# A partition whose unfinished records span this many offsets is paused until the oldest one
# finishes, and resumed once they span half as many: what to commit stays within the commit
# metadata's bound (MAX_SPAN), with room for the records fetched before a pause takes effect.
_SPAN_HIGH = MAX_SPAN // 2
_SPAN_LOW = MAX_SPAN // 4
#: What a product record waiting for its catalog sync call (or a profile update for its bulk
#: call) weighs against the buffer bound.
_BATCHED_WEIGHT = 5
#: The most cart updates one coalesced call stands for.
_MAX_COALESCED = 100


class Dispatcher(Protocol):
    """Runs records and reports which offsets are safe to commit. While the worker is halted
    (:mod:`talon_stream.talon._halt`) every partition is to be paused."""

    #: A fatal error raised while processing; the worker stops when it is set.
    failure: BaseException | None
    #: Records not run because an earlier owner of their partition had finished them.
    skipped: int
    #: The event-time merge of co-partitioned topics records pass through (None: none).
    merge: EventTimeMerge | None

    def assign(self, partitions: Iterable[PartitionKey], resumes: Resumes | None = None) -> None:
        """Take ``partitions``; ``resumes``: what their commits say (done already, calls listed)."""

    def submit(self, record: InputRecord) -> None:
        """Run ``record`` (after the records of its task it must follow, when merged)."""

    def release_merged(
        self, behind: Callable[[PartitionKey], bool], asked: set[PartitionKey] | None = None
    ) -> None:
        """Run the merged records whose turn has come (:meth:`EventTimeMerge.release`)."""

    def partitions_to_pause(self) -> list[PartitionKey]: ...

    def partitions_to_resume(self) -> list[PartitionKey]: ...

    @property
    def wants_commit(self) -> bool:
        """Coalesced calls wait for a commit that lists them before they start: commit now."""
        ...

    def stop_coalescing(self) -> None:
        """Make one call per record from now on (the broker drops commit metadata)."""

    async def drain(self, partitions: Iterable[PartitionKey], timeout_s: float) -> None:
        """Stop taking the partitions' records, drop those waiting, and wait (at most
        ``timeout_s``) for those in flight to reach their outcome."""

    async def release(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, CommitPoint]:
        """Let the drained partitions go, cancelling what of them still runs, and return what
        to commit for them."""
        ...

    async def revoke(
        self, partitions: Iterable[PartitionKey], timeout_s: float
    ) -> dict[PartitionKey, CommitPoint]:
        """:meth:`drain`, then :meth:`release`."""
        ...

    def committable(self) -> dict[PartitionKey, CommitPoint]: ...

    def mark_committed(self, points: Mapping[PartitionKey, CommitPoint]) -> None: ...

    async def close(self, timeout_s: float) -> dict[PartitionKey, CommitPoint]: ...

    @property
    def buffered(self) -> int: ...

    @property
    def in_flight(self) -> int: ...


class _Assigned:
    """What both dispatchers keep of an assigned partition: its offsets, whether it is paused,
    and the coalesced calls an earlier owner committed for it (formed again on replay)."""

    __slots__ = ("anchored", "offsets", "paused", "replay", "revoked")

    def __init__(self, resume: Resume | None = None) -> None:
        self.offsets = PartitionOffsets(resume.finished if resume else ())
        self.paused = False
        self.revoked = False
        self.replay = ReplayGroups.of(resume)
        if self.replay is not None and resume is not None:
            # Listed until they finish, like the calls this owner starts, also before they are
            # read again: a commit made meanwhile must not forget them.
            self.offsets.groups.update(resume.groups)
        #: The group has a committed offset for it: a next owner knows where this one started.
        self.anchored = resume is not None and resume.committed is not None


_A = TypeVar("_A", bound=_Assigned)


def _committable(partitions: Mapping[PartitionKey, _Assigned]) -> dict[PartitionKey, CommitPoint]:
    """What to commit now, of the partitions that have something new."""
    points = {}
    for key, partition in partitions.items():
        point = partition.offsets.committable()
        if point is not None:
            points[key] = point
    return points


class _FlowControl(Generic[_A]):
    """Pausing, resuming and committing over the assigned partitions (``_partitions``): a
    partition is paused when its waiting records reach ``max_buffered_per_partition`` or the
    worker is halted, and resumed once they are down to half of it."""

    def __init__(
        self, halt: Halt | Halts, max_buffered_per_partition: int, merge: EventTimeMerge | None
    ) -> None:
        self._halt = halt
        self._high = max_buffered_per_partition
        self._low = max(1, max_buffered_per_partition // 2)
        self._partitions: dict[PartitionKey, _A] = {}
        self.skipped = 0
        self.failure: BaseException | None = None
        self.merge = merge if merge is not None and merge.active else None

    def _waiting(self, key: PartitionKey, partition: _A) -> int:
        """How many of the partition's records wait to be run (in the merge too)."""
        merge = self.merge
        return self._queued(key, partition) + (0 if merge is None else merge.buffered_in(key))

    def _queued(self, key: PartitionKey, partition: _A) -> int:
        """How many of the partition's records wait in the dispatcher itself."""
        raise NotImplementedError

    def _take(self, record: InputRecord) -> None:
        """Run ``record`` now, in order after those taken before."""
        raise NotImplementedError

    def _track(self, partitions: Iterable[PartitionKey], resumes: Resumes | None) -> None:
        """Start keeping the partitions."""
        raise NotImplementedError

    def assign(self, partitions: Iterable[PartitionKey], resumes: Resumes | None = None) -> None:
        keys = list(partitions)
        self._track(keys, resumes)
        if self.merge is not None:
            self.merge.assign(keys)

    def submit(self, record: InputRecord) -> None:
        merge = self.merge
        if merge is not None and merge.add(record):
            return
        self._take(record)

    def release_merged(
        self, behind: Callable[[PartitionKey], bool], asked: set[PartitionKey] | None = None
    ) -> None:
        if self.merge is None:
            return
        for record in self.merge.release(behind, asked):
            self._take(record)

    @property
    def wants_commit(self) -> bool:
        return False

    def stop_coalescing(self) -> None:
        return None

    @property
    def merged_waiting(self) -> int:
        return 0 if self.merge is None else self.merge.buffered

    def _begin(self, partition: _A, record: InputRecord) -> bool:
        """Whether to run ``record`` (not when an earlier owner finished it)."""
        if partition.offsets.begin(record.offset):
            return True
        self.skipped += 1
        return False

    def partitions_to_pause(self) -> list[PartitionKey]:
        halted = self._halt.active
        # A replayed group waits for all its records: while one is forming no partition is
        # paused for back-pressure, so none waits for records the consumer is not fetching (nor
        # the event-time merge for a partition that waits for the group).
        pressure = not any(
            partition.replay is not None and partition.replay.forming
            for partition in self._partitions.values()
        )
        out = []
        for key, partition in self._partitions.items():
            if not partition.paused and (
                halted
                or (
                    pressure
                    and (
                        self._waiting(key, partition) >= self._high
                        or partition.offsets.span >= _SPAN_HIGH
                    )
                )
            ):
                partition.paused = True
                out.append(key)
        return out

    def partitions_to_resume(self) -> list[PartitionKey]:
        if self._halt.active:
            return []
        out = []
        for key, partition in self._partitions.items():
            if (
                partition.paused
                and self._waiting(key, partition) <= self._low
                and partition.offsets.span <= _SPAN_LOW
            ):
                partition.paused = False
                out.append(key)
        return out

    def committable(self) -> dict[PartitionKey, CommitPoint]:
        return _committable(self._partitions)

    def mark_committed(self, points: Mapping[PartitionKey, CommitPoint]) -> None:
        self._on_committed()
        for key, point in points.items():
            partition = self._partitions.get(key)
            if partition is not None:
                partition.offsets.mark_committed(point)
                partition.anchored = True
                partition.offsets.anchor = False
                self._committed(partition, point.groups)

    def _committed(self, partition: _A, groups: frozenset[int]) -> None:
        """A commit of the partition listing ``groups`` (first offsets) succeeded."""

    def _on_committed(self) -> None:
        """A commit covering every finished record succeeded."""

    async def drain(self, partitions: Iterable[PartitionKey], timeout_s: float) -> None:
        raise NotImplementedError

    async def release(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, CommitPoint]:
        raise NotImplementedError

    async def revoke(
        self, partitions: Iterable[PartitionKey], timeout_s: float
    ) -> dict[PartitionKey, CommitPoint]:
        """:meth:`drain`, then :meth:`release`: what an at-least-once worker does on revoke."""
        keys = list(partitions)
        await self.drain(keys, timeout_s)
        return await self.release(keys)

    def _forget_merged(self, keys: Iterable[PartitionKey]) -> None:
        """Drop the partitions' records waiting in the merge: never begun, so never committed;
        their next owner reads them again."""
        if self.merge is not None:
            self.merge.revoke(keys)

    def _in_flight_in(self, partition: _A) -> bool:
        """Whether a record of the partition is still being run."""
        raise NotImplementedError

    async def _wait_in_flight(self, keys: list[PartitionKey], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        mine = [self._partitions[key] for key in keys]
        while any(self._in_flight_in(partition) for partition in mine) and self.failure is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning(
                    "revoke: records still in flight after %.0f s; they will be replayed",
                    timeout_s,
                )
                return
            await asyncio.sleep(min(0.005, remaining))


class _Lane(_Assigned):
    """One partition: a FIFO of records and the task that works through it."""

    __slots__ = ("queue", "task", "wakeup")

    def __init__(self, resume: Resume | None = None) -> None:
        super().__init__(resume)
        self.queue: deque[InputRecord] = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class PartitionSerialDispatcher(_FlowControl[_Lane]):
    """One record in flight per partition; partitions are paused when their buffer is full."""

    def __init__(
        self,
        process: Process,
        *,
        max_buffered_per_partition: int = 1000,
        halt: Halt | Halts | None = None,
        merge: EventTimeMerge | None = None,
    ) -> None:
        super().__init__(halt or Halt(), max_buffered_per_partition, merge)
        self._process = process

    @property
    def buffered(self) -> int:
        return sum(len(lane.queue) for lane in self._partitions.values()) + self.merged_waiting

    def _queued(self, key: PartitionKey, partition: _Lane) -> int:
        return len(partition.queue)

    def _in_flight_in(self, partition: _Lane) -> bool:
        return bool(partition.queue)

    @property
    def in_flight(self) -> int:
        """Partitions whose first buffered record is being processed."""
        return sum(1 for lane in self._partitions.values() if lane.queue)

    def _track(self, partitions: Iterable[PartitionKey], resumes: Resumes | None) -> None:
        for key in partitions:
            if key not in self._partitions:
                lane = _Lane(resumes.get(key) if resumes else None)
                lane.replay = None  # one record at a time: nothing is ever joined
                lane.task = asyncio.get_running_loop().create_task(
                    self._run(key, lane), name=f"lane-{key[0]}-{key[1]}"
                )
                self._partitions[key] = lane

    def _take(self, record: InputRecord) -> None:
        lane = self._partitions.get(record.partition_key)
        if lane is None or lane.revoked:  # fetched just before a revoke: not ours
            return
        if self._begin(lane, record):
            lane.queue.append(record)
            lane.wakeup.set()

    async def _run(self, key: PartitionKey, lane: _Lane) -> None:
        while True:
            while not lane.queue:
                lane.wakeup.clear()
                await lane.wakeup.wait()
            record = lane.queue[0]
            try:
                await self._process(record)
            except Exception as exc:  # noqa: BLE001 - whatever escapes process() is fatal
                # Stop this lane without finishing the record, so its offset is never committed;
                # the worker sees `failure` and shuts down.
                log.error("partition %s[%d] stopped: %s", key[0], key[1], exc)  # noqa: TRY400
                if self.failure is None:
                    self.failure = exc
                return
            lane.queue.popleft()
            lane.offsets.finish(record.offset)

    async def drain(self, partitions: Iterable[PartitionKey], timeout_s: float) -> None:
        keys = [key for key in partitions if key in self._partitions]
        self._forget_merged(keys)
        for key in keys:
            lane = self._partitions[key]
            lane.revoked = True
            # Keep only the record being processed; the rest is re-read by the next owner.
            while len(lane.queue) > 1:
                lane.queue.pop()
        await self._wait_in_flight(keys, timeout_s)

    async def release(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, CommitPoint]:
        lanes = {key: self._partitions.pop(key) for key in partitions if key in self._partitions}
        for lane in lanes.values():
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
        return _committable(lanes)

    async def close(self, timeout_s: float) -> dict[PartitionKey, CommitPoint]:
        """Revoke everything: used at shutdown."""
        return await self.revoke(list(self._partitions), timeout_s)


class _Partition(_Assigned):
    """What the keyed dispatcher knows of one assigned partition."""

    __slots__ = ("awaiting", "batched", "tasks")

    def __init__(self, resume: Resume | None = None) -> None:
        super().__init__(resume)
        #: The tasks running the partition's records.
        self.tasks: set[asyncio.Task[None]] = set()
        #: Coalesced calls that start once a commit lists them.
        self.awaiting: list[Item[Prepared]] = []
        #: Product records waiting for their catalog sync call (not scheduled: batched).
        self.batched = 0


class KeyedDispatcher(_FlowControl[_Partition]):
    """Many customers in flight, one call per customer, offsets committed only past finished
    records. Partitions are paused when their waiting records reach the buffer bound."""

    def __init__(
        self,
        processor: RecordProcessor,
        *,
        max_in_flight: int = 256,
        max_buffered_per_partition: int = 1000,
        halt: Halt | Halts | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        merge: EventTimeMerge | None = None,
        coalesce: bool = False,
    ) -> None:
        """``coalesce``: cart updates of a session waiting behind its call join the next one,
        which starts once a commit lists it (:mod:`talon_stream.scheduling._replay`)."""
        super().__init__(halt or Halt(), max_buffered_per_partition, merge)
        self._processor = processor
        self._max_in_flight = max_in_flight
        #: The adaptive in-flight limit (``None``: ``max_in_flight`` holds).
        self._adaptive = concurrency
        # Groups an earlier owner committed are formed again even when coalescing is off.
        self._scheduler: KeyedScheduler[Prepared] = KeyedScheduler(
            max_in_flight, joinable=coalescible, max_joined=_MAX_COALESCED if coalesce else 0
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._stages = processor.stats.stages
        processor.profiles.on_waiting = self._gather

    @property
    def buffered(self) -> int:
        batched = sum(partition.batched for partition in self._partitions.values())
        return self._scheduler.waiting + self.merged_waiting + batched

    @property
    def in_flight(self) -> int:
        return self._scheduler.in_flight

    def _track(self, partitions: Iterable[PartitionKey], resumes: Resumes | None) -> None:
        for key in partitions:
            if key not in self._partitions:
                self._partitions[key] = _Partition(resumes.get(key) if resumes else None)

    def _take(self, record: InputRecord) -> None:
        partition = self._partitions.get(record.partition_key)
        if partition is None or partition.revoked or self.failure is not None:
            return  # fetched just before a revoke, or the worker is stopping: not ours to run
        if not self._begin(partition, record):
            return
        prepared = self._processor.prepare(record)
        if prepared.call is not None and prepared.call.operation is Operation.SYNC_CATALOG:
            self._batch(prepared, partition)
            return
        if (
            prepared.call is not None
            and prepared.call.operation is Operation.UPDATE_CUSTOMER_PROFILES
            and partition.replay is None
            and self._ride(prepared)
        ):
            return
        keys = prepared.lock_keys()
        replay = partition.replay
        role = LIVE if replay is None else replay.role(record.offset, keys)
        if role.group:  # committed by the earlier owner: listed until it finishes, started as is
            partition.offsets.groups[record.offset] = role.group
        self._scheduler.submit(role.item(record.partition_key, record.offset, keys, prepared))
        self._start_ready()

    def _batch(self, prepared: Prepared, partition: _Partition) -> None:
        """A product record: to its catalog's next sync call, which orders a SKU's actions
        (talon_stream.processing._catalog); no call slot, no customer keys."""
        partition.batched += 1
        task = asyncio.get_running_loop().create_task(self._run_batched(prepared, partition))
        partition.tasks.add(task)
        task.add_done_callback(partition.tasks.discard)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batched(self, prepared: Prepared, partition: _Partition) -> None:
        record = prepared.record
        try:
            await self._processor.execute(prepared)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever escapes execute() is fatal
            log.error("stopping: %s", exc)  # noqa: TRY400
            if self.failure is None:
                self.failure = exc
            return
        finally:
            partition.batched -= 1
        if self._partitions.get(record.partition_key) is partition:
            partition.offsets.finish(record.offset)

    def _ride(self, prepared: Prepared) -> bool:
        """A profile update whose customer's previous record is a profile update waiting for
        its bulk call: it joins that update's entry and completes with it
        (talon_stream.processing._profiles); whether it did."""
        record = prepared.record
        item = Item(record.partition_key, record.offset, prepared.lock_keys(), prepared)
        processor = self._processor
        return self._scheduler.attach(
            item, lambda lead: processor.join_bulk(lead.payload, prepared)
        )

    def _gather(self, prepared: Prepared) -> None:
        """``prepared``'s profile update waits for its bulk call: the profile updates of its
        customer queued right behind it go with it (they would otherwise each wait for the
        call before them)."""
        record = prepared.record
        partition = self._partitions.get(record.partition_key)
        if partition is None or partition.replay is not None:
            return
        lead = self._scheduler.lead_of(prepared.lock_keys(), prepared)
        if lead is not None:
            processor = self._processor
            self._scheduler.attach_waiting(
                lead, lambda follower: processor.join_bulk(prepared, follower.payload)
            )

    @property
    def wants_commit(self) -> bool:
        return any(partition.awaiting for partition in self._partitions.values())

    def committable(self) -> dict[PartitionKey, CommitPoint]:
        self._stages.covering()
        return super().committable()

    def _on_committed(self) -> None:
        self._stages.committed(time.perf_counter())

    def stop_coalescing(self) -> None:
        self._scheduler.max_joined = 0

    def _committed(self, partition: _Partition, groups: frozenset[int]) -> None:
        if not partition.awaiting:
            return
        awaiting, partition.awaiting = partition.awaiting, []
        loop = asyncio.get_running_loop()
        for item in awaiting:
            if item.offset in groups or not (item.joined and not item.group):
                self._launch(loop, item, partition)
            else:
                partition.awaiting.append(item)

    def _start_ready(self) -> None:
        if self.failure is not None:
            return
        adaptive = self._adaptive
        if adaptive is not None:
            self._scheduler.max_in_flight = min(self._max_in_flight, adaptive.limit)
        loop = asyncio.get_running_loop()
        for item in self._scheduler.take_ready():
            partition = self._partitions[item.payload.record.partition_key]
            # A new coalesced call is written down (committed) before it starts, so that a
            # replay makes the same call; so is a partition's first call, so that a next owner
            # knows calls may have been made (talon_stream.scheduling._replay).
            if waits_for_commit(item, partition.offsets, anchored=partition.anchored):
                partition.awaiting.append(item)
            else:
                self._launch(loop, item, partition)

    def _launch(
        self, loop: asyncio.AbstractEventLoop, item: Item[Prepared], partition: _Partition
    ) -> None:
        task = loop.create_task(self._run(item, partition))
        partition.tasks.add(task)
        task.add_done_callback(partition.tasks.discard)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, item: Item[Prepared], partition: _Partition) -> None:
        prepared = item.payload
        record = prepared.record
        scheduler = self._scheduler
        launched = answered_at = time.perf_counter()

        def answered() -> None:
            # The call is over; its outcome is being published. Another call may take the slot
            # (the item keeps its customer's keys until the outcome is acknowledged).
            nonlocal answered_at
            answered_at = time.perf_counter()
            scheduler.answered(item)
            self._start_ready()

        def hold(parked: bool) -> None:
            # Waiting for a halted Application: its slot serves the others meanwhile.
            if parked:
                scheduler.park(item)
                self._start_ready()
            else:
                scheduler.unpark(item)

        try:
            await self._processor.execute(
                item.payload, answered, [joined.payload for joined in item.joined], hold
            )
        except asyncio.CancelledError:
            # Its partition was released (or the worker is closing): the record goes back to
            # Kafka unfinished, and its customer's keys to the records that wait for them.
            scheduler.complete(item)
            raise
        except Exception as exc:  # noqa: BLE001 - whatever escapes execute() is fatal
            # The record keeps no outcome, so its offset is never committed; the worker sees
            # `failure`, stops fetching and shuts down.
            log.error("stopping: %s", exc)  # noqa: TRY400
            if self.failure is None:
                self.failure = exc
            return
        # Finished in the same step as its outcome was acknowledged (no await in between): a
        # transaction committed after that acknowledgement carries this offset too.
        self._scheduler.complete(item)
        finished = time.perf_counter()
        timestamp_ms = record.timestamp_ms
        self._stages.observe(
            fetch=None
            if timestamp_ms is None
            else prepared.taken_at.timestamp() - timestamp_ms / 1000,
            decode=item.submitted_at - prepared.started,
            key_wait=item.ready_at - item.submitted_at,
            slot_wait=launched - item.ready_at,
            call=answered_at - launched,
            produce=finished - answered_at,
            finished=finished,
        )
        # Once revoked, the partition's offsets are no longer ours to commit.
        if self._partitions.get(record.partition_key) is partition:
            partition.offsets.groups.pop(record.offset, None)
            partition.offsets.finish(record.offset)
            for joined in item.joined:  # the same partition, by the scheduler's rule
                partition.offsets.finish(joined.offset)
        self._start_ready()

    def _queued(self, key: PartitionKey, partition: _Partition) -> int:
        # A product record waiting for its sync call holds no call slot and shares its SKU's
        # action with the others: it counts for a fifth, so that a backlog fills calls of
        # 1,000 actions of one type rather than pausing its partition at a mixed few hundred.
        # Profile updates waiting for their bulk call weigh the same.
        batched = partition.batched + self._processor.profiles.waiting_in(key)
        return self._scheduler.waiting_in(key) + batched // _BATCHED_WEIGHT

    def _in_flight_in(self, partition: _Partition) -> bool:
        return bool(partition.tasks)

    async def drain(self, partitions: Iterable[PartitionKey], timeout_s: float) -> None:
        keys = [key for key in partitions if key in self._partitions]
        self._forget_merged(keys)
        for key in keys:
            partition = self._partitions[key]
            partition.revoked = True
            # Coalesced calls not started go back to Kafka with the rest (listed or not, the
            # next owner sends them as they are or one by one: never called for).
            for item in partition.awaiting:
                self._scheduler.complete(item)
            partition.awaiting.clear()
            self._scheduler.cancel_partition(key)
        await self._wait_in_flight(keys, timeout_s)

    async def release(self, partitions: Iterable[PartitionKey]) -> dict[PartitionKey, CommitPoint]:
        released = {key: self._partitions.pop(key) for key in partitions if key in self._partitions}
        running = [task for partition in released.values() for task in partition.tasks]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        return _committable(released)

    async def close(self, timeout_s: float) -> dict[PartitionKey, CommitPoint]:
        """Revoke everything, then cancel whatever still runs: used at shutdown."""
        points = await self.revoke(list(self._partitions), timeout_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return points

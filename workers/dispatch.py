"""How records are run: the seam between the consumer loop and the record processor.

:class:`Dispatcher` is what the worker talks to. :class:`PartitionSerialDispatcher` runs each
partition's records one at a time, in offset order (one call in flight per partition), which
keeps per-customer order because records are keyed by customer. A keyed scheduler with many
customers in flight per partition plugs in behind the same interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from workers.kafka_io import InputRecord, PartitionKey
from workers.offsets import PartitionOffsets

__all__ = ["Dispatcher", "PartitionSerialDispatcher"]

log = logging.getLogger(__name__)

Process = Callable[[InputRecord], Awaitable[None]]


class Dispatcher(Protocol):
    """Runs records and reports which offsets are safe to commit."""

    #: A fatal error raised while processing; the worker stops when it is set.
    failure: BaseException | None

    def assign(self, partitions: Iterable[PartitionKey]) -> None: ...

    def submit(self, record: InputRecord) -> None: ...

    def partitions_to_pause(self) -> list[PartitionKey]: ...

    def partitions_to_resume(self) -> list[PartitionKey]: ...

    async def revoke(
        self, partitions: Iterable[PartitionKey], timeout_s: float
    ) -> dict[PartitionKey, int]: ...

    def committable(self) -> dict[PartitionKey, int]: ...

    def mark_committed(self, offsets: dict[PartitionKey, int]) -> None: ...

    @property
    def buffered(self) -> int: ...


class _Lane:
    """One partition: a FIFO of records and the task that works through it."""

    __slots__ = ("offsets", "paused", "queue", "task", "wakeup")

    def __init__(self) -> None:
        self.queue: deque[InputRecord] = deque()
        self.offsets = PartitionOffsets()
        self.wakeup = asyncio.Event()
        self.paused = False
        self.task: asyncio.Task[None] | None = None


class PartitionSerialDispatcher:
    """One record in flight per partition; partitions are paused when their buffer is full."""

    def __init__(self, process: Process, *, max_buffered_per_partition: int = 1000) -> None:
        self._process = process
        self._high = max_buffered_per_partition
        self._low = max(1, max_buffered_per_partition // 2)
        self._lanes: dict[PartitionKey, _Lane] = {}
        self.failure: BaseException | None = None

    @property
    def buffered(self) -> int:
        return sum(len(lane.queue) for lane in self._lanes.values())

    def assign(self, partitions: Iterable[PartitionKey]) -> None:
        for key in partitions:
            if key not in self._lanes:
                lane = _Lane()
                lane.task = asyncio.get_running_loop().create_task(
                    self._run(key, lane), name=f"lane-{key[0]}-{key[1]}"
                )
                self._lanes[key] = lane

    def submit(self, record: InputRecord) -> None:
        lane = self._lanes.get(record.partition_key)
        if lane is None:  # a record fetched just before its partition was revoked: not ours
            return
        lane.offsets.begin(record.offset)
        lane.queue.append(record)
        lane.wakeup.set()

    def partitions_to_pause(self) -> list[PartitionKey]:
        out = []
        for key, lane in self._lanes.items():
            if not lane.paused and len(lane.queue) >= self._high:
                lane.paused = True
                out.append(key)
        return out

    def partitions_to_resume(self) -> list[PartitionKey]:
        out = []
        for key, lane in self._lanes.items():
            if lane.paused and len(lane.queue) <= self._low:
                lane.paused = False
                out.append(key)
        return out

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

    async def revoke(
        self, partitions: Iterable[PartitionKey], timeout_s: float
    ) -> dict[PartitionKey, int]:
        """Stop the partitions' lanes after their current record (waiting at most ``timeout_s``),
        drop what is buffered, and return the offsets to commit for them."""
        lanes = {key: self._lanes.pop(key) for key in partitions if key in self._lanes}
        for lane in lanes.values():
            # Keep only the record being processed; the rest is re-read by the next owner.
            while len(lane.queue) > 1:
                lane.queue.pop()
        await self._finish_current(lanes.values(), timeout_s)
        offsets = {}
        for key, lane in lanes.items():
            offset = lane.offsets.committable()
            if offset is not None:
                offsets[key] = offset
        return offsets

    async def _finish_current(self, lanes: Iterable[_Lane], timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        lanes = list(lanes)
        while any(lane.queue for lane in lanes) and loop.time() < deadline:
            if self.failure is not None:
                break
            await asyncio.sleep(0.005)
        for lane in lanes:
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task

    def committable(self) -> dict[PartitionKey, int]:
        offsets = {}
        for key, lane in self._lanes.items():
            offset = lane.offsets.committable()
            if offset is not None:
                offsets[key] = offset
        return offsets

    def mark_committed(self, offsets: dict[PartitionKey, int]) -> None:
        for key, offset in offsets.items():
            lane = self._lanes.get(key)
            if lane is not None:
                lane.offsets.mark_committed(offset)

    async def close(self, timeout_s: float) -> dict[PartitionKey, int]:
        """Revoke everything: used at shutdown."""
        return await self.revoke(list(self._lanes), timeout_s)

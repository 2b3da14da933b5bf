"""Which offset is safe to commit, per partition: pure logic, no I/O.

A record's offset is *begun* when it is taken from Kafka and *finished* when its outcome (effects
envelope or DLQ record) has been acknowledged by the broker. The committable offset is the
lowest offset not yet finished — the position a new owner of the partition must resume from —
so a commit never passes a record without an outcome, whatever order records finish in.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PartitionOffsets"]


class PartitionOffsets:
    """Tracks begun and finished offsets of one partition."""

    __slots__ = ("_done", "_last_committed", "_next", "_pending")

    def __init__(self) -> None:
        self._pending: deque[int] = deque()  # begun, in offset order
        self._done: set[int] = set()  # finished but not yet at the head of _pending
        self._next: int | None = None  # the offset after the last finished head
        self._last_committed: int | None = None

    def begin(self, offset: int) -> None:
        if self._pending and offset <= self._pending[-1]:
            raise ValueError(f"offset {offset} begun out of order (after {self._pending[-1]})")
        self._pending.append(offset)

    def finish(self, offset: int) -> None:
        if not self._pending or offset < self._pending[0] or offset in self._done:
            raise ValueError(f"offset {offset} finished but not in flight")
        self._done.add(offset)
        while self._pending and self._pending[0] in self._done:
            head = self._pending.popleft()
            self._done.discard(head)
            self._next = head + 1

    @property
    def in_flight(self) -> int:
        """Begun records without an outcome yet."""
        return len(self._pending) - len(self._done)

    def committable(self) -> int | None:
        """The offset to commit now, or None if nothing new has finished since the last commit."""
        if self._next is None or self._next == self._last_committed:
            return None
        return self._next

    def mark_committed(self, offset: int) -> None:
        self._last_committed = offset

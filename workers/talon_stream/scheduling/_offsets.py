"""Which offset is safe to commit, per partition: pure logic, no I/O.

A record's offset is *begun* when it is taken from Kafka and *finished* when its outcome (effects
envelope or DLQ record) has been acknowledged by the broker. The committable offset is the
lowest offset not yet finished — the position a new owner of the partition must resume from —
so a commit never passes a record without an outcome, whatever order records finish in.

Records finish out of order (many customers in flight), so the records *above* the committable
offset that already have their outcome go with the commit too, in its metadata
(:func:`encode_finished`). The partition's next owner reads them back
(:func:`decode_finished`) and does not run those records again: after a rebalance or a crash
only the records that really had no outcome are replayed. With exactly-once processing that is
what keeps an outcome from being published twice. The metadata is bounded: a partition whose
begun records span :data:`MAX_SPAN` offsets is paused until its oldest record finishes.

The metadata may also carry a *horizon*: an offset below which every record the committing
owner may have called Talon.One for lies, written before any record at or beyond it is run
(:mod:`talon_stream.scheduling._replay` says why and how the next owner uses it).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple, TypeGuard

__all__ = [
    "MAX_SPAN",
    "CommitPoint",
    "PartitionOffsets",
    "decode_finished",
    "decode_horizon",
    "encode_finished",
]

#: The most offsets a partition's begun records may span (the lowest unfinished to the highest
#: begun): its finished-offset map then fits Kafka's default ``offset.metadata.max.bytes``
#: (4096) even incompressed — 20,000 bits are 3,334 base64 characters.
MAX_SPAN = 20_000
_PREFIX = "ts1"
_HORIZON = "~"  # not in the URL-safe base64 alphabet


class CommitPoint(NamedTuple):
    """What to commit for one partition: the next offset to read and the finished offsets above
    it, encoded (``""`` when there are none); ``horizon``: the one the metadata carries."""

    offset: int
    metadata: str = ""
    horizon: int | None = None


def encode_finished(base: int, finished: Iterable[int], horizon: int | None = None) -> str:
    """The offsets of ``finished`` above ``base`` as commit metadata: a bitmap (bit *i* is
    offset ``base + 1 + i``), zlib-compressed when that is shorter, in URL-safe base64; then
    ``~`` and the ``horizon`` when there is one."""
    bits = sorted(offset - base - 1 for offset in finished if offset > base)
    suffix = "" if horizon is None else f"{_HORIZON}{horizon}"
    if not bits:
        return f"{_PREFIX}b:{suffix}" if suffix else ""
    bitmap = bytearray(bits[-1] // 8 + 1)
    for bit in bits:
        bitmap[bit >> 3] |= 1 << (bit & 7)
    raw = bytes(bitmap)
    packed = zlib.compress(raw, 9)
    kind, data = ("z", packed) if len(packed) < len(raw) else ("b", raw)
    text = base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    return f"{_PREFIX}{kind}:{text}{suffix}"


def _ours(metadata: str | None) -> TypeGuard[str]:
    return metadata is not None and metadata.startswith(_PREFIX) and metadata[4:5] == ":"


def decode_horizon(metadata: str | None) -> int | None:
    """The horizon :func:`encode_finished` wrote, or None (none, or metadata it did not write)."""
    if not _ours(metadata):
        return None
    _, found, text = metadata.partition(_HORIZON)
    return int(text) if found and text.isdigit() else None


def decode_finished(base: int, metadata: str | None) -> frozenset[int]:
    """The finished offsets :func:`encode_finished` wrote for ``base``. Metadata it did not write
    (another tool's, or none) means none: those records are simply run again."""
    if not _ours(metadata):
        return frozenset()
    kind, text = metadata[3], metadata[5:].partition(_HORIZON)[0]
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if kind == "z":
            data = zlib.decompress(data)
        elif kind != "b":
            return frozenset()
    except (binascii.Error, ValueError, zlib.error):
        return frozenset()
    return frozenset(
        base + 1 + index * 8 + bit
        for index, byte in enumerate(data)
        if byte
        for bit in range(8)
        if byte >> bit & 1
    )


class PartitionOffsets:
    """Tracks begun and finished offsets of one partition. ``finished_before``: offsets an
    earlier owner finished above the offset it committed (from the commit's metadata).

    ``horizon``, when set, goes with every commit (in the metadata); a commit is then due
    whenever it changed, even with nothing finished, from ``start`` (where reading started) if
    nothing was begun yet."""

    __slots__ = ("_done", "_earlier", "_last_committed", "_next", "_pending", "horizon", "start")

    def __init__(self, finished_before: Iterable[int] = (), start: int | None = None) -> None:
        self._pending: deque[int] = deque()  # begun, in offset order
        self._done: set[int] = set()  # finished but not yet at the head of _pending
        self._next: int | None = None  # the offset after the last finished head
        self._last_committed: CommitPoint | None = None
        self._earlier = set(finished_before)
        self.horizon: int | None = None
        self.start = start

    def begin(self, offset: int) -> bool:
        """Take the record at ``offset``; ``False`` when an earlier owner already finished it
        (it is then finished here too, and must not be run again)."""
        if self._pending and offset <= self._pending[-1]:
            raise ValueError(f"offset {offset} begun out of order (after {self._pending[-1]})")
        self._pending.append(offset)
        if self._earlier and offset in self._earlier:
            self._earlier.discard(offset)
            self.finish(offset)
            return False
        return True

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

    @property
    def span(self) -> int:
        """How many offsets the begun records without a committable outcome span."""
        return self._pending[-1] - self._pending[0] + 1 if self._pending else 0

    def committable(self) -> CommitPoint | None:
        """What to commit now, or ``None`` if nothing has finished (and the horizon has not
        changed) since the last commit."""
        horizon = self.horizon
        if self._next is not None:
            base = self._next
        elif self._done or (horizon is not None and self._pending):
            base = self._pending[0]  # the oldest record is unfinished
        elif horizon is not None and self.start is not None:
            base = self.start
        else:
            return None
        point = CommitPoint(base, encode_finished(base, self._done, horizon), horizon)
        return None if point == self._last_committed else point

    @property
    def committed_horizon(self) -> int | None:
        """The horizon of the last commit made (None: none yet)."""
        last = self._last_committed
        return None if last is None else last.horizon

    def mark_committed(self, point: CommitPoint) -> None:
        self._last_committed = point

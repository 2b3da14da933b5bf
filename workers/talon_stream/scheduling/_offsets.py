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

The metadata also lists the *groups* above the committable offset that are not finished: records
sent (or about to be sent) in one coalesced call, each as its first offset and how many records
it holds. A group is committed before its call starts, so the next owner makes the same calls
again (:mod:`talon_stream.scheduling._replay` says why).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeGuard

__all__ = [
    "MAX_SPAN",
    "CommitPoint",
    "PartitionOffsets",
    "decode_finished",
    "decode_groups",
    "encode_finished",
]

#: The most offsets a partition's begun records may span (the lowest unfinished to the highest
#: begun): its finished-offset map then fits Kafka's default ``offset.metadata.max.bytes``
#: (4096) even incompressed — 20,000 bits are 3,334 base64 characters.
MAX_SPAN = 20_000
_PREFIX = "ts1"
_GROUPS = "~"  # not in the URL-safe base64 alphabet


class CommitPoint(NamedTuple):
    """What to commit for one partition: the next offset to read and the finished offsets above
    it, encoded (``""`` when there are none); ``groups``: the first offsets of the groups the
    metadata lists."""

    offset: int
    metadata: str = ""
    groups: frozenset[int] = frozenset()


def _pack(raw: bytes) -> str:
    """``raw`` zlib-compressed when that is shorter, in URL-safe base64 behind its kind."""
    packed = zlib.compress(raw, 9)
    kind, data = ("z", packed) if len(packed) < len(raw) else ("b", raw)
    return kind + base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unpack(text: str) -> bytes | None:
    kind, body = text[:1], text[1:]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if kind == "z":
            return zlib.decompress(data)
    except (binascii.Error, ValueError, zlib.error):
        return None
    return data if kind == "b" else None


def _varint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def encode_finished(
    base: int, finished: Iterable[int], groups: Mapping[int, int] | None = None
) -> str:
    """The offsets of ``finished`` above ``base`` as commit metadata: a bitmap (bit *i* is
    offset ``base + 1 + i``), zlib-compressed when that is shorter, in URL-safe base64; then
    ``~`` and the ``groups`` (first offset → records, none below ``base``) when there are any,
    as varints (first offsets as gaps), packed the same way."""
    bits = sorted(offset - base - 1 for offset in finished if offset > base)
    suffix = ""
    if groups:
        listed = bytearray()
        previous = base
        for first in sorted(groups):
            _varint(first - previous, listed)
            _varint(groups[first], listed)
            previous = first
        suffix = _GROUPS + _pack(bytes(listed))
    if not bits:
        return f"{_PREFIX}b:{suffix}" if suffix else ""
    bitmap = bytearray(bits[-1] // 8 + 1)
    for bit in bits:
        bitmap[bit >> 3] |= 1 << (bit & 7)
    packed = _pack(bytes(bitmap))
    return f"{_PREFIX}{packed[0]}:{packed[1:]}{suffix}"


def _ours(metadata: str | None) -> TypeGuard[str]:
    return metadata is not None and metadata.startswith(_PREFIX) and metadata[4:5] == ":"


def decode_groups(base: int, metadata: str | None) -> dict[int, int]:
    """The groups :func:`encode_finished` wrote for ``base`` (none when it wrote none, or the
    metadata is not its own)."""
    if not _ours(metadata):
        return {}
    _, found, text = metadata.partition(_GROUPS)
    data = _unpack(text) if found else None
    if not data:
        return {}
    groups: dict[int, int] = {}
    numbers: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(value)
            value = shift = 0
    previous = base
    for gap, count in zip(numbers[::2], numbers[1::2], strict=False):
        previous += gap
        groups[previous] = count
    return groups


def decode_finished(base: int, metadata: str | None) -> frozenset[int]:
    """The finished offsets :func:`encode_finished` wrote for ``base``. Metadata it did not write
    (another tool's, or none) means none: those records are simply run again."""
    if not _ours(metadata):
        return frozenset()
    data = _unpack(metadata[3] + metadata[5:].partition(_GROUPS)[0])
    if data is None:
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

    ``groups`` (first offset → records: coalesced calls not finished, kept by the dispatcher)
    go with every commit; a commit is due whenever they changed. ``anchor``: a commit is due as
    soon as a record is begun, finished or not (where reading started)."""

    __slots__ = ("_done", "_earlier", "_last_committed", "_next", "_pending", "anchor", "groups")

    def __init__(self, finished_before: Iterable[int] = ()) -> None:
        self._pending: deque[int] = deque()  # begun, in offset order
        self._done: set[int] = set()  # finished but not yet at the head of _pending
        self._next: int | None = None  # the offset after the last finished head
        self._last_committed: CommitPoint | None = None
        self._earlier = set(finished_before)
        self.groups: dict[int, int] = {}
        self.anchor = False

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
        """What to commit now, or ``None`` if nothing has finished (and the groups have not
        changed) since the last commit."""
        groups = self.groups
        if self._next is not None:
            base = self._next
        elif self._done or ((groups or self.anchor) and self._pending):
            base = self._pending[0]  # the oldest record is unfinished
        else:
            return None
        listed = {first: count for first, count in groups.items() if first >= base}
        # What an earlier owner finished and this one has not reached yet stays finished.
        finished = self._done.union(self._earlier) if self._earlier else self._done
        point = CommitPoint(base, encode_finished(base, finished, listed), frozenset(listed))
        return None if point == self._last_committed else point

    def mark_committed(self, point: CommitPoint) -> None:
        self._last_committed = point

"""Replays that make the same calls again, so coalescing never puts an older cart over a newer one.

A coalesced call's Idempotency-Key names the records it stands for, and Talon.One answers a
request from its idempotency store only when key and body are the ones it has seen. After a
crash or a rebalance the next owner of a partition reads again from the committed offset. Were it
to group the replayed cart updates otherwise than the owner before it (what waits behind a
session's call depends on timing), a group Talon.One has not seen would be a new call carrying the
session as of the group's last record — after the earlier owner may already have applied a later
one: an older cart over a newer one, kept so when the later record's own call is then answered
from the store.

So a replay makes the calls made before, exactly:

* **Groups are written down before they start.** The worker commits, in the offset metadata,
  every coalesced call of the partition that is not finished (its first offset and how many
  records it holds, :func:`~talon_stream.scheduling._offsets.encode_finished`), and starts the
  call only once that commit succeeded.
* **The next owner forms them again** (:class:`ReplayGroups`). Every record the earlier owner
  may have called for is in the log when the partition is assigned: below its log end then. Of
  those, a listed record leads a group of exactly that many records — itself and the next
  records of the partition with the same customer and session — and waits for all of them;
  nothing else joins them. Every other one was sent on its own, and is again (*solo*). Records
  appended after the assignment were never called for: they are coalesced as usual.

Every replayed call is then the very call made before: same records, same key, same body, so
Talon.One answers it from its store if it was made. Commits without groups (made by a version or
a tool that does not write them) mean one call per record, which is what a replay then makes. A
broker that drops commit metadata would lose the groups: the worker reads its first such commit
back and stops coalescing if the groups are gone (Tansu drops them).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import NamedTuple, TypeVar

from talon_stream.scheduling._offsets import PartitionOffsets
from talon_stream.scheduling._scheduler import Item

__all__ = ["LIVE", "ReplayGroups", "Resume", "Role", "waits_for_commit"]

P = TypeVar("P")


class Resume(NamedTuple):
    """What the group's commit says about a partition when it is assigned."""

    #: The committed offset reading starts from (None: the group never committed one).
    committed: int | None = None
    #: Offsets above it that already have their outcome.
    finished: frozenset[int] = frozenset()
    #: Coalesced calls not finished: first offset → how many records.
    groups: Mapping[int, int] = {}
    #: The partition's log end at assignment (None: unknown, every record counts as replayed).
    log_end: int | None = None


class Role(NamedTuple):
    """How a record is run: leading a replayed group of ``group`` records, as a ``member`` of
    one, ``solo`` (called for on its own before), or none of these (never called for)."""

    group: int = 0
    member: bool = False
    solo: bool = False

    def item(
        self, partition: Hashable, offset: int, keys: tuple[Hashable, ...], payload: P
    ) -> Item[P]:
        """The scheduler's item for a record run so."""
        return Item(
            partition, offset, keys, payload, group=self.group, member=self.member, solo=self.solo
        )


LIVE = Role()
_MEMBER = Role(member=True)
_SOLO = Role(solo=True)


class ReplayGroups:
    """The calls an earlier owner of a partition may have made, made again as their records come
    back: :meth:`role` is asked for each record run, in offset order."""

    __slots__ = ("_end", "_forming", "_leaders")

    def __init__(self, resume: Resume) -> None:
        self._end = resume.log_end
        self._leaders = {first: count for first, count in resume.groups.items() if count > 1}
        self._forming: dict[tuple[Hashable, ...], int] = {}  # lock keys → members still to come

    @classmethod
    def of(cls, resume: Resume | None) -> ReplayGroups | None:
        """None when nothing can have been called for: the group never committed, or the log
        held nothing past the committed offset."""
        if resume is None or resume.committed is None:
            return None
        if resume.log_end is not None and resume.log_end <= resume.committed:
            return None
        return cls(resume)

    def role(self, offset: int, keys: tuple[Hashable, ...]) -> Role:
        if self._end is not None and offset >= self._end:
            return LIVE
        size = self._leaders.pop(offset, 0)
        if size:
            self._forming[keys] = size - 1
            return Role(group=size)
        remaining = self._forming.get(keys)
        if remaining is None:
            return _SOLO
        if remaining > 1:
            self._forming[keys] = remaining - 1
        else:
            del self._forming[keys]
        return _MEMBER

    @property
    def forming(self) -> bool:
        """A group has its leader but not all its members yet: the partition must be read on."""
        return bool(self._forming)


def waits_for_commit(item: Item[P], offsets: PartitionOffsets, *, anchored: bool) -> bool:
    """Whether ``item``, just taken from the scheduler, may start only after a commit: a new
    coalesced call (listed in ``offsets`` from now on) or a partition's first call while the
    group has no committed offset for it (``anchored`` false; ``offsets`` then asks for one)."""
    if item.joined and not item.group:
        offsets.groups[item.offset] = 1 + len(item.joined)
        return True
    if not anchored:
        offsets.anchor = True
        return True
    return False

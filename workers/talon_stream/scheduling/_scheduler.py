"""Keyed scheduling: many customers in flight, one call per customer. Pure logic, no I/O.

Every submitted item carries *lock keys* — the customer's profile ID and session ID. The rules:

* items of one partition are submitted in offset order, and each lock key keeps a FIFO queue of
  the items that name it, in submission order;
* an item may start only when it is at the head of the queue of **every** one of its lock keys
  and no item holding any of those keys is in flight — so calls for one customer never overlap
  and keep their order, even when a session update and a profile update come from different
  topics or partitions;
* at most ``max_in_flight`` items have their call in flight at once. An item whose call was
  answered (:meth:`KeyedScheduler.answered`) gives its slot to the next call but keeps its keys
  until :meth:`KeyedScheduler.complete` — while its outcome is being published — so the next call
  of the same customer still waits for it. No call starts while ``max_publishing`` (by default
  ``max_in_flight``) answered items wait for their outcome, so started items stay below
  ``max_in_flight + max_publishing``. An item whose call waits for a halted Application is
  *parked* (:meth:`KeyedScheduler.park`): it gives up its slot but not its keys.

The oldest waiting item is always at the head of all its queues, so it can start as soon as its
keys are released: the scheduler cannot deadlock. When a slot frees, the *oldest* startable item
takes it (candidates are kept in submission order, in a heap), so a record unblocked by its
customer's previous call does not wait behind every record submitted after it — which would hold
back the committed offset while a backlog drains. A key whose queue is empty and that is not in
flight is forgotten, so memory is bounded by the items in flight and buffered, never by the number
of customers ever seen.

*Joining.* With a ``joinable(earlier, later)`` test, an item that starts takes along the items
waiting right behind it in every one of its queues that have the same keys and partition and
pass the test with the item before them (:attr:`Item.joined`): one call for them all — cart
updates of one session that piled up behind its previous call. They leave the queues with it,
in order, and nothing that waits between them (another record of the customer) is ever skipped.
At most ``max_joined`` items join one call.

*Replayed groups* (:mod:`talon_stream.scheduling._replay`): an item with :attr:`Item.group` set
leads a group an earlier owner sent as one call. It starts once its ``group - 1`` *members*
(:attr:`Item.member`: the next items of its partition with its keys) are all submitted, and
takes exactly them along — moved right behind it, ahead of any item of another partition that
came between them, as they were when the group was first sent. No other item joins a member or
a group leader, nor do they join another; nor a *solo* item (:attr:`Item.solo`: sent on its own
before), which goes on its own again.

*Attaching* (:meth:`KeyedScheduler.attach`): an item submitted while the last item queued for
its keys is in flight, its call not yet made (a profile update waiting for its bulk call), may
go with that call instead of waiting for it to complete: it is queued right behind, started at
once, and completes with it. Nothing of the customer is queued between them, so no record is
overtaken.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Item", "KeyedScheduler"]

P = TypeVar("P")


@dataclass(eq=False, slots=True)
class Item(Generic[P]):
    """One unit of work. ``payload`` is opaque to the scheduler."""

    partition: Hashable
    offset: int
    keys: tuple[Hashable, ...]
    payload: P
    started: bool = field(default=False)
    #: The call was answered: the item no longer holds a call slot, only its keys.
    answered: bool = field(default=False)
    #: Its call waits for a halted Talon.One: it holds no call slot meanwhile, only its keys.
    parked: bool = field(default=False)
    cancelled: bool = field(default=False)
    #: Submission order, set by the scheduler.
    order: int = field(default=0)
    #: The items that started with this one (joined to its call), in queue order.
    joined: list[Item[P]] = field(default_factory=list)
    #: Leads a replayed group of this many items (0: none).
    group: int = field(default=0)
    #: Belongs to the replayed group its keys are forming.
    member: bool = field(default=False)
    #: Replayed, and sent on its own before: never joined.
    solo: bool = field(default=False)
    #: When it was submitted, and when it last became a candidate to start — its keys free
    #: (the scheduler's clock): its wait for its customer, then for a slot.
    submitted_at: float = field(default=0.0)
    ready_at: float = field(default=0.0)
    #: The item in flight it was attached to (:meth:`KeyedScheduler.attach`).
    lead: Item[P] | None = field(default=None)


class KeyedScheduler(Generic[P]):
    """Decides which items may run now. The caller starts what :meth:`take_ready` returns and
    reports each end with :meth:`complete`."""

    def __init__(
        self,
        max_in_flight: int = 256,
        max_publishing: int | None = None,
        *,
        joinable: Callable[[P, P], bool] | None = None,
        max_joined: int = 100,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_in_flight < 1 or (max_publishing is not None and max_publishing < 1):
            raise ValueError("max_in_flight and max_publishing must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_publishing = max_publishing or max_in_flight
        self._joinable = joinable
        self.max_joined = max_joined
        self._clock = clock
        self._queues: dict[Hashable, deque[Item[P]]] = {}
        self._busy: set[Hashable] = set()  # keys held by an item in flight
        # Items that may have become startable, oldest first: (submission order, push, item).
        self._candidates: list[tuple[int, int, Item[P]]] = []
        self._submitted = itertools.count()
        self._pushes = itertools.count()
        self._in_flight = 0
        self._answered = 0  # started items whose call was answered, not yet complete
        self._waiting = 0
        self._per_partition: dict[Hashable, int] = {}  # waiting items per partition

    # --- sizes ---------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def publishing(self) -> int:
        """Items whose call was answered and whose outcome is not acknowledged yet."""
        return self._answered

    @property
    def waiting(self) -> int:
        """Submitted items not started yet."""
        return self._waiting

    @property
    def tracked_keys(self) -> int:
        return len(self._queues)

    def waiting_in(self, partition: Hashable) -> int:
        return self._per_partition.get(partition, 0)

    # --- the protocol --------------------------------------------------------------------------
    def submit(self, item: Item[P]) -> None:
        """Queue ``item`` behind everything already submitted for its keys."""
        if not item.keys:
            raise ValueError("an item needs at least one lock key")
        for key in item.keys:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append(item)
        self._waiting += 1
        self._per_partition[item.partition] = self._per_partition.get(item.partition, 0) + 1
        item.order = next(self._submitted)
        item.submitted_at = now = self._clock()
        # Behind another item of one of its keys, it becomes a candidate when that one completes.
        if all(self._queues[key][0] is item for key in item.keys):
            self._candidate(item, now)
        elif item.member:  # its group's leader may be complete now
            head = self._queues[item.keys[0]][0]
            if head.group and not head.started:
                self._candidate(head)

    def _candidate(self, item: Item[P], now: float | None = None) -> None:
        item.ready_at = self._clock() if now is None else now
        heapq.heappush(self._candidates, (item.order, next(self._pushes), item))

    def take_ready(self) -> list[Item[P]]:
        """The items that may start now (marked started), oldest first, within the cap."""
        ready: list[Item[P]] = []
        cap, publishing_cap = self.max_in_flight, self.max_publishing
        while self._candidates and self._in_flight < cap and self._answered < publishing_cap:
            item = heapq.heappop(self._candidates)[2]
            if item.started or item.cancelled:
                continue
            if not self._startable(item):
                continue  # it becomes a candidate again when what blocks it completes
            item.started = True
            self._busy.update(item.keys)
            self._in_flight += 1
            self._waiting -= 1
            self._per_partition[item.partition] -= 1
            if item.group:
                self._join_group(item)
            elif self._joinable is not None:
                self._join(item)
            ready.append(item)
        return ready

    def _join(self, item: Item[P]) -> None:
        """Start with ``item`` the joinable items right behind it in all its queues."""
        joinable = self._joinable
        assert joinable is not None
        if item.member or item.solo:
            return
        queues = [self._queues[key] for key in item.keys]
        previous = item
        position = 1
        while len(item.joined) < self.max_joined and position < len(queues[0]):
            follower = queues[0][position]
            if (
                follower.member
                or follower.solo
                or follower.group
                or follower.keys != item.keys
                or follower.partition != item.partition
                or follower.cancelled
                or not all(
                    len(queue) > position and queue[position] is follower for queue in queues
                )
                or not joinable(previous.payload, follower.payload)
            ):
                break
            follower.started = True
            item.joined.append(follower)
            self._waiting -= 1
            self._per_partition[item.partition] -= 1
            previous = follower
            position += 1

    def _members(self, item: Item[P]) -> list[Item[P]]:
        """The members of the group ``item`` leads that are submitted, in order."""
        members = []
        want = item.group - 1
        for follower in itertools.islice(self._queues[item.keys[0]], 1, None):
            if (
                follower.member
                and follower.keys == item.keys
                and follower.partition == item.partition
            ):
                members.append(follower)
                if len(members) == want:
                    break
        return members

    def _join_group(self, item: Item[P]) -> None:
        """Start with ``item`` the members of its replayed group, moved right behind it."""
        members = self._members(item)
        for key in item.keys:
            queue = self._queues[key]
            for member in members:
                queue.remove(member)
            for position, member in enumerate(members, start=1):
                queue.insert(position, member)
        for member in members:
            member.started = True
        item.joined.extend(members)
        self._waiting -= len(members)
        self._per_partition[item.partition] -= len(members)

    def attach(self, item: Item[P], joins: Callable[[Item[P]], bool]) -> bool:
        """Start ``item`` with the item in flight it would wait for, if it may: the last item
        queued for each of its keys is that one (or an item attached to it), started, not
        answered, with the same keys and partition, and ``joins(lead)`` — asked last, so that
        what it does stands — accepts. ``item`` then holds its keys with the lead and completes
        with it (:attr:`Item.joined`). Whether it was attached."""
        queues = []
        for key in item.keys:
            queue = self._queues.get(key)
            if not queue:
                return False
            queues.append(queue)
        last = queues[0][-1]
        if any(queue[-1] is not last for queue in queues):
            return False
        lead = last.lead or last
        if (
            not lead.started
            or lead.answered
            or lead.cancelled
            or lead.keys != item.keys
            or lead.partition != item.partition
            or not joins(lead)
        ):
            return False
        item.order = next(self._submitted)
        item.submitted_at = item.ready_at = self._clock()
        item.started = True
        item.lead = lead
        for queue in queues:
            queue.append(item)
        lead.joined.append(item)
        return True

    def attach_waiting(self, lead: Item[P], joins: Callable[[Item[P]], bool]) -> int:
        """Start with ``lead`` — in flight, its call not made — the items waiting right behind
        it (and what was attached to it) in every one of its queues, with its keys and
        partition, that ``joins`` accepts, in order up to the first it does not; as
        :meth:`attach` does. How many were attached."""
        if not lead.started or lead.answered or lead.cancelled:
            return 0
        queues = [self._queues[key] for key in lead.keys]
        position = 1 + len(lead.joined)
        attached = 0
        while position < len(queues[0]):
            follower = queues[0][position]
            if (
                follower.started
                or follower.cancelled
                or follower.member
                or follower.solo
                or follower.group
                or follower.keys != lead.keys
                or follower.partition != lead.partition
                or not all(
                    len(queue) > position and queue[position] is follower for queue in queues
                )
                or not joins(follower)
            ):
                break
            follower.started = True
            follower.lead = lead
            lead.joined.append(follower)
            self._waiting -= 1
            self._per_partition[lead.partition] -= 1
            attached += 1
            position += 1
        return attached

    def lead_of(self, keys: tuple[Hashable, ...], payload: P) -> Item[P] | None:
        """The started item at the head of the queues of ``keys`` whose payload is
        ``payload``, if there is one."""
        queue = self._queues.get(keys[0]) if keys else None
        if not queue or queue[0].payload is not payload or not queue[0].started:
            return None
        return queue[0]

    def answered(self, item: Item[P]) -> None:
        """``item``'s call is over: its slot goes to the next call; its keys stay held until
        :meth:`complete`."""
        if not item.started or item.answered:
            raise ValueError("an item is answered once, after it started")
        item.answered = True
        if item.parked:
            item.parked = False
        else:
            self._in_flight -= 1
        self._answered += 1

    def park(self, item: Item[P]) -> None:
        """``item``'s call waits (for a halted Application): its slot goes to other calls, its
        keys stay held."""
        if item.started and not item.answered and not item.parked:
            item.parked = True
            self._in_flight -= 1

    def unpark(self, item: Item[P]) -> None:
        """``item``'s call goes on: it takes a slot again (beyond the cap, if need be: calls
        that start after it wait until the count is under it)."""
        if item.parked:
            item.parked = False
            self._in_flight += 1

    def complete(self, item: Item[P]) -> None:
        """``item`` has its outcome: release its keys and let the next item of each key start."""
        if not item.started:
            raise ValueError("completing an item that was never started")
        if item.answered:
            self._answered -= 1
        elif not item.parked:
            self._in_flight -= 1
        for key in item.keys:
            self._busy.discard(key)
            queue = self._queues[key]
            # A started item was the head of each of its queues, and nothing overtakes it; the
            # items joined to it were right behind it.
            for _ in range(1 + len(item.joined)):
                queue.popleft()
            if queue:
                self._candidate(queue[0])
            else:
                del self._queues[key]

    def cancel_partition(self, partition: Hashable) -> list[Item[P]]:
        """Drop the partition's waiting items (its records will be re-read by the next owner).
        Items already in flight are left to complete. Returns the dropped items."""
        dropped: list[Item[P]] = []
        for key in list(self._queues):
            queue = self._queues[key]
            kept: deque[Item[P]] = deque()
            for queued in queue:
                if queued.partition == partition and not queued.started:
                    if not queued.cancelled:
                        queued.cancelled = True
                        dropped.append(queued)
                    continue
                kept.append(queued)
            if not kept:
                del self._queues[key]  # a busy key always keeps its in-flight item
                continue
            self._queues[key] = kept
            if not kept[0].started:
                self._candidate(kept[0])
        self._waiting -= len(dropped)
        self._per_partition.pop(partition, None)
        return dropped

    def _startable(self, item: Item[P]) -> bool:
        busy, queues = self._busy, self._queues
        for key in item.keys:  # a loop, not all(<generator>): this runs for every call
            if key in busy or queues[key][0] is not item:
                return False
        # A group leader waits for all its members (it becomes a candidate again as each comes).
        return not item.group or len(self._members(item)) == item.group - 1

    def pending_items(self) -> Iterable[Item[P]]:
        """Every waiting item (for inspection and tests)."""
        seen: set[int] = set()
        for queue in self._queues.values():
            for item in queue:
                if not item.started and not item.cancelled and id(item) not in seen:
                    seen.add(id(item))
                    yield item

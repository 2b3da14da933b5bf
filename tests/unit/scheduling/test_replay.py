"""Replays make the same calls again, however the records were grouped before: never an older
cart over a newer one, and nothing applied twice.

The property runs the pure pieces the keyed dispatcher composes — :class:`PartitionOffsets`
with the coalesced calls it lists, :class:`ReplayGroups`, the :class:`KeyedScheduler` with
joining — through an owner that coalesces under arbitrary timing, starts a coalesced call only
once a commit lists it, and crashes at an arbitrary step (calls in flight may or may not have
reached Talon.One); then through the next owner. A model of Talon.One applies each call as "the
session as of the call's last record" unless its Idempotency-Key (the offsets it stands for) was
seen before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream.scheduling._offsets import (
    PartitionOffsets,
    decode_finished,
    decode_groups,
    encode_finished,
)
from talon_stream.scheduling._replay import LIVE, ReplayGroups, Resume, Role, waits_for_commit
from talon_stream.scheduling._scheduler import Item, KeyedScheduler

PARTITION = ("shop.carts", 0)


@dataclass(frozen=True)
class Rec:
    offset: int
    session: int
    cart: bool  # False: a state change (never joined)


def joinable(earlier: Rec, later: Rec) -> bool:
    return earlier.cart and later.cart


@dataclass
class Talon:
    """Per session, the offset of the record whose state it holds; keys it has answered."""

    holds: dict[int, int] = field(default_factory=dict)
    keys: set[tuple[int, ...]] = field(default_factory=set)
    applied: set[int] = field(default_factory=set)
    regressions: list[str] = field(default_factory=list)
    applied_again: list[tuple[int, ...]] = field(default_factory=list)

    def call(self, group: list[Rec]) -> None:
        key = tuple(r.offset for r in group)
        if key in self.keys:
            return  # answered from the idempotency store: nothing changes
        self.keys.add(key)
        if self.applied.intersection(key):
            self.applied_again.append(key)
        self.applied.update(key)
        session, last = group[-1].session, group[-1].offset
        held = self.holds.get(session, -1)
        if last < held:
            self.regressions.append(f"session {session}: {key} over the state of {held}")
        self.holds[session] = last


def group_of(item: Item[Rec]) -> list[Rec]:
    return [item.payload, *(joined.payload for joined in item.joined)]


class Owner:
    """One owner of the partition, as the keyed dispatcher runs it."""

    def __init__(
        self,
        records: list[Rec],
        resume: Resume,
        max_joined: int,
        rng: random.Random,
        committed: tuple[int, str] | None = None,
    ) -> None:
        """``committed``: the group's last commit (offset, metadata), as the broker holds it."""
        self.records = records
        self.rng = rng
        self.offsets = PartitionOffsets(resume.finished)
        self.replay = ReplayGroups.of(resume)
        if self.replay is not None:
            self.offsets.groups.update(resume.groups)
        self.scheduler: KeyedScheduler[Rec] = KeyedScheduler(
            4, joinable=joinable, max_joined=max_joined
        )
        self.next_fetch = resume.committed or 0
        self.anchored = resume.committed is not None
        self.running: list[Item[Rec]] = []
        self.awaiting: list[Item[Rec]] = []
        self.committed = committed

    def fetch(self, count: int) -> None:
        for record in self.records[self.next_fetch : self.next_fetch + count]:
            self.next_fetch += 1
            if not self.offsets.begin(record.offset):
                continue  # finished before
            keys = (record.session,)
            role = LIVE if self.replay is None else self.replay.role(record.offset, keys)
            if role.group:
                self.offsets.groups[record.offset] = role.group
            self.scheduler.submit(role.item(PARTITION, record.offset, keys, record))

    def take(self) -> None:
        for item in self.scheduler.take_ready():
            if waits_for_commit(item, self.offsets, anchored=self.anchored):
                self.awaiting.append(item)
            else:
                self.running.append(item)

    def commit(self) -> None:
        point = self.offsets.committable()
        if point is None:
            return
        self.offsets.mark_committed(point)
        self.offsets.anchor = False
        self.anchored = True
        self.committed = (point.offset, point.metadata)

        def may_start(item: Item[Rec]) -> bool:
            return item.offset in point.groups or not (item.joined and not item.group)

        self.running.extend(item for item in self.awaiting if may_start(item))
        self.awaiting = [item for item in self.awaiting if not may_start(item)]

    def finish_one(self, talon: Talon) -> None:
        item = self.running.pop(self.rng.randrange(len(self.running)))
        talon.call(group_of(item))
        self.scheduler.complete(item)
        self.offsets.groups.pop(item.offset, None)
        for member in (item, *item.joined):
            self.offsets.finish(member.offset)

    def crash(self, talon: Talon) -> None:
        for item in self.running:
            if self.rng.random() < 0.5:
                talon.call(group_of(item))  # it reached Talon.One, its outcome did not

    def resume(self, log_end: int) -> Resume:
        """What the next owner reads at assignment, the log holding ``log_end`` records."""
        if self.committed is None:
            return Resume()
        offset, metadata = self.committed
        return Resume(
            offset, decode_finished(offset, metadata), decode_groups(offset, metadata), log_end
        )


def records_strategy() -> st.SearchStrategy[list[Rec]]:
    return st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from([True, True, True, False])),
        min_size=1,
        max_size=80,
    ).map(lambda pairs: [Rec(n, session, cart) for n, (session, cart) in enumerate(pairs)])


def run(owner: Owner, talon: Talon, steps: int | None) -> bool:
    """Run ``owner`` for ``steps`` random steps (None: to the end); whether it finished."""
    taken = 0
    while taken < (steps if steps is not None else 100_000):
        taken += 1
        owner.take()
        choice = owner.rng.random()
        if choice < 0.3 and owner.next_fetch < len(owner.records):
            owner.fetch(owner.rng.randint(1, 8))
        elif choice < 0.4 or (not owner.running and owner.awaiting):
            owner.commit()
        elif owner.running:
            owner.finish_one(talon)
        elif owner.next_fetch < len(owner.records):
            owner.fetch(owner.rng.randint(1, 8))
        elif not owner.scheduler.waiting and not owner.awaiting:
            return True
    assert steps is not None, "the owner never finished"
    return False


@settings(max_examples=400, deadline=None)
@given(
    records=records_strategy(),
    seed=st.integers(0, 2**32 - 1),
    crashes=st.lists(st.integers(1, 120), min_size=1, max_size=3),
    joins=st.lists(st.sampled_from([0, 2, 100]), min_size=4, max_size=4),
)
def test_a_replay_makes_the_same_calls_again(
    records: list[Rec], seed: int, crashes: list[int], joins: list[int]
) -> None:
    """Owners (coalescing or not) crash one after the other; each next one reads again from the
    last commit, the log holding what was fetched and maybe more (the rest comes later)."""
    rng = random.Random(seed)
    talon = Talon()
    owner = Owner(records, Resume(), joins[0], rng)
    produced = 0  # the log holds at least what any owner fetched
    for crash_after, max_joined in zip(crashes, joins[1:], strict=False):
        if run(owner, talon, crash_after):
            break  # it finished before the crash
        owner.crash(talon)
        produced = max(produced, owner.next_fetch)
        log_end = produced = rng.randint(produced, len(records))
        owner = Owner(records, owner.resume(log_end), max_joined, rng, owner.committed)
    else:
        assert run(owner, talon, None)
    assert talon.regressions == []
    assert talon.applied_again == []  # every replayed call was answered from the store
    if owner.scheduler.waiting == 0 and not owner.running and not owner.awaiting:
        # Every session ends as its last record has it.
        assert talon.holds == {r.session: r.offset for r in records}


def test_a_replay_grouped_otherwise_would_leave_an_older_cart() -> None:
    """What committing the groups prevents: the first owner sent A,B,C then D; a next owner
    grouping A,B (a key Talon.One never saw) applies B over D, and D is then answered from the
    store — the session is left at C."""
    talon = Talon()
    a, b, c, d = (Rec(n, 0, True) for n in range(4))
    talon.call([a, b, c])
    talon.call([d])
    talon.call([a, b])
    talon.call([c])
    talon.call([d])
    assert talon.regressions
    assert talon.holds[0] == 2


def test_replayed_groups_are_formed_from_the_leader_and_the_next_records_of_its_keys() -> None:
    replay = ReplayGroups.of(Resume(10, groups={10: 3, 20: 1}, log_end=30))
    assert replay is not None
    assert replay.role(10, ("s1",)) == Role(group=3)
    assert replay.forming
    assert replay.role(11, ("s2",)) == Role(solo=True)  # another session: sent on its own
    assert replay.role(12, ("s1",)) == Role(member=True)
    assert replay.role(13, ("s1",)) == Role(member=True)
    assert not replay.forming
    assert replay.role(14, ("s1",)) == Role(solo=True)  # the group is complete
    assert replay.role(20, ("s3",)) == Role(solo=True)  # a group of one is no group
    assert replay.role(30, ("s1",)) is LIVE  # appended after the assignment
    assert ReplayGroups.of(Resume()) is None  # the group never committed
    assert ReplayGroups.of(Resume(10, log_end=10)) is None  # nothing past the commit


def test_the_groups_travel_in_the_commit_metadata() -> None:
    metadata = encode_finished(10, [12, 15], {11: 3, 40: 100, 41: 2})
    assert decode_finished(10, metadata) == {12, 15}
    assert decode_groups(10, metadata) == {11: 3, 40: 100, 41: 2}
    alone = encode_finished(10, [], {10: 2})
    assert decode_finished(10, alone) == frozenset()
    assert decode_groups(10, alone) == {10: 2}
    assert decode_groups(10, encode_finished(10, [12])) == {}
    assert decode_groups(10, "someone else's ~b12") == {}
    offsets = PartitionOffsets()
    offsets.begin(7)
    assert offsets.committable() is None  # nothing finished, nothing listed
    offsets.groups[7] = 2
    point = offsets.committable()
    assert point is not None
    assert (point.offset, point.groups) == (7, frozenset({7}))
    offsets.mark_committed(point)
    assert offsets.committable() is None

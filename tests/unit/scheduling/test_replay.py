"""Replays never put an older cart over a newer one, however the records were grouped before.

The property runs the pure pieces the keyed dispatcher composes — :class:`PartitionOffsets`
with its horizon, :func:`next_horizon`, :class:`ReplayWindow`, the :class:`KeyedScheduler` with
joining — through an owner that coalesces under arbitrary timing and crashes at an arbitrary
step (calls in flight may or may not have reached Talon.One), then through the next owner. A
model of Talon.One applies each call as "the session as of the call's last record" unless its
Idempotency-Key (the offsets it stands for) was seen before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream.scheduling._offsets import (
    PartitionOffsets,
    decode_finished,
    decode_horizon,
    encode_finished,
)
from talon_stream.scheduling._replay import (
    ReplayMode,
    ReplayWindow,
    Resume,
    next_horizon,
)
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
    regressions: list[str] = field(default_factory=list)

    def call(self, group: list[Rec]) -> None:
        key = tuple(r.offset for r in group)
        if key in self.keys:
            return  # answered from the idempotency store: nothing changes
        self.keys.add(key)
        session, last = group[-1].session, group[-1].offset
        held = self.holds.get(session, -1)
        if last < held:
            self.regressions.append(f"session {session}: {key} over the state of {held}")
        self.holds[session] = last


def group_of(item: Item[Rec]) -> list[Rec]:
    return [item.payload, *(joined.payload for joined in item.joined)]


class Owner:
    """One owner of the partition: gate, window and scheduler as the keyed dispatcher runs them."""

    def __init__(
        self, records: list[Rec], resume: Resume, span: int, max_joined: int, rng: random.Random
    ) -> None:
        self.records = records
        self.span = span
        self.rng = rng
        self.offsets = PartitionOffsets(resume.finished, resume.committed)
        self.gate = resume.horizon
        self.window = ReplayWindow.of(resume)
        self.scheduler: KeyedScheduler[Rec] = KeyedScheduler(
            4, joinable=joinable, max_joined=max_joined
        )
        if self.window is not None and self.window.grouped:
            self.scheduler.hold(PARTITION)
        self.next_fetch = resume.committed or 0
        self.fetched_next: int | None = None
        self.beyond: list[Rec] = []
        self.running: list[Item[Rec]] = []
        self.committed: tuple[int, str] | None = None

    def fetch(self, count: int) -> None:
        for record in self.records[self.next_fetch : self.next_fetch + count]:
            self.next_fetch += 1
            self.fetched_next = record.offset + 1
            if self.offsets.start is None:
                self.offsets.start = record.offset
            if self.beyond or self.gate is None or record.offset >= self.gate:
                self.beyond.append(record)
            else:
                self._admit(record)
        if self.window is not None and self.next_fetch >= len(self.records):
            self.window.caught_up()
            self._open()

    def _admit(self, record: Rec) -> None:
        window = self.window
        if window is not None:
            window.fetch(record.offset)
        mode = ReplayMode.LIVE if window is None else window.mode(record.offset)
        if self.offsets.begin(record.offset):
            self.scheduler.submit(
                Item(
                    PARTITION,
                    record.offset,
                    (record.session,),
                    record,
                    replayed=mode is ReplayMode.WINDOW,
                    solo=mode is ReplayMode.SOLO,
                )
            )
        if mode is ReplayMode.WINDOW:
            assert window is not None
            window.take(record.offset)
            self._open()

    def _open(self) -> None:
        if self.window is not None and self.window.ready():
            self.window.opened = True
            self.scheduler.open(PARTITION)

    def commit(self) -> None:
        start = self.fetched_next or self.offsets.start
        if start is not None:
            self.offsets.horizon = max(
                next_horizon(self.offsets.horizon, start, self.span), self.gate or 0
            )
        point = self.offsets.committable()
        if point is None:
            return
        self.offsets.mark_committed(point)
        self.committed = (point.offset, point.metadata)
        if point.horizon is not None and (self.gate or 0) < point.horizon:
            self.gate = point.horizon
            while self.beyond and self.beyond[0].offset < self.gate:
                self._admit(self.beyond.pop(0))

    def finish_one(self, talon: Talon) -> None:
        item = self.running.pop(self.rng.randrange(len(self.running)))
        talon.call(group_of(item))
        self.scheduler.complete(item)
        for member in (item, *item.joined):
            self.offsets.finish(member.offset)

    def crash(self, talon: Talon) -> None:
        for item in self.running:
            if self.rng.random() < 0.5:
                talon.call(group_of(item))  # it reached Talon.One, its outcome did not

    def resume(self) -> Resume:
        if self.committed is None:
            return Resume()
        offset, metadata = self.committed
        return Resume(
            offset,
            decode_finished(offset, metadata),
            decode_horizon(metadata),
            len(self.records),
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
        owner.running.extend(owner.scheduler.take_ready())
        choice = owner.rng.random()
        if choice < 0.3 and owner.next_fetch < len(owner.records):
            owner.fetch(owner.rng.randint(1, 8))
        elif choice < 0.4 or (not owner.running and owner.beyond):
            owner.commit()
        elif owner.running:
            owner.finish_one(talon)
        elif owner.next_fetch < len(owner.records):
            owner.fetch(owner.rng.randint(1, 8))
        elif not owner.scheduler.waiting and not owner.beyond:
            return True
    assert steps is not None, "the owner never finished"
    return False


@settings(max_examples=300, deadline=None)
@given(
    records=records_strategy(),
    seed=st.integers(0, 2**32 - 1),
    crash_after=st.integers(1, 200),
    span=st.integers(1, 30),
    max_joined=st.sampled_from([0, 2, 100]),
    next_joins=st.sampled_from([0, 100]),
)
def test_a_replay_never_puts_an_older_cart_over_a_newer_one(
    records: list[Rec],
    seed: int,
    crash_after: int,
    span: int,
    max_joined: int,
    next_joins: int,
) -> None:
    rng = random.Random(seed)
    talon = Talon()
    first = Owner(records, Resume(), span, max_joined, rng)
    if run(first, talon, crash_after):
        return  # it finished before the crash: nothing to replay
    first.crash(talon)
    # The next owner (coalescing or not) reads again from the committed offset.
    second = Owner(records, first.resume(), span, next_joins, rng)
    assert run(second, talon, None)
    assert talon.regressions == []
    # And every session ends as its last record has it.
    last = {r.session: r.offset for r in records}
    assert talon.holds == last


def test_a_replay_grouped_otherwise_would_regress_without_the_window() -> None:
    """The failure the window prevents: the first owner sent A,B,C then D; the next owner,
    reading again, groups A,B (a key Talon.One never saw) and then D is answered from the
    store — the session is left at B."""
    talon = Talon()
    a, b, c, d = (Rec(n, 0, True) for n in range(4))
    talon.call([a, b, c])
    talon.call([d])
    talon.call([a, b])
    talon.call([c])
    talon.call([d])
    assert talon.regressions
    assert talon.holds[0] == 2


def test_the_window_spans_the_commit_to_the_horizon_or_the_log_end() -> None:
    grouped = ReplayWindow.of(Resume(10, horizon=50, log_end=30))
    assert grouped is not None
    assert (grouped.start, grouped.end, grouped.grouped) == (10, 30, True)
    assert grouped.mode(29) is ReplayMode.WINDOW
    assert grouped.mode(30) is ReplayMode.LIVE
    solo = ReplayWindow.of(Resume(10, log_end=30))  # committed without a horizon
    assert solo is not None
    assert solo.mode(12) is ReplayMode.SOLO
    assert solo.opened
    assert ReplayWindow.of(Resume()) is None  # never committed
    assert ReplayWindow.of(Resume(10, horizon=10, log_end=99)) is None  # nothing between


def test_a_window_opens_once_read_in_full_and_all_with_the_scheduler() -> None:
    window = ReplayWindow(0, 3, grouped=True)
    window.fetch(0)
    window.fetch(1)
    window.take(0)
    window.take(1)
    assert not window.ready()  # offset 2 not read yet
    window.fetch(2)
    assert not window.ready()  # read, but waiting in the event-time merge
    window.take(2)
    assert window.ready()


def test_the_horizon_is_raised_only_when_the_records_come_close() -> None:
    assert next_horizon(None, 100, 40) == 140
    assert next_horizon(140, 110, 40) == 140  # still more than half the span ahead
    assert next_horizon(140, 125, 40) == 165
    assert next_horizon(500, 480, 40) == 520


def test_the_horizon_travels_in_the_commit_metadata() -> None:
    metadata = encode_finished(10, [12, 15], horizon=4_010)
    assert decode_finished(10, metadata) == {12, 15}
    assert decode_horizon(metadata) == 4_010
    alone = encode_finished(10, [], horizon=99)
    assert decode_finished(10, alone) == frozenset()
    assert decode_horizon(alone) == 99
    assert decode_horizon(encode_finished(10, [12])) is None
    assert decode_horizon("someone else's ~12") is None
    offsets = PartitionOffsets(start=7)
    assert offsets.committable() is None  # nothing to say without a horizon
    offsets.horizon = 50
    point = offsets.committable()
    assert point is not None
    assert (point.offset, point.horizon) == (7, 50)
    offsets.mark_committed(point)
    assert offsets.committable() is None
    assert offsets.committed_horizon == 50

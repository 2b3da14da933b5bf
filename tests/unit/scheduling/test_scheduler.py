"""The keyed scheduler, under arbitrary input and arbitrary completion orders."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream.scheduling._offsets import PartitionOffsets
from talon_stream.scheduling._scheduler import Item, KeyedScheduler


def item(partition: int, offset: int, *keys: str) -> Item[None]:
    return Item(partition=partition, offset=offset, keys=keys, payload=None)


def test_one_call_per_customer_many_customers_at_once() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=10)
    a1, b1, a2, c1 = item(0, 0, "p:a"), item(0, 1, "p:b"), item(0, 2, "p:a"), item(1, 0, "p:c")
    for each in (a1, b1, a2, c1):
        scheduler.submit(each)
    assert scheduler.take_ready() == [a1, b1, c1]  # a2 waits behind a1
    assert scheduler.take_ready() == []
    scheduler.complete(a1)
    assert scheduler.take_ready() == [a2]


def test_a_session_and_a_profile_update_of_one_customer_never_overlap() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler()
    session = item(0, 0, "p:ada", "s:ada-1")  # from the orders topic
    profile = item(1, 0, "p:ada")  # from the customers topic
    anonymous = item(0, 1, "s:anon-9")
    for each in (session, profile, anonymous):
        scheduler.submit(each)
    assert scheduler.take_ready() == [session, anonymous]
    scheduler.complete(session)
    assert scheduler.take_ready() == [profile]


def test_the_cap_and_forgetting_idle_keys() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=2)
    items = [item(0, n, f"p:{n}") for n in range(5)]
    for each in items:
        scheduler.submit(each)
    first = scheduler.take_ready()
    assert first == items[:2]
    for each in first:
        scheduler.complete(each)
    assert scheduler.take_ready() == items[2:4]
    assert scheduler.tracked_keys == 3  # 2 in flight + 1 waiting; the finished ones are gone


def test_cancelling_a_partition_drops_only_its_waiting_items() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler()
    running, behind, other = item(0, 0, "p:a"), item(0, 1, "p:a"), item(1, 0, "p:a")
    for each in (running, behind, other):
        scheduler.submit(each)
    assert scheduler.take_ready() == [running]
    assert scheduler.cancel_partition(0) == [behind]
    scheduler.complete(running)
    assert scheduler.take_ready() == [other]
    assert scheduler.waiting == 0


def test_misuse_is_refused() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler()
    with pytest.raises(ValueError, match="lock key"):
        scheduler.submit(item(0, 0))
    with pytest.raises(ValueError, match="never started"):
        scheduler.complete(item(0, 0, "p:a"))
    with pytest.raises(ValueError, match="at least 1"):
        KeyedScheduler(max_in_flight=0)


KEYS = [f"p:{n}" for n in range(6)] + [f"s:{n}" for n in range(6)]
record = st.tuples(
    st.integers(min_value=0, max_value=2),  # partition
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True),
)


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(record, max_size=60),
    cap=st.integers(min_value=1, max_value=8),
    publishing_cap=st.integers(min_value=1, max_value=4),
    join=st.booleans(),
    data=st.data(),
)
def test_order_exclusion_commits_and_memory_hold_for_any_completion_order(
    records: list[tuple[int, list[str]]],
    cap: int,
    publishing_cap: int,
    join: bool,
    data: st.DataObject,
) -> None:
    # With joining, an item takes along the items right behind it with its keys and partition,
    # except those the test refuses (every fourth record, say a state change).
    scheduler: KeyedScheduler[int] = KeyedScheduler(
        max_in_flight=cap,
        max_publishing=publishing_cap,
        joinable=(lambda _earlier, later: later % 4 != 0) if join else None,
        max_joined=3,
    )
    offsets = defaultdict(PartitionOffsets)
    next_offset: dict[int, int] = defaultdict(int)
    submitted: dict[str, list[int]] = defaultdict(list)  # key -> sequence numbers, in order
    started: dict[str, list[int]] = defaultdict(list)
    in_flight: list[Item[int]] = []
    finished: dict[int, set[int]] = defaultdict(set)
    pending = list(records)
    seq = 0
    while pending or in_flight or scheduler.waiting:
        # Interleave submissions and completions in an order Hypothesis chooses.
        if pending and (not in_flight or data.draw(st.booleans())):
            partition, keys = pending.pop(0)
            offset = next_offset[partition]
            next_offset[partition] += 1
            offsets[partition].begin(offset)
            scheduler.submit(Item(partition, offset, tuple(keys), seq))
            for key in keys:
                submitted[key].append(seq)
            seq += 1
        elif in_flight:
            chosen = in_flight[data.draw(st.integers(0, len(in_flight) - 1))]
            if not chosen.answered and data.draw(st.booleans()):
                scheduler.answered(chosen)  # the call is over; its outcome is being published
                calls = [each for each in in_flight if not each.answered]
                assert scheduler.in_flight == len(calls)
                continue
            in_flight.remove(chosen)
            done = chosen
            scheduler.complete(done)
            for member in (done, *done.joined):
                offsets[member.partition].finish(member.offset)
                finished[member.partition].add(member.offset)
            commit = offsets[done.partition].committable()
            if commit is not None:  # never past a record without an outcome
                assert all(o in finished[done.partition] for o in range(commit.offset))
        ready = scheduler.take_ready()
        for each in ready:
            held = {key for other in in_flight for key in other.keys}
            assert not held.intersection(each.keys), "two calls for one key overlap"
            assert len(each.joined) <= 3
            for member in (each, *each.joined):
                assert (member.keys, member.partition) == (each.keys, each.partition)
                assert member is each or member.payload % 4 != 0
                for key in member.keys:
                    started[key].append(member.payload)
            in_flight.append(each)
        # The caps: calls in flight, and answered items still holding their keys.
        calls = [each for each in in_flight if not each.answered]
        assert len(calls) <= cap
        assert scheduler.in_flight == len(calls)
        assert len(in_flight) - len(calls) == scheduler.publishing
        assert len(in_flight) <= cap + publishing_cap
        # Memory: keys tracked are only those of items in flight or waiting.
        live = {key for each in in_flight for key in each.keys}
        live |= {key for each in scheduler.pending_items() for key in each.keys}
        assert scheduler.tracked_keys == len(live)
        # Progress: with nothing running, something waiting must be startable.
        if not in_flight and scheduler.waiting:
            raise AssertionError("deadlock: items wait but none can start")
    for key, order in started.items():
        assert order == submitted[key], f"key {key} ran out of order"
    assert scheduler.tracked_keys == 0


def test_the_oldest_startable_item_takes_the_slot_that_frees() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(max_in_flight=2)
    a0 = Item("p", 0, ("a",), "a0")
    a1 = Item("p", 1, ("a",), "a1")  # the same customer: waits for a0
    others = [Item("p", 2 + n, (f"k{n}",), f"k{n}") for n in range(5)]
    for item in (a0, a1, *others):
        scheduler.submit(item)
    assert [i.payload for i in scheduler.take_ready()] == ["a0", "k0"]

    scheduler.complete(a0)  # a1 (offset 1) may start now; it is the oldest waiting item

    # Oldest first: a1 (offset 1), unblocked by a0, takes the freed slot ahead of k1 (offset 3).
    # Found by the kill -9 chaos run: when unblocked items went to the back, the committed
    # offset stalled during a backlog drain (10 records committed after 822 calls).
    assert [i.payload for i in scheduler.take_ready()] == ["a1"]


def test_an_answered_call_frees_its_slot_but_not_its_customer() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(max_in_flight=1, max_publishing=2)
    a0 = Item("p", 0, ("a",), "a0")
    a1 = Item("p", 1, ("a",), "a1")
    b0 = Item("p", 2, ("b",), "b0")
    c0 = Item("p", 3, ("c",), "c0")
    for each in (a0, a1, b0, c0):
        scheduler.submit(each)
    assert scheduler.take_ready() == [a0]

    scheduler.answered(a0)  # a0's effects are being published: the slot is free, "a" is not
    assert (scheduler.in_flight, scheduler.publishing) == (0, 1)
    assert scheduler.take_ready() == [b0]

    scheduler.answered(b0)  # two answered items may be held at most: nothing more starts
    assert scheduler.take_ready() == []
    scheduler.complete(a0)
    assert scheduler.take_ready() == [a1]  # a's next record, oldest first
    with pytest.raises(ValueError, match="answered once"):
        scheduler.answered(b0)


def test_a_parked_call_gives_its_slot_to_others_and_keeps_its_customer() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(max_in_flight=1)
    a0 = Item("p", 0, ("a",), "a0")
    a1 = Item("p", 1, ("a",), "a1")
    b0 = Item("p", 2, ("b",), "b0")
    c0 = Item("p", 3, ("c",), "c0")
    for each in (a0, a1, b0, c0):
        scheduler.submit(each)
    assert scheduler.take_ready() == [a0]
    scheduler.park(a0)  # its Application is halted: a0 waits without a slot
    assert scheduler.in_flight == 0
    assert scheduler.take_ready() == [b0]  # not a1: "a" is still a0's
    scheduler.unpark(a0)  # a0 goes on: over the cap for a while, so nothing new starts
    assert scheduler.in_flight == 2
    scheduler.complete(b0)
    assert scheduler.take_ready() == []
    scheduler.park(a0)
    scheduler.complete(a0)  # completed while parked (its record was released, say)
    assert scheduler.in_flight == 0
    assert scheduler.take_ready() == [a1]
    scheduler.park(a1)
    scheduler.answered(a1)  # answered while parked: counted once, as publishing
    assert (scheduler.in_flight, scheduler.publishing) == (0, 1)


def test_an_item_takes_along_the_joinable_items_right_behind_it_and_no_others() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(
        max_in_flight=10, joinable=lambda a, b: a.startswith("cart") and b.startswith("cart")
    )

    def cart(offset: int, name: str, *keys: str) -> Item[str]:
        return Item(0, offset, keys or ("p:a", "s:1"), name)

    first = cart(0, "cart-1")
    scheduler.submit(first)
    assert scheduler.take_ready() == [first]  # in flight: what comes now waits behind it
    waiting = [
        cart(1, "cart-2"),
        cart(2, "cart-3"),
        cart(3, "order"),  # a state change: never joined, and nothing after it joins across it
        cart(4, "cart-4"),
        Item(1, 0, ("p:a", "s:1"), "cart-5"),  # another partition
        cart(5, "cart-6", "p:a"),  # other keys: a profile record
    ]
    for each in waiting:
        scheduler.submit(each)
    assert scheduler.waiting == 6
    scheduler.complete(first)
    [second] = scheduler.take_ready()
    assert second.payload == "cart-2"
    assert [j.payload for j in second.joined] == ["cart-3"]
    assert scheduler.waiting == 4
    assert scheduler.waiting_in(0) == 3
    scheduler.complete(second)
    [order] = scheduler.take_ready()
    assert (order.payload, order.joined) == ("order", [])
    scheduler.complete(order)
    [fourth] = scheduler.take_ready()
    assert (fourth.payload, fourth.joined) == ("cart-4", [])  # cart-5: another partition
    scheduler.complete(fourth)
    assert [each.payload for each in scheduler.take_ready()] == ["cart-5"]


def test_a_replayed_group_waits_for_its_members_and_takes_exactly_them() -> None:
    """A group an earlier owner sent as one call: formed again from its leader and members only,
    past ``max_joined`` and with coalescing off (``max_joined=0``); an item of another partition
    that came between them goes after them, as it did then."""
    scheduler: KeyedScheduler[str] = KeyedScheduler(
        max_in_flight=10, joinable=lambda a, b: True, max_joined=0
    )
    leader = Item(0, 0, ("s:1",), "cart-0", group=3)
    scheduler.submit(leader)
    scheduler.submit(member := Item(0, 1, ("s:1",), "cart-1", member=True))
    between = Item(1, 0, ("s:1",), "order")  # another topic's record of the session
    scheduler.submit(between)
    assert scheduler.take_ready() == []  # one member is still to come
    scheduler.submit(last := Item(0, 2, ("s:1",), "cart-2", member=True))
    scheduler.submit(after := Item(0, 3, ("s:1",), "cart-3"))
    assert scheduler.take_ready() == [leader]
    assert leader.joined == [member, last]
    scheduler.complete(leader)
    assert scheduler.take_ready() == [between]
    scheduler.complete(between)
    assert scheduler.take_ready() == [after]
    assert after.joined == []


def test_a_solo_item_never_joins_nor_takes_along() -> None:
    scheduler: KeyedScheduler[str] = KeyedScheduler(max_in_flight=10, joinable=lambda a, b: True)
    blocker = Item(0, 0, ("s:1",), "cart-0")
    scheduler.submit(blocker)
    assert scheduler.take_ready() == [blocker]
    solo = Item(0, 1, ("s:1",), "cart-1", solo=True)
    for each in (solo, Item(0, 2, ("s:1",), "cart-2"), Item(0, 3, ("s:1",), "cart-3", solo=True)):
        scheduler.submit(each)
    scheduler.complete(blocker)
    [first] = scheduler.take_ready()
    assert first is solo
    assert solo.joined == []
    scheduler.complete(solo)
    [second] = scheduler.take_ready()
    assert (second.payload, second.joined) == ("cart-2", [])  # cart-3 is solo


def test_an_item_is_stamped_when_submitted_and_when_its_customer_frees() -> None:
    now = [10.0]
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=1, clock=lambda: now[0])
    first, second, other = item(0, 0, "p:a"), item(0, 1, "p:a"), item(1, 0, "p:b")
    scheduler.submit(first)
    now[0] = 11.0
    scheduler.submit(second)  # behind its customer's first call
    scheduler.submit(other)  # free, but the only slot goes to the first item
    assert (first.submitted_at, first.ready_at) == (10.0, 10.0)
    assert (second.submitted_at, second.ready_at) == (11.0, 0.0)
    assert (other.submitted_at, other.ready_at) == (11.0, 11.0)
    assert scheduler.take_ready() == [first]
    now[0] = 15.0
    scheduler.complete(first)  # the customer is free from now: its key wait ends here
    assert second.ready_at == 15.0
    assert scheduler.take_ready() == [second]  # submitted before the other customer's
    assert other.ready_at == 11.0  # still waiting, for a slot only: not for its customer


def test_an_item_attaches_to_the_call_in_flight_it_would_wait_for() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=4)
    lead = item(0, 0, "p:a")
    scheduler.submit(lead)
    assert scheduler.take_ready() == [lead]
    rider = item(0, 1, "p:a")
    assert scheduler.attach(rider, lambda found: found is lead)
    assert rider.started
    assert rider.lead is lead
    assert lead.joined == [rider]
    # A rider of the rider goes with the lead too.
    second = item(0, 2, "p:a")
    assert scheduler.attach(second, lambda found: found is lead)
    # Another record of the customer queues behind them; nothing attaches past it.
    cart = item(0, 3, "p:a", "s:a")
    scheduler.submit(cart)
    assert not scheduler.attach(item(0, 4, "p:a"), lambda _: True)
    assert not scheduler.attach(item(1, 0, "p:b"), lambda _: True)  # nothing to go with
    assert not scheduler.attach(item(1, 1, "p:a", "s:a"), lambda _: True)  # other keys
    assert scheduler.waiting == 1
    assert scheduler.take_ready() == []
    scheduler.complete(lead)  # completes its riders with it
    assert scheduler.take_ready() == [cart]
    assert scheduler.in_flight == 1


def test_an_item_does_not_attach_when_the_lead_declines_or_was_answered() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=4)
    lead = item(0, 0, "p:a")
    scheduler.submit(lead)
    scheduler.take_ready()
    assert not scheduler.attach(item(0, 1, "p:a"), lambda _: False)
    scheduler.answered(lead)
    assert not scheduler.attach(item(0, 2, "p:a"), lambda _: True)


def test_waiting_items_right_behind_a_lead_go_with_it() -> None:
    scheduler: KeyedScheduler[None] = KeyedScheduler(max_in_flight=4)
    lead, second, third, cart, fourth = (
        item(0, 0, "p:a"),
        item(0, 1, "p:a"),
        item(0, 2, "p:a"),
        item(0, 3, "p:a", "s:a"),
        item(0, 4, "p:a"),
    )
    for each in (lead, second, third, cart, fourth):
        scheduler.submit(each)
    assert scheduler.take_ready() == [lead]
    assert scheduler.lead_of(("p:a",), None) is lead
    assert scheduler.attach_waiting(lead, lambda _: True) == 2  # up to the cart update
    assert lead.joined == [second, third]
    assert scheduler.waiting == 2
    scheduler.complete(lead)
    assert scheduler.take_ready() == [cart]

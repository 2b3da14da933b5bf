"""PendingProfiles: one entry per profile, merged in order, taken oldest first; and what a
refused bulk call's pointers say of its entries."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from talon_stream.core._profiles import PendingProfiles, apply

updates = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.none() | st.dictionaries(st.sampled_from(["x", "y", "z"]), st.integers(0, 9)),
        st.booleans(),  # a call leaves after this update
    ),
    max_size=40,
)


@given(updates, st.integers(1, 3))
def test_calls_in_order_leave_each_profile_as_its_updates_one_by_one(
    script: list[tuple[str, dict[str, Any] | None, bool]], limit: int
) -> None:
    pending: PendingProfiles[int] = PendingProfiles()
    sent: dict[str, dict[str, Any]] = {}
    one_by_one: dict[str, dict[str, Any]] = {}
    tokens: list[int] = []
    for token, (profile, attributes, flush) in enumerate(script):
        pending.add(profile, attributes, token)
        one_by_one.setdefault(profile, {}).update(attributes or {})
        if flush:
            batch = pending.take(limit)
            assert len(batch) <= limit
            assert len({entry.integration_id for entry in batch}) == len(batch)
            apply(sent, batch)
            tokens.extend(token for entry in batch for token in entry.tokens)
    while pending:
        batch = pending.take(limit)
        apply(sent, batch)
        tokens.extend(token for entry in batch for token in entry.tokens)
    assert sent == one_by_one
    assert sorted(tokens) == list(range(len(script)))  # every record answered once


def test_entries_are_taken_oldest_first_and_merged_in_order() -> None:
    pending: PendingProfiles[str] = PendingProfiles()
    pending.add("a", {"x": 1, "y": 1}, "r1", now=1.0)
    pending.add("b", None, "r2", now=2.0)
    entry = pending.add("a", {"y": 2}, "r3", now=3.0)
    assert entry.attributes == {"x": 1, "y": 2}
    assert entry.tokens == ["r1", "r3"]
    assert pending.oldest() == 1.0
    [first] = pending.take(1)
    assert first.as_json() == {"integrationId": "a", "attributes": {"x": 1, "y": 2}}
    [second] = pending.take()
    assert second.as_json() == {"integrationId": "b"}
    assert pending.oldest() is None

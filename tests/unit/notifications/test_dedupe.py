"""The memory of published ids: bounded in size and in time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from talon_stream.notifications import SeenIds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_id_is_forgotten_after_the_window() -> None:
    clock = Clock()
    seen = SeenIds(10, 60.0, clock=clock)
    seen.add("a")
    clock.now = 59.0
    assert "a" in seen
    clock.now = 61.0
    assert "a" not in seen
    assert len(seen) == 0


@given(ids=st.lists(st.text(max_size=4), max_size=200), capacity=st.integers(1, 20))
def test_never_more_than_capacity_and_the_newest_kept(ids: list[str], capacity: int) -> None:
    seen = SeenIds(capacity, 3600.0, clock=Clock())
    for ident in ids:
        seen.add(ident)
        assert ident in seen
        assert len(seen) <= capacity
    newest = list(dict.fromkeys(reversed(ids)))[:capacity]
    assert all(ident in seen for ident in newest)

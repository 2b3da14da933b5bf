"""The committable offset never passes a record without an outcome."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.scheduling._offsets import PartitionOffsets


def test_in_order_completion_moves_the_commit() -> None:
    offsets = PartitionOffsets()
    assert offsets.committable() is None
    for n in range(3):
        offsets.begin(n)
    offsets.finish(0)
    assert offsets.committable() == 1
    offsets.mark_committed(1)
    assert offsets.committable() is None  # nothing new
    offsets.finish(2)
    assert offsets.committable() is None  # 1 is still in flight
    offsets.finish(1)
    assert offsets.committable() == 3
    assert offsets.in_flight == 0


def test_misuse_is_refused() -> None:
    offsets = PartitionOffsets()
    offsets.begin(5)
    with pytest.raises(ValueError, match="out of order"):
        offsets.begin(5)
    with pytest.raises(ValueError, match="not in flight"):
        offsets.finish(4)


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60),
    data=st.data(),
)
def test_commit_never_passes_an_unfinished_record(gaps: list[int], data: st.DataObject) -> None:
    offsets = PartitionOffsets()
    begun = []
    position = 0
    for gap in gaps:  # offsets may have holes (compaction, transaction markers)
        position += gap
        offsets.begin(position)
        begun.append(position)
    order = data.draw(st.permutations(begun))
    finished: set[int] = set()
    for offset in order:
        offsets.finish(offset)
        finished.add(offset)
        commit = offsets.committable()
        unfinished = [o for o in begun if o not in finished]
        if commit is not None:
            assert all(o >= commit for o in unfinished)
            assert commit - 1 in finished
            offsets.mark_committed(commit)
    assert offsets.in_flight == 0


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=60),
    data=st.data(),
)
def test_the_commit_advances_once_the_records_before_it_are_finished(
    gaps: list[int], data: st.DataObject
) -> None:
    """Liveness: whenever every begun record up to some offset is finished, the committable
    offset reaches past it (nothing finished is held back)."""
    offsets = PartitionOffsets()
    begun = []
    position = 0
    for gap in gaps:
        position += gap
        offsets.begin(position)
        begun.append(position)
    committed: int | None = None
    finished: set[int] = set()
    for offset in data.draw(st.permutations(begun)):
        offsets.finish(offset)
        finished.add(offset)
        prefix = 0
        while prefix < len(begun) and begun[prefix] in finished:
            prefix += 1
        commit = offsets.committable()
        if prefix:
            expected = begun[prefix - 1] + 1
            assert (commit if commit is not None else committed) == expected
        if commit is not None and data.draw(st.booleans()):
            offsets.mark_committed(commit)
            committed = commit
    assert offsets.committable() in (None, begun[-1] + 1)

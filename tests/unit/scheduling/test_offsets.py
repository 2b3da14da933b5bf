"""The committable offset never passes a record without an outcome."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.scheduling._offsets import (
    MAX_SPAN,
    CommitPoint,
    PartitionOffsets,
    decode_finished,
    encode_finished,
)


def test_in_order_completion_moves_the_commit() -> None:
    offsets = PartitionOffsets()
    assert offsets.committable() is None
    for n in range(3):
        offsets.begin(n)
    offsets.finish(0)
    assert offsets.committable() == CommitPoint(1)
    offsets.mark_committed(CommitPoint(1))
    assert offsets.committable() is None  # nothing new
    offsets.finish(2)
    # 1 is still in flight: the commit stays at 1, and says that 2 is finished.
    assert offsets.committable() == CommitPoint(1, encode_finished(1, [2]))
    offsets.finish(1)
    assert offsets.committable() == CommitPoint(3)
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
            assert all(o >= commit.offset for o in unfinished)
            # the offsets the metadata calls finished are finished
            assert decode_finished(commit.offset, commit.metadata) <= finished
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
            assert (commit.offset if commit is not None else committed) == expected
        if commit is not None and data.draw(st.booleans()):
            offsets.mark_committed(commit)
            committed = commit.offset
    assert offsets.committable() in (None, CommitPoint(begun[-1] + 1))


@given(
    base=st.integers(min_value=0, max_value=2**62),
    above=st.sets(st.integers(min_value=1, max_value=MAX_SPAN), max_size=400),
)
def test_the_finished_offsets_survive_the_commit_metadata(base: int, above: set[int]) -> None:
    finished = {base + n for n in above}
    metadata = encode_finished(base, finished | {base, max(0, base - 3)})  # not above: dropped
    assert decode_finished(base, metadata) == finished


def test_the_metadata_fits_kafkas_default_limit_however_the_offsets_fall() -> None:
    every_other = range(1, MAX_SPAN + 1, 2)  # the least compressible pattern of a bitmap
    assert len(encode_finished(0, every_other)) <= 4096
    assert len(encode_finished(0, range(1, MAX_SPAN + 1))) < 100  # a full run compresses


@pytest.mark.parametrize("metadata", [None, "", "hello", "ts1x:AAAA", "ts1b:%%%", "ts1z:AAAA"])
def test_metadata_of_another_kind_means_nothing_was_finished(metadata: str | None) -> None:
    assert decode_finished(7, metadata) == frozenset()


def test_records_an_earlier_owner_finished_are_not_run_again() -> None:
    earlier = PartitionOffsets()
    for n in range(10, 15):
        earlier.begin(n)
    for n in (11, 13):
        earlier.finish(n)
    point = earlier.committable()
    assert point is not None
    assert point.offset == 10

    later = PartitionOffsets(decode_finished(point.offset, point.metadata))
    assert [later.begin(n) for n in range(10, 15)] == [True, False, True, False, True]
    assert later.in_flight == 3
    for n in (10, 12, 14):
        later.finish(n)
    assert later.committable() == CommitPoint(15)


def test_the_span_counts_from_the_oldest_unfinished_record() -> None:
    offsets = PartitionOffsets()
    assert offsets.span == 0
    for n in (4, 5, 9):
        offsets.begin(n)
    assert offsets.span == 6
    offsets.finish(4)
    assert offsets.span == 5
    offsets.finish(9)
    assert offsets.span == 5  # 5 holds it


def test_what_an_earlier_owner_finished_stays_finished_until_this_one_reaches_it() -> None:
    """A commit made before the records an earlier owner finished are read again still lists
    them: else the owner after this one would run them again."""
    offsets = PartitionOffsets(finished_before=[13, 15])
    for offset in (10, 11, 12):
        offsets.begin(offset)
    offsets.finish(11)
    point = offsets.committable()
    assert point is not None
    assert point.offset == 10
    assert decode_finished(point.offset, point.metadata) == {11, 13, 15}
    offsets.finish(10)
    point = offsets.committable()
    assert point is not None
    assert decode_finished(point.offset, point.metadata) == {13, 15}  # 12 still unfinished

"""Window bounds: which records of each fetch are read and which evaluated, where each
partition stops, and which live envelopes belong to the window. Plus the command's values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import InputRecord
from talon_stream.whatif import (
    LiveEffects,
    PartitionRange,
    RangeScan,
    WhatIfOptions,
    parse_campaigns,
    parse_duration,
)
from talon_stream.whatif._window import Fetched

UNTIL_MS = 10_000


def rec(offset: int, ts: int, partition: int = 0, topic: str = "carts") -> InputRecord:
    return InputRecord(topic, partition, offset, b"k", b"{}", [], ts)


def fetched(*records: InputRecord, high: int | None = None, eof: int | None = None) -> Fetched:
    highs = {} if high is None else {("carts", 0): high}
    eofs = [] if eof is None else [(("carts", 0), eof)]
    return Fetched(list(records), eofs, highs)


def test_records_between_the_window_offsets_are_evaluated_earlier_ones_only_read() -> None:
    window = PartitionRange(
        "carts", 0, start=3, window_start=5, stop=8, until_ms=8_000, since_ms=4_500
    )
    scan = RangeScan([window])
    taken = scan.take(fetched(*(rec(n, 1000 * n) for n in range(3, 10)), high=20))
    assert [(r.offset, in_window) for r, in_window in taken] == [
        (3, False),
        (4, False),
        (5, True),
        (6, True),
        (7, True),
    ]
    assert scan.finished
    assert scan.newly_done() == [("carts", 0)]
    assert scan.newly_done() == []
    assert scan.progress() == (5, 5)


def test_the_first_record_stamped_at_or_after_until_ends_the_partition() -> None:
    # The broker's answer for ``until`` is not used here (stop unknown): the record is.
    window = PartitionRange("carts", 0, start=0, window_start=0, stop=None, until_ms=UNTIL_MS)
    scan = RangeScan([window])
    taken = scan.take(fetched(rec(0, 9_998), rec(1, 9_999), rec(2, UNTIL_MS), rec(3, 5)))
    assert [r.offset for r, _ in taken] == [0, 1]
    assert scan.finished


def test_without_a_stop_the_end_is_the_first_high_watermark() -> None:
    window = PartitionRange("carts", 0, start=0, window_start=0, stop=None, until_ms=UNTIL_MS)
    scan = RangeScan([window])
    assert [r.offset for r, _ in scan.take(fetched(rec(0, 1), rec(1, 2), high=3))] == [0, 1]
    assert not scan.finished
    assert scan.progress() == (2, 3)
    # Records appended after the run started (the high watermark grew) are left out.
    taken = scan.take(fetched(rec(2, 3), rec(3, 4), high=50))
    assert [r.offset for r, _ in taken] == [2]
    assert scan.finished


def test_an_empty_partition_ends_at_its_end_of_log() -> None:
    window = PartitionRange("carts", 0, start=7, window_start=7, stop=None, until_ms=UNTIL_MS)
    scan = RangeScan([window])
    assert not scan.finished
    assert scan.take(fetched(eof=7)) == []
    assert scan.finished


def test_a_broker_whose_offsets_for_times_ignores_record_timestamps_is_named() -> None:
    """The record at the offset given for a time is never older than it, on Kafka."""
    window = PartitionRange("carts", 0, 0, 2, 5, until_ms=UNTIL_MS, since_ms=5_000)
    scan = RangeScan([window])
    assert [r.offset for r, _ in scan.take(fetched(rec(0, 1), rec(1, 2), rec(2, 5_000)))] == [
        0,
        1,
        2,
    ]
    with pytest.raises(BrokerError, match="does not follow record timestamps"):
        RangeScan([window]).take(fetched(rec(2, 4_999)))
    scan = RangeScan([PartitionRange("carts", 0, 0, 0, 1, until_ms=UNTIL_MS, since_ms=0)])
    with pytest.raises(BrokerError, match=r"gave offset 1 as the first record .* 10000 ms"):
        scan.take(fetched(rec(0, 1), rec(1, UNTIL_MS - 1)))


def test_partitions_with_nothing_to_read_are_done_from_the_start() -> None:
    ranges = [
        PartitionRange("carts", 0, start=None, window_start=None, stop=None),
        PartitionRange("carts", 1, start=4, window_start=4, stop=4),
    ]
    assert all(r.empty for r in ranges)
    scan = RangeScan(ranges)
    assert scan.finished
    assert scan.progress() == (0, 0)


@given(
    st.lists(st.integers(0, 20_000), min_size=1, max_size=60),
    st.integers(0, 30),
    st.integers(0, 30),
    st.integers(1, 7),
)
@settings(max_examples=200, deadline=None)
def test_a_window_read_in_any_chunks_takes_exactly_its_records(
    stamps: list[int], lookback: int, length: int, chunk: int
) -> None:
    """Against a direct reading of the definition: evaluated are the records from the first
    offset stamped at or after ``since`` up to (not including) the first one stamped at or
    after ``until``; read before them, the look-back."""
    records = [rec(n, ts) for n, ts in enumerate(stamps)]
    since_index = min(len(records) - 1, lookback)
    read_from = max(0, since_index - lookback)
    since = stamps[since_index]
    until = since + 1 + length * 300

    def first_at(moment: int, offset: int = 0) -> int | None:
        return next((r.offset for r in records[offset:] if r.timestamp_ms >= moment), None)  # type: ignore[operator]

    window_start = first_at(since)
    stop = first_at(until, window_start or 0)
    window = PartitionRange("carts", 0, read_from, window_start, stop, until, since)
    scan = RangeScan([window])
    taken: list[tuple[int, bool]] = []
    for at in range(read_from, len(records), chunk):
        taken += [(r.offset, w) for r, w in scan.take(fetched(*records[at : at + chunk]))]
    scan.take(fetched(eof=len(records)))
    assert scan.finished
    end = len(records) if stop is None else stop
    expected = [(n, window_start is not None and n >= window_start) for n in range(read_from, end)]
    assert taken == expected
    evaluated = [n for n, w in taken if w]
    assert all(stamps[n] < until for n in evaluated)


def test_live_envelopes_are_kept_only_for_records_in_the_window() -> None:
    ranges = [PartitionRange("carts", 0, start=2, window_start=5, stop=9)]
    live = LiveEffects((12,), ranges)

    def envelope(offset: int, topic: str = "carts", status: int = 200) -> dict[str, object]:
        return {
            "source": {"topic": topic, "partition": 0, "offset": offset},
            "status": status,
            "effects": [
                {"campaignId": 12, "effectType": "setDiscount", "props": {"value": 5}},
                {"campaignId": 1, "effectType": "setDiscount", "props": {"value": 9}},
            ],
        }

    assert [live.add(envelope(n)) for n in (3, 5, 8, 9)] == [False, True, True, False]
    assert not live.add(envelope(6, topic="orders"))
    assert not live.add({"not": "an envelope"})
    assert not live.add(None)
    assert live.add(envelope(6, status=0))
    assert live.unreadable == 2
    found = live.get(rec(5, 0))
    assert found is not None
    assert found.status == 200
    assert [e["campaignId"] for e in found.effects] == [12]
    assert live.get(rec(3, 0)) is None
    assert len(live) == 3


def test_the_commands_values() -> None:
    assert parse_campaigns("15, 12,12") == (12, 15)
    for bad in ("", "12,x", "0", "-3"):
        with pytest.raises(ValueError, match="campaign ids"):
            parse_campaigns(bad)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")
    since = datetime(2026, 12, 5, 10, tzinfo=UTC)
    options = WhatIfOptions(since, since + timedelta(hours=1), (15, 12, 15))
    assert options.campaigns == (12, 15)
    with pytest.raises(ValueError, match="--since must be before --until"):
        WhatIfOptions(since, since, (12,))
    with pytest.raises(ValueError, match="--campaigns"):
        WhatIfOptions(since, since + timedelta(hours=1), ())
    with pytest.raises(ValueError, match="--rate"):
        WhatIfOptions(since, since + timedelta(hours=1), (1,), rate_per_s=0)
    with pytest.raises(ValueError, match="time zone"):
        WhatIfOptions(since.replace(tzinfo=None), since + timedelta(hours=1), (1,))

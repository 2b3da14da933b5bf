"""The judge on small hand-made runs, and on random legal runs (Hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from talon_stream.core._envelopes import coalesced_key
from talon_stream.core._records import InputRecord
from tests.chaos.judge import VIOLATIONS, Call, DlqRecord, SourceRecord, Verdict, judge, total

TOPIC = "in"


def record(offset: int, key: bytes | None = b"c1", partition: int = 0, **kw: Any) -> SourceRecord:
    return SourceRecord(TOPIC, partition, offset, key, b"{}", **kw)


def envelope(source: SourceRecord) -> dict[str, Any]:
    return {"envelopeId": source.envelope_id}


def dead(source: SourceRecord, error_class: str = "DecodeError", message: str = "bad") -> DlqRecord:
    return DlqRecord(source.topic, source.partition, source.offset, error_class, message)


def call(
    source: SourceRecord,
    started: float,
    ended: float | None = None,
    *,
    status: int = 200,
    session: str | None = "s1",
    profile: str | None = None,
    replayed: bool = False,
    fault: str | None = None,
    seq: int = 0,
) -> Call:
    return Call(
        seq=seq,
        session_id=session,
        profile_id=profile,
        idempotency_key=source.envelope_id,
        status=status,
        started=started,
        ended=started + 0.01 if ended is None else ended,
        replayed=replayed,
        fault=fault,
    )


def test_a_clean_run_has_no_violation() -> None:
    records = [record(0), record(1), record(2)]
    calls = [call(r, started=float(n)) for n, r in enumerate(records)]
    verdict = judge(records, [envelope(r) for r in records], [], calls)
    assert verdict.ok, verdict.describe()
    assert verdict.events == 3
    assert verdict.processed_calls == 3
    assert verdict.violations() == {}


def test_a_record_without_envelope_or_dlq_record_is_lost() -> None:
    records = [record(0), record(1)]
    verdict = judge(records, [envelope(records[0])], [], [])
    assert verdict.lost == 1
    assert verdict.examples["lost"] == ["in/0/1 key=b'c1'"]
    assert not verdict.ok


def test_dlq_records_are_matched_by_source_coordinates_and_reason() -> None:
    good, poison, refused, other = record(0), record(1, expect_dlq=True), record(2), record(3)
    expected_class = record(4, expect_dlq=True, expect_error_class="RecordTooLargeError")
    missing = record(5, expect_dlq=True)
    records = [good, poison, refused, other, expected_class, missing]
    verdict = judge(
        records,
        [envelope(good), envelope(other), envelope(missing)],
        [dead(poison), dead(refused, "TalonPermanentError"), dead(expected_class, "DecodeError")],
        [],
    )
    assert verdict.lost == 0
    assert verdict.unexpected_dlq == 1  # offset 2
    assert verdict.expected_dlq_missing == 1  # offset 5 has an envelope instead
    assert verdict.wrong_dlq_reason == 1  # offset 4: DecodeError, not RecordTooLargeError
    assert verdict.expected_dlq == 3


def test_a_dlq_record_without_a_reason_is_a_wrong_reason() -> None:
    poison = record(0, expect_dlq=True)
    verdict = judge([poison], [], [dead(poison, message="")], [])
    assert verdict.wrong_dlq_reason == 1


def test_an_envelope_and_a_dlq_record_for_one_record_conflict() -> None:
    source = record(0)
    verdict = judge([source], [envelope(source)], [dead(source)], [])
    assert verdict.conflicting_outcomes == 1
    assert verdict.unexpected_dlq == 1


def test_repeated_envelopes_are_information_not_violations() -> None:
    source = record(0)
    verdict = judge([source], [envelope(source), envelope(source)], [], [])
    assert verdict.ok
    assert verdict.duplicate_envelopes == 1


def test_outcomes_for_unknown_records_are_foreign() -> None:
    source = record(0)
    stranger = record(9)
    verdict = judge(
        [source],
        [envelope(source), envelope(stranger)],
        [dead(stranger), DlqRecord(None, None, None, "DecodeError", "no headers")],
        [],
    )
    assert verdict.foreign_outcomes == 3


def test_a_later_record_reaching_talon_one_first_is_an_order_violation() -> None:
    first, second, third = record(0), record(1), record(2)
    calls = [
        call(first, started=2.0, session="a"),
        call(second, started=1.0, session="b"),  # overtook offset 0
        call(third, started=3.0, session="c"),
    ]
    verdict = judge(
        [first, second, third], [envelope(r) for r in (first, second, third)], [], calls
    )
    assert verdict.order_violations == 1
    assert (
        "offset 1 reached Talon.One 1.000 s before offset 0"
        in verdict.examples["order_violations"][0]
    )


def test_order_is_per_customer_and_partition() -> None:
    mine, theirs, elsewhere = record(0, b"c1"), record(1, b"c2"), record(0, b"c1", partition=1)
    calls = [
        call(mine, started=2.0, session="a"),
        call(theirs, started=1.0, session="b"),
        call(elsewhere, started=0.5, session="c"),
    ]
    verdict = judge([mine, theirs, elsewhere], [envelope(r) for r in (mine, theirs)], [], calls)
    assert verdict.order_violations == 0


def test_replays_and_refused_calls_do_not_count_for_order_but_error_after_does() -> None:
    first, second = record(0), record(1)
    calls = [
        call(second, started=0.5, session="b", status=503),  # not processed: no side effect
        call(first, started=1.0, session="a"),
        call(second, started=2.0, session="b"),
        call(first, started=3.0, session="a", replayed=True),  # a replay after a crash
    ]
    assert judge([first, second], [], [], calls).order_violations == 0
    processed_early = [
        call(second, started=0.5, session="b", status=503, fault="error-after"),
        call(first, started=1.0, session="a"),
    ]
    assert judge([first, second], [], [], processed_early).order_violations == 1


def test_overlapping_calls_for_one_session_or_profile() -> None:
    one, two, three = record(0), record(1, b"c2"), record(2, b"c3")
    calls = [
        call(one, 1.0, 2.0, session="s1", profile="p1"),
        call(two, 1.5, 2.5, session="s2", profile="p1"),  # same profile, overlapping
        call(three, 2.5, 3.0, session="s2"),  # starts as the previous one ends: no overlap
    ]
    verdict = judge([one, two, three], [], [], calls)
    assert verdict.overlapping_calls == 1
    assert verdict.examples["overlapping_calls"][0].startswith("profile p1")


def test_an_overlap_with_a_long_earlier_call_is_found() -> None:
    sources = [record(n) for n in range(3)]
    calls = [
        call(sources[0], 1.0, 10.0, session="s"),
        call(sources[1], 2.0, 3.0, session="s"),
        call(sources[2], 4.0, 5.0, session="s"),  # not adjacent to the long call, still inside
    ]
    assert judge(sources, [], [], calls).overlapping_calls == 2


def test_a_key_processed_twice_is_a_duplicate_side_effect() -> None:
    source = record(0)
    replayed = [call(source, 1.0), call(source, 2.0, replayed=True)]
    assert judge([source], [envelope(source)], [], replayed).duplicate_side_effects == 0
    twice = [call(source, 1.0), call(source, 2.0)]
    assert judge([source], [envelope(source)], [], twice).duplicate_side_effects == 1


def test_retry_after_is_checked_from_the_429_answer() -> None:
    source = record(0)
    too_soon = [call(source, 1.0, 1.1, status=429), call(source, 1.6)]
    in_time = [call(source, 1.0, 1.1, status=429), call(source, 2.1)]
    assert judge([source], [], [], too_soon, retry_after_s=1).retry_after_violations == 1
    assert judge([source], [], [], in_time, retry_after_s=1).retry_after_violations == 0
    assert judge([source], [], [], too_soon).retry_after_violations == 0  # not asked


def test_calls_and_dlq_records_are_read_from_their_wire_forms() -> None:
    entry = {
        "seq": 7,
        "method": "PUT",
        "path": "/v2/customer_sessions/s1",
        "operation": "updateCustomerSessionV2",
        "sessionId": "s1",
        "profileId": None,
        "idempotencyKey": "k",
        "query": {},
        "body": {},
        "status": 200,
        "started": 1.5,
        "ended": 1.6,
        "replayed": False,
        "fault": None,
    }
    assert Call.from_entry(entry) == Call(7, "s1", None, "k", 200, 1.5, 1.6)
    headers = [
        ("x-original", b"kept"),
        ("talon-stream.error.class", b"DecodeError"),
        ("talon-stream.error.message", b"not valid JSON"),
        ("talon-stream.source.topic", b"in"),
        ("talon-stream.source.partition", b"3"),
        ("talon-stream.source.offset", b"42"),
    ]
    parsed = DlqRecord.from_headers(headers)
    assert parsed == DlqRecord("in", 3, 42, "DecodeError", "not valid JSON")
    assert parsed.coordinates == ("in", 3, 42)
    assert DlqRecord.from_headers([]).coordinates is None


def test_totals_add_counts_and_keep_a_few_examples() -> None:
    lost = judge([record(0)], [], [], [])
    clean = judge([record(1)], [envelope(record(1))], [], [])
    summed = total([lost, lost, clean])
    assert summed.events == 3
    assert summed.lost == 2
    assert len(summed.examples["lost"]) == 2
    assert set(summed.counts()) == set(Verdict().counts())
    assert set(VIOLATIONS) <= set(summed.counts())


# --- random legal runs -----------------------------------------------------------------------

# A run: records of a few customers over two partitions; each customer's calls sequential in
# offset order, customers' calls interleaved at random; some calls replayed (after a "crash"),
# some records dead-lettered, some envelopes repeated.
run_shapes = st.lists(
    st.tuples(
        st.integers(0, 1),  # partition
        st.sampled_from([b"a", b"b", b"c", b"d"]),  # customer
        st.booleans(),  # poison
        st.floats(0.0, 1.0),  # gap before the call
        st.floats(0.001, 1.0),  # call duration
        st.integers(0, 2),  # replays
        st.integers(1, 2),  # envelopes published
    ),
    min_size=1,
    max_size=40,
)


def legal_run(
    shape: list[tuple[int, bytes, bool, float, float, int, int]],
) -> tuple[list[SourceRecord], list[dict[str, Any]], list[DlqRecord], list[Call]]:
    offsets = {0: 0, 1: 0}
    clock: dict[bytes, float] = {}
    records: list[SourceRecord] = []
    envelopes: list[dict[str, Any]] = []
    dlq: list[DlqRecord] = []
    calls: list[Call] = []
    for partition, key, poison, gap, duration, replays, published in shape:
        source = SourceRecord(TOPIC, partition, offsets[partition], key, b"{}", expect_dlq=poison)
        offsets[partition] += 1
        records.append(source)
        if poison:
            dlq.append(DlqRecord(TOPIC, partition, source.offset, "DecodeError", "bad"))
            continue
        customer = key.decode()
        for attempt in range(1 + replays):
            started = clock.get(key, 0.0) + gap
            ended = clock[key] = started + duration
            replayed = attempt > 0
            calls.append(
                Call(len(calls), customer, None, source.envelope_id, 200, started, ended, replayed)
            )
        envelopes.extend({"envelopeId": source.envelope_id} for _ in range(published))
    return records, envelopes, dlq, calls


@settings(max_examples=200, deadline=None)
@given(run_shapes)
def test_a_legal_run_breaks_no_guarantee(
    shape: list[tuple[int, bytes, bool, float, float, int, int]],
) -> None:
    records, envelopes, dlq, calls = legal_run(shape)
    verdict = judge(records, envelopes, dlq, calls, retry_after_s=1)
    assert verdict.ok, verdict.describe()
    assert verdict.events == len(records)
    assert verdict.processed_calls == sum(1 for r in records if not r.expect_dlq)


@settings(max_examples=200, deadline=None)
@given(run_shapes, st.data())
def test_every_dropped_outcome_is_one_lost_record(
    shape: list[tuple[int, bytes, bool, float, float, int, int]], data: st.DataObject
) -> None:
    records, envelopes, dlq, calls = legal_run(shape)
    dropped = data.draw(st.sets(st.sampled_from(records)))
    ids = {r.envelope_id for r in dropped}
    kept_envelopes = [e for e in envelopes if e["envelopeId"] not in ids]
    kept_dlq = [d for d in dlq if d.coordinates not in {r.coordinates for r in dropped}]
    verdict = judge(records, kept_envelopes, kept_dlq, calls)
    assert verdict.lost == len(dropped)
    assert verdict.expected_dlq_missing == sum(1 for r in dropped if r.expect_dlq)


@settings(max_examples=200, deadline=None)
@given(run_shapes, st.data())
def test_swapping_two_calls_of_one_customer_is_caught(
    shape: list[tuple[int, bytes, bool, float, float, int, int]], data: st.DataObject
) -> None:
    records, envelopes, dlq, calls = legal_run(shape)
    first_calls = {c.idempotency_key: c for c in reversed(calls) if c.processed}
    by_customer: dict[tuple[int, bytes | None], list[SourceRecord]] = {}
    for source in records:
        if source.envelope_id in first_calls:
            by_customer.setdefault((source.partition, source.key), []).append(source)
    pairs = [group for group in by_customer.values() if len(group) >= 2]
    if not pairs:
        return
    group = data.draw(st.sampled_from(pairs))
    chosen = data.draw(st.sets(st.sampled_from(group), min_size=2, max_size=2))
    earlier, later = sorted(chosen, key=lambda r: r.offset)
    a, b = first_calls[earlier.envelope_id], first_calls[later.envelope_id]
    if a.started == b.started:
        return
    times = {id(a): (b.started, b.ended), id(b): (a.started, a.ended)}
    swapped = [
        replace(c, started=times[id(c)][0], ended=times[id(c)][1]) if id(c) in times else c
        for c in calls
    ]
    assert judge(records, envelopes, dlq, swapped).order_violations >= 1


def coalesced(members: list[SourceRecord], started: float, *, replayed: bool = False) -> Call:
    """One call for ``members`` (coalesced cart updates), under their group's key."""
    key = coalesced_key(
        [InputRecord(m.topic, m.partition, m.offset, m.key, None, [], None) for m in members]
    )
    return replace(call(members[-1], started, replayed=replayed), idempotency_key=key)


def group_envelopes(members: list[SourceRecord]) -> list[dict[str, Any]]:
    owner = members[-1]
    into = {"envelopeId": owner.envelope_id, "eventId": "e", "records": len(members)}
    return [envelope(owner)] + [{**envelope(m), "coalescedInto": into} for m in members[:-1]]


def test_a_coalesced_call_counts_for_each_record_it_stood_for() -> None:
    a, b, c, d = (record(n) for n in range(4))
    calls = [coalesced([a, b, c], 1.0), call(d, 2.0), call(a, 3.0)]  # a alone again: replayed later
    verdict = judge([a, b, c, d], [*group_envelopes([a, b, c]), envelope(d)], [], calls)
    # a's first processed call is the coalesced one, before d's: in order. But the lone replay
    # of a after d puts the session back to a: an older cart over a newer one.
    assert verdict.order_violations == 0
    assert verdict.stale_writes == 1
    assert "as of in/0/0 after one as of offset 3" in verdict.examples["stale_writes"][0]


def test_a_replay_that_regroups_is_a_stale_write_unless_it_ends_at_the_newest() -> None:
    a, b, c, d = (record(n) for n in range(4))
    envelopes = [*group_envelopes([a, b, c]), envelope(d), *group_envelopes([a, b])]
    stale = judge(
        [a, b, c, d],
        envelopes,
        [],
        [coalesced([a, b, c], 1.0), call(d, 2.0), coalesced([a, b], 3.0), call(c, 4.0)],
    )
    assert stale.stale_writes == 2  # [a, b] and then c alone, both after d
    whole = judge(
        [a, b, c, d],
        [*envelopes, *group_envelopes([a, b, c, d])],
        [],
        [coalesced([a, b, c], 1.0), call(d, 2.0), coalesced([a, b, c, d], 3.0)],
    )
    assert whole.stale_writes == 0
    assert whole.ok, whole.describe()

"""The judge: what a run did to its input records, computed from what anyone can observe.

A pure function of four things:

* the **input records** (:class:`SourceRecord`: coordinates, key, value, and whether the
  record is expected to end in the DLQ, with which error class);
* the **effects envelopes** read from the effects topic (only ``envelopeId`` is used);
* the **DLQ records** read from the DLQ topic (:class:`DlqRecord`, from their headers);
* the emulator's **request log** (the entries of ``GET /__emulator/requests``).

An input record is tied to its Talon.One calls by the ``Idempotency-Key`` each call carries and
to its envelope by the ``envelopeId``: both are ``envelope_id(topic, partition, offset)``. A
DLQ record names its source by its ``talon-stream.source.*`` headers.

Definitions (each counted in :class:`Verdict`):

* a **processed call** is a request-log entry that Talon.One carried out: not ``replayed``
  (not an answer replayed from the Idempotency-Key store) and either 2xx, or processed before
  an injected error was answered (``fault == "error-after"``). Only processed calls have side
  effects.
* ``lost``: input records with neither an effects envelope nor a DLQ record.
* ``order_violations``: group the input records by customer — same topic, partition and
  Kafka key (Kafka orders records only within a partition; keyless records have no customer
  and are left out). Take each record's first processed call. Walking a group in offset order,
  a record whose processed call *started* (emulator receive time) strictly before the processed
  call of some lower-offset record of the group started has overtaken it: one violation per
  overtaking record. Records without a processed call (dead-lettered, or every call replayed)
  are skipped. A coalesced call (one call for several cart updates of a session, under a key
  of its own) counts for each record it stood for: its envelopes name the record whose
  envelope id owns the call and how many records it answered for, which are the customer's
  records of the partition up to that one.
* ``stale_writes``: processed calls that carried a session as of an earlier record than a
  processed call for that session before them — an older cart over a newer one. A call stands
  for its record, or for the records of its coalesced group (as of the group's last record);
  records are compared by offset within one topic and partition.
* ``overlapping_calls``: calls (any status, replayed or not) whose ``[started, ended]``
  interval overlaps the interval of an earlier-starting call for the same session ID or the
  same profile ID; each overlapping call is counted once.
* ``duplicate_side_effects``: for each ``Idempotency-Key``, processed calls beyond the first.
* ``unexpected_dlq``: input records not expected in the DLQ that have a DLQ record;
  ``expected_dlq_missing``: records expected in the DLQ that have none; ``wrong_dlq_reason``:
  expected DLQ records none of whose DLQ records has the expected error class, plus DLQ records
  that carry no error class or message at all.
* ``conflicting_outcomes``: records with both an effects envelope and a DLQ record (the
  outcome must be one or the other, also when the record was processed twice).
* ``retry_after_violations`` (only when ``retry_after_s`` is given): calls sent sooner than
  ``retry_after_s`` (less ``tolerance_s``) after the previous call with the same
  Idempotency-Key was answered 429.
* ``foreign_outcomes``: envelopes or DLQ records for no known input record.

Repeats are not violations: ``duplicate_envelopes`` (envelopes beyond one per record) and
``replayed_calls`` are reported as information, since at-least-once delivery allows them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from talon_stream.core._envelopes import coalesced_key, envelope_id
from talon_stream.core._records import InputRecord

__all__ = [
    "VIOLATIONS",
    "Call",
    "DlqRecord",
    "SourceRecord",
    "Verdict",
    "coalesced_calls",
    "judge",
    "total",
]

#: The :class:`Verdict` counts that break a guarantee (all must be 0).
VIOLATIONS = (
    "lost",
    "order_violations",
    "stale_writes",
    "overlapping_calls",
    "duplicate_side_effects",
    "unexpected_dlq",
    "expected_dlq_missing",
    "wrong_dlq_reason",
    "conflicting_outcomes",
    "retry_after_violations",
    "foreign_outcomes",
)
_EXAMPLES = 5

Coordinates = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One input record as produced, with what should become of it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    expect_dlq: bool = False
    #: The ``talon-stream.error.class`` the DLQ record must carry (``None``: any).
    expect_error_class: str | None = None

    @property
    def coordinates(self) -> Coordinates:
        return (self.topic, self.partition, self.offset)

    @property
    def envelope_id(self) -> str:
        return envelope_id(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class DlqRecord:
    """What the judge needs of one DLQ record: its source coordinates and why it failed."""

    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    error_class: str | None
    error_message: str | None

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes | None]]) -> DlqRecord:
        """From the DLQ record's Kafka headers (the last value of a repeated name wins)."""
        found = {name: (value or b"").decode(errors="replace") for name, value in headers}

        def number(name: str) -> int | None:
            text = found.get(name)
            return int(text) if text is not None and text.lstrip("-").isdigit() else None

        return cls(
            source_topic=found.get("talon-stream.source.topic"),
            source_partition=number("talon-stream.source.partition"),
            source_offset=number("talon-stream.source.offset"),
            error_class=found.get("talon-stream.error.class"),
            error_message=found.get("talon-stream.error.message"),
        )

    @property
    def coordinates(self) -> Coordinates | None:
        if self.source_topic is None or self.source_partition is None:
            return None
        if self.source_offset is None:
            return None
        return (self.source_topic, self.source_partition, self.source_offset)


@dataclass(frozen=True, slots=True)
class Call:
    """One request-log entry, reduced to what the judge reads."""

    seq: int
    session_id: str | None
    profile_id: str | None
    idempotency_key: str | None
    status: int
    started: float
    ended: float
    replayed: bool = False
    fault: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Call:
        """From an emulator request-log entry (``RequestLogEntry`` or its JSON)."""
        return cls(
            seq=int(entry.get("seq") or 0),
            session_id=entry.get("sessionId"),
            profile_id=entry.get("profileId"),
            idempotency_key=entry.get("idempotencyKey"),
            status=int(entry["status"]),
            started=float(entry["started"]),
            ended=float(entry["ended"]),
            replayed=bool(entry.get("replayed")),
            fault=entry.get("fault"),
        )

    @property
    def processed(self) -> bool:
        """Talon.One carried it out (see the module docstring)."""
        if self.replayed:
            return False
        return 200 <= self.status < 300 or self.fault == "error-after"


@dataclass
class Verdict:
    """What the judge found. Violation counts are listed in :data:`VIOLATIONS`."""

    events: int = 0
    lost: int = 0
    order_violations: int = 0
    stale_writes: int = 0
    overlapping_calls: int = 0
    duplicate_side_effects: int = 0
    unexpected_dlq: int = 0
    expected_dlq_missing: int = 0
    wrong_dlq_reason: int = 0
    conflicting_outcomes: int = 0
    retry_after_violations: int = 0
    foreign_outcomes: int = 0
    # Information, not violations.
    expected_dlq: int = 0
    effects_envelopes: int = 0
    duplicate_envelopes: int = 0
    dlq_records: int = 0
    calls: int = 0
    processed_calls: int = 0
    replayed_calls: int = 0
    status_429: int = 0
    status_5xx: int = 0
    #: A few examples of each violation, for the person reading a failure.
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in VIOLATIONS)

    def violations(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in VIOLATIONS if getattr(self, name)}

    def counts(self) -> dict[str, int]:
        """Every count, without the examples."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "examples"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One readable paragraph: the violations and their examples."""
        if self.ok:
            return f"ok: {self.events} events"
        parts = [f"{name}={count}" for name, count in self.violations().items()]
        lines = [f"{self.events} events: " + ", ".join(parts)]
        lines.extend(
            f"  {name}: {example}"
            for name, examples in self.examples.items()
            for example in examples
        )
        return "\n".join(lines)

    def _example(self, name: str, text: str) -> None:
        bucket = self.examples.setdefault(name, [])
        if len(bucket) < _EXAMPLES:
            bucket.append(text)


def total(verdicts: Iterable[Verdict]) -> Verdict:
    """The sum of several verdicts' counts (examples are concatenated, a few per kind)."""
    summed = Verdict()
    for verdict in verdicts:
        for name, count in verdict.counts().items():
            setattr(summed, name, getattr(summed, name) + count)
        for name, examples in verdict.examples.items():
            for example in examples:
                summed._example(name, example)
    return summed


def judge(
    records: Sequence[SourceRecord],
    envelopes: Iterable[Mapping[str, Any]],
    dlq: Iterable[DlqRecord],
    request_log: Iterable[Mapping[str, Any] | Call],
    *,
    retry_after_s: float | None = None,
    tolerance_s: float = 0.01,
) -> Verdict:
    """Judge one run; see the module docstring for every definition."""
    verdict = Verdict(events=len(records))
    calls = [entry if isinstance(entry, Call) else Call.from_entry(entry) for entry in request_log]
    by_id = {record.envelope_id: record for record in records}
    by_coordinates = {record.coordinates: record for record in records}

    enveloped: dict[str, int] = defaultdict(int)
    for envelope in envelopes:
        verdict.effects_envelopes += 1
        key = str(envelope.get("envelopeId"))
        if key not in by_id:
            verdict.foreign_outcomes += 1
            verdict._example("foreign_outcomes", f"envelope {key} for no input record")
            continue
        enveloped[key] += 1
    verdict.duplicate_envelopes = sum(count - 1 for count in enveloped.values())

    dead: dict[Coordinates, list[DlqRecord]] = defaultdict(list)
    for record in dlq:
        verdict.dlq_records += 1
        if not record.error_class or not record.error_message:
            verdict.wrong_dlq_reason += 1
            verdict._example("wrong_dlq_reason", f"DLQ record without a reason: {record}")
        coordinates = record.coordinates
        if coordinates is None or coordinates not in by_coordinates:
            verdict.foreign_outcomes += 1
            verdict._example("foreign_outcomes", f"DLQ record for no input record: {record}")
            continue
        dead[coordinates].append(record)

    for source in records:
        where = "{}/{}/{}".format(*source.coordinates)
        has_envelope = source.envelope_id in enveloped
        dead_letters = dead.get(source.coordinates, [])
        if source.expect_dlq:
            verdict.expected_dlq += 1
        if not has_envelope and not dead_letters:
            verdict.lost += 1
            verdict._example("lost", f"{where} key={source.key!r}")
        if has_envelope and dead_letters:
            verdict.conflicting_outcomes += 1
            verdict._example(
                "conflicting_outcomes", f"{where}: an envelope and {dead_letters[0].error_class}"
            )
        if dead_letters and not source.expect_dlq:
            verdict.unexpected_dlq += 1
            first = dead_letters[0]
            verdict._example(
                "unexpected_dlq", f"{where}: {first.error_class}: {first.error_message}"
            )
        if source.expect_dlq and not dead_letters:
            verdict.expected_dlq_missing += 1
            verdict._example("expected_dlq_missing", f"{where} value={_preview(source.value)}")
        expected_class = source.expect_error_class
        if (
            source.expect_dlq
            and dead_letters
            and expected_class is not None
            and all(d.error_class != expected_class for d in dead_letters)
        ):
            verdict.wrong_dlq_reason += 1
            verdict._example(
                "wrong_dlq_reason",
                f"{where}: expected {expected_class}, got {dead_letters[0].error_class}",
            )

    _judge_calls(
        verdict, records, calls, retry_after_s, tolerance_s, coalesced_calls(records, envelopes)
    )
    return verdict


def coalesced_calls(
    records: Sequence[SourceRecord], envelopes: Iterable[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Per record envelope id, the Idempotency-Keys of the coalesced calls that stood for it:
    the ``records`` records of the owner's customer in its partition, up to the owner."""
    customers: dict[tuple[str, int, bytes | None], list[SourceRecord]] = defaultdict(list)
    for source in sorted(records, key=lambda r: r.coordinates):
        customers[(source.topic, source.partition, source.key)].append(source)
    place = {
        source.envelope_id: (customer, index)
        for customer, members in customers.items()
        for index, source in enumerate(members)
    }
    found: dict[str, list[str]] = defaultdict(list)
    groups = {
        (str(into["envelopeId"]), int(into["records"]))
        for envelope in envelopes
        if isinstance(into := envelope.get("coalescedInto"), Mapping)
    }
    for owner, size in groups:
        if owner not in place:
            continue
        customer, index = place[owner]
        members = customers[customer][max(0, index - size + 1) : index + 1]
        key = coalesced_key(
            [InputRecord(m.topic, m.partition, m.offset, m.key, None, [], None) for m in members]
        )
        for member in members:
            found[member.envelope_id].append(key)
    return found


def _judge_calls(
    verdict: Verdict,
    records: Sequence[SourceRecord],
    calls: list[Call],
    retry_after_s: float | None,
    tolerance_s: float,
    coalesced: Mapping[str, list[str]],
) -> None:
    by_key: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        verdict.calls += 1
        verdict.processed_calls += call.processed
        verdict.replayed_calls += call.replayed
        verdict.status_429 += call.status == 429
        verdict.status_5xx += call.status >= 500
        if call.idempotency_key:
            by_key[call.idempotency_key].append(call)
    for key_calls in by_key.values():
        key_calls.sort(key=lambda c: (c.started, c.seq))

    # Duplicate side effects: one idempotency key processed more than once.
    for key, key_calls in by_key.items():
        processed = [c for c in key_calls if c.processed]
        if len(processed) > 1:
            verdict.duplicate_side_effects += len(processed) - 1
            verdict._example(
                "duplicate_side_effects",
                f"Idempotency-Key {key} processed {len(processed)} times "
                f"(seq {', '.join(str(c.seq) for c in processed)})",
            )

    # Retry-After: never sooner than asked after a 429.
    if retry_after_s is not None:
        for key, key_calls in by_key.items():
            for previous, following in itertools.pairwise(key_calls):
                waited = following.started - previous.ended
                if previous.status == 429 and waited < retry_after_s - tolerance_s:
                    verdict.retry_after_violations += 1
                    verdict._example(
                        "retry_after_violations",
                        f"Idempotency-Key {key}: sent again {waited:.3f} s after a 429 "
                        f"(seq {previous.seq} → {following.seq})",
                    )

    # Per-customer order of processed calls.
    groups: dict[tuple[str, int, bytes], list[SourceRecord]] = defaultdict(list)
    for source in records:
        if source.key is not None:
            groups[(source.topic, source.partition, source.key)].append(source)
    for (topic, partition, customer), members in groups.items():
        members.sort(key=lambda r: r.offset)
        latest_start = float("-inf")
        latest_offset = -1
        for source in members:
            keys = [source.envelope_id, *coalesced.get(source.envelope_id, ())]
            processed = [c for key in keys for c in by_key.get(key, ()) if c.processed]
            if not processed:
                continue
            started = min(c.started for c in processed)
            if started < latest_start:
                verdict.order_violations += 1
                verdict._example(
                    "order_violations",
                    f"{topic}/{partition} key={customer!r}: offset {source.offset} reached "
                    f"Talon.One {latest_start - started:.3f} s before offset {latest_offset}",
                )
            elif started > latest_start:
                latest_start, latest_offset = started, source.offset

    # Stale writes: per session, the record each processed call stood for never goes back.
    stands_for: dict[str, SourceRecord] = {}
    by_id = {source.envelope_id: source for source in records}
    for record_id, keys in coalesced.items():
        for key in keys:
            last = stands_for.get(key)
            member = by_id[record_id]
            if last is None or member.offset > last.offset:
                stands_for[key] = member
    newest: dict[tuple[str, str, int], tuple[int, float]] = {}
    for call in sorted(calls, key=lambda c: (c.started, c.seq)):
        if not call.processed or not call.session_id or not call.idempotency_key:
            continue
        source = stands_for.get(call.idempotency_key) or by_id.get(call.idempotency_key)
        if source is None:
            continue
        where = (call.session_id, source.topic, source.partition)
        held = newest.get(where)
        if held is not None and source.offset < held[0]:
            verdict.stale_writes += 1
            verdict._example(
                "stale_writes",
                f"session {call.session_id}: a call as of {source.topic}/{source.partition}/"
                f"{source.offset} after one as of offset {held[0]} (seq {call.seq})",
            )
            continue
        newest[where] = (source.offset, call.started)

    # Overlapping calls for one session or profile ID.
    by_customer_id: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        if call.session_id:
            by_customer_id["session " + call.session_id].append(call)
        if call.profile_id:
            by_customer_id["profile " + call.profile_id].append(call)
    overlapping: set[int] = set()
    for name, id_calls in by_customer_id.items():
        id_calls.sort(key=lambda c: (c.started, c.ended))
        latest_end = float("-inf")
        latest: Call | None = None
        for call in id_calls:
            if latest is not None and call.started < latest_end:
                if id(call) not in overlapping:
                    verdict._example(
                        "overlapping_calls",
                        f"{name}: seq {call.seq} started {latest_end - call.started:.3f} s "
                        f"before seq {latest.seq} ended",
                    )
                overlapping.add(id(call))
            if call.ended > latest_end:
                latest_end, latest = call.ended, call
    verdict.overlapping_calls = len(overlapping)


def _preview(value: bytes | None, limit: int = 60) -> str:
    if value is None:
        return "None"
    text = value[:limit].decode(errors="replace")
    return f"{text!r}{'…' if len(value) > limit else ''} ({len(value)} bytes)"

"""What a replay is about: the DLQ record read (:class:`DeadLetter`), what to replay
(:class:`ReplayFilter`, :class:`ReplayOptions`), one selected record (:class:`Replay`), the counts
of a run (:class:`ReplaySummary`), the hooks a front end gets (:class:`ReplayObserver`), and the
errors. No I/O here.

**Time window.** ``since`` (inclusive) and ``until`` (exclusive) are compared with the time the
worker gave up on the record, its ``talon-stream.last.attempt.at`` header — or the DLQ record's
own timestamp when that header is missing or unreadable.

Errors (all :class:`~talon_stream.BrokerError`, so :class:`TalonStreamError`)::

    BrokerError                 the broker cannot be reached or stops answering (bounded wait)
    ├── DlqTopicNotFoundError   the DLQ topic does not exist; nothing was read or created
    └── ReplayDeliveryError     the broker refused a replayed record; carries the summary so far
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from talon_stream._exceptions import BrokerError
from talon_stream.core._dead_letters import DLQ_HEADER_PREFIX, REPLAY_HEADER
from talon_stream.core._records import Headers, InputRecord


class DlqTopicNotFoundError(BrokerError):
    """The DLQ topic does not exist on the cluster."""

    def __init__(self, topic: str, bootstrap_servers: str) -> None:
        super().__init__(
            f"the DLQ topic {topic!r} does not exist on {bootstrap_servers} "
            "(check --dlq-topic / TALON_STREAM_DLQ_TOPIC)"
        )
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers


class ReplayDeliveryError(BrokerError):
    """The broker refused a replayed record. ``replay`` is the DLQ record that was not replayed;
    ``summary`` counts what happened before the run stopped."""

    def __init__(self, replay: Replay, cause: BrokerError, summary: ReplaySummary) -> None:
        super().__init__(
            f"could not replay {replay.letter.coordinates} to {replay.topic!r}: {cause}; "
            f"the run stopped after replaying {summary.replayed} of {summary.selected} selected "
            "records, and nothing after it of its key was sent"
        )
        self.replay = replay
        self.summary = summary


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (``2026-11-22T10:00:00Z``, ``2026-11-22 10:00+01:00``, ``2026-11-22``);
    without a UTC offset it is taken as UTC.

    Raises:
        ValueError: not an ISO 8601 time.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _header(headers: Headers, name: str) -> str | None:
    """The last value of header ``name`` (the DLQ headers are appended after the original
    ones), decoded; ``None`` when absent."""
    for key, value in reversed(headers):
        if key == name:
            return value.decode(errors="replace")
    return None


def _int_header(headers: Headers, name: str) -> int | None:
    text = _header(headers, DLQ_HEADER_PREFIX + name)
    return int(text) if text is not None and text.isdigit() else None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A DLQ record with its ``talon-stream.*`` headers read."""

    record: InputRecord
    error_class: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    #: Set when the worker left the value out of the DLQ (too large): its size in bytes.
    value_omitted_bytes: int | None
    #: When the worker gave up: ``last.attempt.at``, or the DLQ record's timestamp.
    failed_at: datetime | None
    #: The record's own headers: everything but ``talon-stream.*``.
    original_headers: Headers

    @classmethod
    def parse(cls, record: InputRecord) -> DeadLetter:
        headers = record.headers
        failed_at: datetime | None = None
        last_attempt = _header(headers, DLQ_HEADER_PREFIX + "last.attempt.at")
        if last_attempt is not None:
            try:
                failed_at = parse_time(last_attempt)
            except ValueError:
                failed_at = None
        if failed_at is None and record.timestamp_ms is not None:
            failed_at = datetime.fromtimestamp(record.timestamp_ms / 1000, tz=UTC)
        return cls(
            record=record,
            error_class=_header(headers, DLQ_HEADER_PREFIX + "error.class"),
            source_topic=_header(headers, DLQ_HEADER_PREFIX + "source.topic") or None,
            source_partition=_int_header(headers, "source.partition"),
            source_offset=_int_header(headers, "source.offset"),
            value_omitted_bytes=_int_header(headers, "value.omitted.bytes"),
            failed_at=failed_at,
            original_headers=[(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)],
        )

    @property
    def coordinates(self) -> str:
        """``dlqtopic/partition/offset``: the value of ``talon-stream.replay.of``."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    def replay_headers(self) -> Headers:
        return [*self.original_headers, (REPLAY_HEADER, self.coordinates.encode())]


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which DLQ records to replay; an empty set means "any"."""

    since: datetime | None = None
    until: datetime | None = None
    error_classes: frozenset[str] = frozenset()
    keys: frozenset[bytes] = frozenset()
    source_topics: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("since and until must be timezone-aware (see parse_time)")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")

    def rejection(self, letter: DeadLetter) -> str | None:
        """The name of the first filter ``letter`` fails, or ``None`` when it is selected."""
        if self.since is not None or self.until is not None:
            moment = letter.failed_at
            if (
                moment is None
                or (self.since is not None and moment < self.since)
                or (self.until is not None and moment >= self.until)
            ):
                return "time"
        if self.error_classes and letter.error_class not in self.error_classes:
            return "error-class"
        if self.keys and letter.record.key not in self.keys:
            return "key"
        if self.source_topics and letter.source_topic not in self.source_topics:
            return "topic"
        return None


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to replay, where to, and how long to wait for a broker that does not answer."""

    dlq_topic: str
    filter: ReplayFilter = field(default_factory=ReplayFilter)
    #: Publish every selected record here instead of its source topic.
    to_topic: str | None = None
    dry_run: bool = False
    timeout_s: float = 10.0
    max_in_flight: int = 256


@dataclass(frozen=True, slots=True)
class Replay:
    """A selected DLQ record and where it goes (``partition`` ``None``: by key)."""

    letter: DeadLetter
    topic: str
    partition: int | None


@dataclass(slots=True)
class ReplaySummary:
    """Counts of one run. ``scanned`` = ``selected`` + every ``skipped_*``."""

    dlq_topic: str
    dry_run: bool
    partitions: int = 0
    scanned: int = 0
    selected: int = 0
    replayed: int = 0
    #: By the filter that rejected them: ``time``, ``error-class``, ``key``, ``topic``.
    skipped_by_filter: Counter[str] = field(default_factory=Counter)
    #: Selected but without a ``talon-stream.source.topic`` header, and no ``to_topic``.
    skipped_no_source_topic: int = 0
    #: Selected but their value is not in the DLQ (``talon-stream.value.omitted.bytes``).
    skipped_value_omitted: int = 0
    #: On an Avro DLQ topic: records whose value is not a DLQ envelope in the wire format.
    skipped_not_envelope: int = 0
    #: Selected but their target topic does not exist, by topic.
    skipped_missing_topic: Counter[str] = field(default_factory=Counter)
    #: The selected records, by ``talon-stream.error.class`` and by source topic.
    by_error_class: Counter[str] = field(default_factory=Counter)
    by_source_topic: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The summary as printed by the command."""

        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "-"

        action = "would replay" if self.dry_run else "replayed"
        done = self.selected if self.dry_run else self.replayed
        lines = [
            f"DLQ {self.dlq_topic}: scanned {self.scanned} records in {self.partitions} "
            f"partitions, selected {self.selected}, {action} {done}"
            + (" (dry run: nothing produced)" if self.dry_run else ""),
            f"  skipped by filter: {self.skipped_by_filter.total()}"
            + (f" ({counts(self.skipped_by_filter)})" if self.skipped_by_filter else ""),
        ]
        if self.skipped_no_source_topic:
            lines.append(
                f"  skipped, no talon-stream.source.topic header: {self.skipped_no_source_topic}"
                " (give --to TOPIC to replay them)"
            )
        if self.skipped_value_omitted:
            lines.append(
                f"  skipped, value not kept in the DLQ (too large): {self.skipped_value_omitted}"
                " (the originals are still in their source topics)"
            )
        if self.skipped_not_envelope:
            lines.append(
                f"  skipped, not an Avro DLQ envelope: {self.skipped_not_envelope}"
                " (the DLQ topic is Avro in TALON_STREAM_TOPIC_FORMATS)"
            )
        if self.skipped_missing_topic:
            lines.append(
                f"  skipped, target topic does not exist: {counts(self.skipped_missing_topic)}"
            )
        lines.append(f"  by error class: {counts(self.by_error_class)}")
        lines.append(f"  by source topic: {counts(self.by_source_topic)}")
        return lines


class ReplayObserver:
    """Hooks for a front end; each does nothing here."""

    def selected(self, replay: Replay) -> None:
        """A record passed the filters and will be (or, in a dry run, would be) replayed."""

    def skipped(self, letter: DeadLetter, reason: str) -> None:
        """A record passed the filters but cannot be replayed (``reason`` says why)."""

    def progress(self, done: int, total: int | None) -> None:
        """Offsets read so far, of ``total`` (``None`` until every partition's end is known)."""

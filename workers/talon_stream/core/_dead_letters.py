"""What the worker writes for a record that goes to the DLQ: the original record's headers plus
``talon-stream.*`` headers saying why (``docs/reliability.md``). A pure function of the record and
the failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from talon_stream._exceptions import TalonStatusError, TalonStreamError
from talon_stream._version import __version__
from talon_stream.core._envelopes import iso_ms
from talon_stream.core._records import Headers, InputRecord

__all__ = ["DLQ_HEADER_PREFIX", "REPLAY_HEADER", "DlqFailure", "dlq_headers"]

DLQ_HEADER_PREFIX = "talon-stream."
#: The header ``talon-stream dlq replay`` puts on a re-published record (its DLQ coordinates).
REPLAY_HEADER = DLQ_HEADER_PREFIX + "replay.of"
_DLQ_BODY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DlqFailure:
    """Why a record went to the DLQ, and how hard the worker tried."""

    error: TalonStreamError
    attempts: int
    first_attempt_at: datetime
    last_attempt_at: datetime


def dlq_headers(record: InputRecord, failure: DlqFailure) -> Headers:
    """The original headers plus ``talon-stream.*`` headers saying what went wrong."""
    error = failure.error
    extra: dict[str, str] = {
        "error.class": type(error).__name__,
        "error.message": str(error),
        "source.topic": record.topic,
        "source.partition": str(record.partition),
        "source.offset": str(record.offset),
        "attempts": str(failure.attempts),
        "first.attempt.at": failure.first_attempt_at.isoformat(timespec="milliseconds"),
        "last.attempt.at": failure.last_attempt_at.isoformat(timespec="milliseconds"),
        "worker.version": __version__,
    }
    timestamp = iso_ms(record.timestamp_ms)
    if timestamp is not None:
        extra["source.timestamp"] = timestamp
    if isinstance(error, TalonStatusError):
        extra["http.status"] = str(error.status)
        extra["http.body"] = error.body[:_DLQ_BODY_CHARS]
        extra["talon.operation"] = error.call.operation.value
    headers = list(record.headers)
    headers.extend((DLQ_HEADER_PREFIX + name, value.encode()) for name, value in extra.items())
    return headers

"""A record decoded and translated, waiting for its turn: what the dispatcher schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from talon_stream._exceptions import RecordError
from talon_stream.core._calls import TalonCall
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord

__all__ = ["Prepared"]


@dataclass(slots=True)
class Prepared:
    """A record decoded and translated, ready to be scheduled by the customer's lock keys."""

    record: InputRecord
    started: float  # perf_counter when the record was taken
    taken_at: datetime
    event: Event | None = None
    call: TalonCall | None = None
    error: RecordError | None = None
    #: The Talon.One Application it is for (``"default"`` unless the worker has several).
    application: str = "default"

    def lock_keys(self) -> tuple[str, ...]:
        """The customer's ids this record touches: its profile and its session. A record that
        never became a call is locked by its Kafka key, so it keeps its place among its
        customer's records."""
        call = self.call
        if call is not None:
            keys = []
            if call.profile_id:
                keys.append("p:" + call.profile_id)
            if call.session_id:
                keys.append("s:" + call.session_id)
            if keys:
                return tuple(keys)
        if self.record.key:
            return ("p:" + self.record.key.decode(errors="replace"),)
        return (f"r:{self.record.topic}/{self.record.partition}",)

"""What the worker knows of the sessions it updated: the basis of *superseded* outcomes.

A ``cart.updated`` that happened before the newest event already applied to its session — a
cart update published late, after the order that closed the session, or after a newer cart — is
moot: sending it would put an older cart over a newer one, or ask Talon.One to change a session
that is closed, cancelled or returned. :class:`SessionLedger` remembers, per session ID, the
newest event applied (its ``occurredAt``, id, type and envelope) and the state Talon.One
answered, and says when a cart update is superseded; the worker then publishes an envelope that
says so instead of calling. State changes (``order.*``) and profile events are never superseded:
they are applied in order and Talon.One's state machine decides.

It is memory, not a database: bounded (the least recently updated sessions are forgotten) and
per worker (a partition's next owner starts without it). A late cart for a session it forgot is
sent as any other record. Session calls are sequential per session ID (the scheduler's session
lock), and the worker notes a call's answer before the session's next record may start, so the
ledger never races with itself. Pure logic, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from talon_stream.core._events import CartUpdated, Event

__all__ = ["SessionLedger", "SessionMark", "Superseded"]

#: Sessions remembered per worker (``TALON_STREAM_SESSION_MEMORY``): one entry is about 450
#: bytes, so 50,000 are about 23 MB.
DEFAULT_CAPACITY = 50_000


class SessionMark(NamedTuple):
    """The newest event applied to a session, and the state Talon.One answered for it (the
    event unknown — None — when only Talon.One's state is)."""

    occurred_at: datetime | None
    event_id: str | None
    event_type: str | None
    envelope_id: str | None
    state: str | None


@dataclass(frozen=True, slots=True)
class Superseded:
    """Why a record is not sent: the newer event applied to its session, and that session's
    state as Talon.One answered it."""

    by: SessionMark

    @classmethod
    def by_session_state(cls, state: str) -> Superseded:
        """Talon.One holds the session ``state`` (not open) from an event the worker does not
        remember: applied before a restart or a rebalance."""
        return cls(SessionMark(None, None, None, None, state))

    @property
    def reason(self) -> str:
        by = self.by
        if by.occurred_at is None:
            return (
                f"the session is {by.state} in Talon.One (by an event applied before this "
                "worker's memory of it): a cart update can no longer change it"
            )
        state = f" (session {by.state})" if by.state and by.state != "open" else ""
        return (
            f"happened before {by.event_type} {by.event_id} "
            f"({by.occurred_at.isoformat()}), already applied to the session{state}"
        )


#: A :class:`SessionMark`'s fields as a plain tuple (what the ledger keeps).
_Mark = tuple[datetime | None, str | None, str | None, str | None, str | None]


class SessionLedger:
    """The newest applied event per session ID, for the last ``capacity`` sessions."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        # Plain tuples of atomic values (a SessionMark's fields): CPython's cyclic collector
        # stops tracking those, so a full ledger adds nothing to its work — as tracked objects
        # a full ledger made the worker's CPU per event grow by a fifth over a long backlog.
        self._marks: OrderedDict[str, _Mark] = OrderedDict()

    def __len__(self) -> int:
        return len(self._marks)

    def superseded(self, event: Event) -> Superseded | None:
        """Whether ``event`` is moot: a cart update older than the session's newest applied
        event."""
        if not isinstance(event, CartUpdated) or event.session_id is None:
            return None
        found = self._marks.get(event.session_id)
        if found is None:
            return None
        mark = SessionMark(*found)
        if mark.occurred_at is None or event.occurred_at >= mark.occurred_at:
            return None
        return Superseded(mark)

    def applied(self, event: Event, envelope_id: str, state: str | None) -> None:
        """Note that Talon.One applied ``event`` to its session (``state``: the session's state
        in the answer, when it returned the session). An older event than the one noted changes
        only the state."""
        session_id = event.session_id
        if session_id is None:
            return
        marks = self._marks
        found = marks.get(session_id)
        if found is not None:
            mark = SessionMark(*found)
            if mark.occurred_at is not None and event.occurred_at < mark.occurred_at:
                if state is not None and state != mark.state:
                    marks[session_id] = (found[0], found[1], found[2], found[3], state)
                marks.move_to_end(session_id)
                return
        marks[session_id] = (event.occurred_at, event.event_id, event.type, envelope_id, state)
        marks.move_to_end(session_id)
        if len(marks) > self._capacity:
            marks.popitem(last=False)

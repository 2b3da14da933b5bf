"""Advanced events (trackEventV3): stored by their own integration ID, which only one event may
have.

Talon.One keeps every advanced event; the emulator keeps at most ``capacity`` and forgets the
oldest beyond that, after which its ID is one it has never seen (a new event may take it). An
event outlives its profile: it is found by its own ID, and only names the profile.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MAX_EVENTS", "AdvancedEventRecord", "AdvancedEventStore"]

DEFAULT_MAX_EVENTS = 200_000


@dataclass(slots=True)
class AdvancedEventRecord:
    """One advanced event as tracked: the request's fields and the effects it produced."""

    id: int
    integration_id: str
    created: str
    profile_id: str
    type: str
    attributes: dict[str, Any] = field(default_factory=dict)
    effects: list[dict[str, Any]] = field(default_factory=list)
    store_integration_id: str | None = None
    connected_session_id: str | None = None


class AdvancedEventStore:
    """Advanced events by integration ID, at most ``capacity`` of them.

    Raises:
        ValueError: ``capacity`` is below 1.
    """

    def __init__(self, capacity: int = DEFAULT_MAX_EVENTS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._events: dict[str, AdvancedEventRecord] = {}
        # Insertion order beside the dict: popping the oldest from a deque is O(1). Events are
        # never removed otherwise, so the two always hold the same IDs.
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, integration_id: object) -> bool:
        return integration_id in self._events

    def get(self, integration_id: str) -> AdvancedEventRecord | None:
        return self._events.get(integration_id)

    def add(self, record: AdvancedEventRecord) -> None:
        """Store a new event (the caller checked that its ID is free); beyond ``capacity`` the
        oldest is forgotten."""
        self._events[record.integration_id] = record
        self._order.append(record.integration_id)
        while len(self._order) > self.capacity:
            del self._events[self._order.popleft()]

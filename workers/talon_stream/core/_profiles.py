"""Profile updates gathered into Talon.One's bulk call. Pure logic, no I/O.

A ``customer.updated`` that runs no rules is one entry of *update multiple customer profiles*
(``PUT /v2/customer_profiles``): the profile's integration ID and the attributes to set, which
Talon.One merges into the profile key by key, as the single update does. One call takes up to
1,000 entries and runs no rules.

:class:`PendingProfiles` keeps the entries waiting for the next call, one per profile: an update
of a profile that already waits is merged into its entry in order, the later value of an
attribute winning. The profile then ends as the updates sent one after the other would leave it,
and a call never names a profile twice. :meth:`PendingProfiles.take` gives the next call's
entries, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "MAX_PROFILES",
    "PendingProfiles",
    "ProfileEntry",
    "apply",
]

#: The most profiles Talon.One takes in one bulk call.
MAX_PROFILES = 1000

T = TypeVar("T")


@dataclass(slots=True)
class ProfileEntry(Generic[T]):
    """One profile's entry of the next call, and the tokens (records) merged into it, in order.
    ``since``: when its first update started waiting (the caller's clock)."""

    integration_id: str
    attributes: dict[str, Any] | None
    tokens: list[T] = field(default_factory=list)
    since: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The entry as the request carries it."""
        entry: dict[str, Any] = {"integrationId": self.integration_id}
        if self.attributes is not None:
            entry["attributes"] = self.attributes
        return entry


class PendingProfiles(Generic[T]):
    """The entries waiting for the next bulk call, one per profile, oldest first."""

    def __init__(self) -> None:
        self._entries: dict[str, ProfileEntry[T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, integration_id: str) -> ProfileEntry[T] | None:
        """The profile's waiting entry, if any."""
        return self._entries.get(integration_id)

    def add(
        self, integration_id: str, attributes: dict[str, Any] | None, token: T, now: float = 0.0
    ) -> ProfileEntry[T]:
        """Queue an update of the profile for ``token``: a new entry, or merged into the one
        waiting (its attributes after the waiting ones); return the entry."""
        entry = self._entries.get(integration_id)
        if entry is None:
            entry = ProfileEntry(
                integration_id, None if attributes is None else dict(attributes), [token], now
            )
            self._entries[integration_id] = entry
            return entry
        if attributes is not None:
            entry.attributes = {**(entry.attributes or {}), **attributes}
        entry.tokens.append(token)
        return entry

    def oldest(self) -> float | None:
        """Since when the oldest entry waits (``None``: nothing waits)."""
        for entry in self._entries.values():  # a dict keeps the order entries started waiting
            return entry.since
        return None

    def take(self, limit: int = MAX_PROFILES) -> list[ProfileEntry[T]]:
        """The next call's entries: up to ``limit``, oldest first; they wait no more."""
        entries = self._entries
        return [entries.pop(integration_id) for integration_id in list(entries)[:limit]]


def apply(profiles: dict[str, dict[str, Any]], updates: Iterable[ProfileEntry[Any]]) -> None:
    """What a bulk call does to the profiles (``integration ID → attributes``), as Talon.One
    documents it: each entry creates its profile if need be and merges its attributes. The
    model the batching is tested against."""
    for entry in updates:
        profiles.setdefault(entry.integration_id, {}).update(entry.attributes or {})

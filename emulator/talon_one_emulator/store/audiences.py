"""Audiences: the store behind the audience operations of the Integration API.

An audience is a named set of customer profiles, filled by ``updateCustomerProfileAudiences``
(``POST /v2/customer_audiences``) or a profile update's ``audiencesChanges``; the profiles list
them in ``audienceMemberships``. Unknown audience IDs answer 404 (400 inside a profile update,
which declares no 404). The operations are in :mod:`talon_one_emulator.api.audiences`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from talon_one_emulator.models.promotions import NewAudience

__all__ = ["AudienceRecord", "AudienceStore"]

Body = dict[str, Any]


@dataclass(slots=True)
class AudienceRecord:
    id: int
    created: str
    name: str
    description: str | None = None
    integration: str | None = None
    integration_id: str | None = None
    created_in_3rd_party: bool | None = None
    last_update: str | None = None
    members: dict[str, None] = field(default_factory=dict)
    """Profile integration IDs, in the order they joined."""


class AudienceStore:
    """Every audience of the Application, by ID."""

    def __init__(self) -> None:
        self.audiences: dict[int, AudienceRecord] = {}
        self._next_id = 1

    def __len__(self) -> int:
        return len(self.audiences)

    def add(self, record_of: NewAudience, stamp: str) -> AudienceRecord:
        record = AudienceRecord(
            id=self._next_id,
            created=stamp,
            name=record_of.name,
            description=record_of.description,
            integration=record_of.integration,
            integration_id=record_of.integration_id,
            created_in_3rd_party=record_of.created_in3rd_party,
        )
        self._next_id += 1
        self.audiences[record.id] = record
        return record

    def memberships(self, profile_id: str) -> list[Body]:
        """``audienceMemberships`` of a profile: ``[{id, name}]``."""
        if not self.audiences:
            return []
        return [
            {"id": audience.id, "name": audience.name}
            for audience in self.audiences.values()
            if profile_id in audience.members
        ]

    def member_of(self, profile_id: str) -> list[int]:
        """The IDs of the audiences the profile belongs to."""
        return [a.id for a in self.audiences.values() if profile_id in a.members]

    def forget_profile(self, profile_id: str) -> None:
        """A forgotten profile leaves every audience. Audiences are made by API calls, not by
        sessions or profiles, so there are few, and a scan costs less than an index kept on
        every membership change."""
        for audience in self.audiences.values():
            audience.members.pop(profile_id, None)

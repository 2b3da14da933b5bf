"""Audiences: the audience operations of the Integration API.

An audience is a named set of customer profiles, filled by ``updateCustomerProfileAudiences``
(``POST /v2/customer_audiences``) or a profile update's ``audiencesChanges``; the profiles list
them in ``audienceMemberships``. Unknown audience IDs answer 404 (400 inside a profile update,
which declares no 404). The audiences are kept in :mod:`talon_one_emulator.store.audiences`.
"""

from __future__ import annotations

from typing import Any

from talon_one_emulator.api.validation import check_attributes, pointer, validate_body
from talon_one_emulator.errors import (
    AlreadyExistsError,
    ApiErrorDetail,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.models.promotions import (
    AudiencesChangesField,
    CustomerProfileAudienceRequest,
    NewAudience,
    ProfileAudiencesChanges,
    UpdateAudience,
)
from talon_one_emulator.store.audiences import AudienceRecord
from talon_one_emulator.store.state import EmulatorState

__all__ = ["AudienceService", "audience_json"]

Body = dict[str, Any]


def audience_json(state: EmulatorState, record: AudienceRecord) -> Body:
    """Audience."""
    body: Body = {
        "accountId": state.account_id,
        "id": record.id,
        "created": record.created,
        "name": record.name,
        "sandbox": False,
    }
    optional = {
        "description": record.description,
        "integration": record.integration,
        "integrationId": record.integration_id,
        "createdIn3rdParty": record.created_in_3rd_party,
        "lastUpdate": record.last_update,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    return body


class AudienceService:
    """The audience operations over one :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def _audience(self, audience_id: str | int) -> AudienceRecord:
        try:
            record = self.state.audiences.audiences.get(int(audience_id))
        except ValueError:
            record = None
        if record is None:
            raise NotFoundError(f"Audience {audience_id} not found")
        return record

    def _stamp(self) -> str:
        return self.state.now_stamp()

    def create_audience(self, body: Any) -> Body:
        """createAudienceV2 (201 Audience).

        Raises:
            InvalidDataError: the body is invalid.
            AlreadyExistsError: an audience of the same integration has this ``integrationId``.
        """
        request = validate_body(NewAudience, body)
        store = self.state.audiences
        if request.integration_id is not None:
            for audience in store.audiences.values():
                if (audience.integration, audience.integration_id) == (
                    request.integration,
                    request.integration_id,
                ):
                    raise AlreadyExistsError(
                        f'An audience with integrationId "{request.integration_id}" already '
                        "exists for this integration"
                    )
        return audience_json(self.state, store.add(request, self._stamp()))

    def update_audience(self, audience_id: str, body: Any) -> Body:
        """updateAudienceV2: rename (200 Audience).

        Raises:
            NotFoundError: no such audience.
            InvalidDataError: the body is invalid.
        """
        record = self._audience(audience_id)
        request = validate_body(UpdateAudience, body)
        record.name = request.name
        return audience_json(self.state, record)

    def delete_audience(self, audience_id: str) -> None:
        """deleteAudienceV2 (204): the audience and its memberships are gone.

        Raises:
            NotFoundError: no such audience.
        """
        record = self._audience(audience_id)
        del self.state.audiences.audiences[record.id]

    def delete_memberships(self, audience_id: str) -> None:
        """deleteAudienceMembershipsV2 (204): the audience is emptied.

        Raises:
            NotFoundError: no such audience.
        """
        record = self._audience(audience_id)
        record.members.clear()
        record.last_update = self._stamp()

    def update_customer_audiences(self, body: Any) -> None:
        """updateCustomerProfileAudiences (204): add profiles to audiences, remove them.

        Unknown profiles are created. Nothing changes unless every action is valid.

        Raises:
            InvalidDataError: the body is invalid.
            NotFoundError: an action names an unknown audience.
        """
        request = validate_body(CustomerProfileAudienceRequest, body)
        actions = request.data or []
        records = [self._audience(action.audience_id) for action in actions]
        stamp = self._stamp()
        for action, record in zip(actions, records, strict=True):
            if action.action == "add":
                self.state.ensure_profile(action.profile_integration_id, stamp)
                record.members[action.profile_integration_id] = None
            else:
                record.members.pop(action.profile_integration_id, None)
            record.last_update = stamp

    def update_members_attributes(self, audience_id: str, body: Any) -> None:
        """updateAudienceCustomersAttributes (204): set attributes on every member profile.

        Raises:
            NotFoundError: no such audience.
            InvalidDataError: the body is not an object or names undeclared profile attributes.
        """
        record = self._audience(audience_id)
        if not isinstance(body, dict):
            detail = ApiErrorDetail("Invalid type", "the body must be an object", pointer="")
            raise InvalidDataError((detail,))
        errors: list[ApiErrorDetail] = []
        declared = self.state.campaigns.attributes.customer_profile
        check_attributes(body, declared, "CustomerProfile", (), errors)
        if errors:
            raise InvalidDataError(tuple(errors))
        for profile_id in record.members:
            profile = self.state.profiles.get(profile_id)
            if profile is not None:
                profile.attributes.update(body)

    def parse_changes(self, changes: Any) -> ProfileAudiencesChanges | None:
        """Validate a profile update's ``audiencesChanges`` (``None`` if absent).

        Raises:
            InvalidDataError: the shape is wrong or an audience is unknown.
        """
        if changes is None:
            return None
        parsed = validate_body(AudiencesChangesField, {"audiencesChanges": changes}).changes
        errors = [
            ApiErrorDetail(
                "Invalid",
                f"audience {audience_id} does not exist",
                pointer=pointer("audiencesChanges", key, index),
            )
            for key, ids in (("adds", parsed.adds), ("deletes", parsed.deletes))
            for index, audience_id in enumerate(ids)
            if audience_id not in self.state.audiences.audiences
        ]
        if errors:
            raise InvalidDataError(tuple(errors))
        return parsed

    def apply_changes(self, profile_id: str, changes: ProfileAudiencesChanges | None) -> None:
        """Join and leave audiences as a profile update's ``audiencesChanges`` asks."""
        if changes is None:
            return
        stamp = self._stamp()
        audiences = self.state.audiences.audiences
        for audience_id in changes.adds:
            audiences[audience_id].members[profile_id] = None
            audiences[audience_id].last_update = stamp
        for audience_id in changes.deletes:
            audiences[audience_id].members.pop(profile_id, None)
            audiences[audience_id].last_update = stamp

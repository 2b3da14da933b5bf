"""The advanced event operations of the Integration API (trackEventV3, getEventV3), without HTTP.

An advanced event is a custom event with an ``integrationId`` of its own: only one event may
have it, so tracking it again is a 409, which is what makes these events idempotent. It may name
a closed session (``connectedSessionId``). The campaigns run as for trackEventV2 (the campaign
file has no condition that reads the connected session, so the session is checked and recorded,
not evaluated). A dry request evaluates and stores nothing: no event, profile or points.
"""

from __future__ import annotations

from typing import Any

from talon_one_emulator.api.outcomes import add_created
from talon_one_emulator.api.profiles import ProfileOperations
from talon_one_emulator.api.validation import advanced_event_request, pointer
from talon_one_emulator.errors import (
    AlreadyExistsError,
    ApiErrorDetail,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.render.responses import advanced_event_json, advanced_event_state
from talon_one_emulator.store.events import AdvancedEventRecord
from talon_one_emulator.times import format_time

__all__ = ["AdvancedEventOperations"]

Body = dict[str, Any]


class AdvancedEventOperations(ProfileOperations):
    """Track and read advanced events
    (part of :class:`~talon_one_emulator.api.operations.IntegrationService`)."""

    def track_advanced_event(
        self, body: Any, *, silent: bool = True, dry: bool = False
    ) -> Body | None:
        """trackEventV3: evaluate an advanced event and store it under its ``integrationId``.

        Returns ``None`` when silent (the HTTP layer sends 204), else
        IntegrationEventV3Response.

        Raises:
            InvalidDataError: the body is invalid, its event type unknown, or its connected
                session unknown or not closed.
            AlreadyExistsError: an advanced event with this ``integrationId`` exists (also for
                a dry request: it previews the call, which would fail).
        """
        state = self.state
        request = advanced_event_request(body, state.campaigns)
        if request.integration_id in state.events:
            raise AlreadyExistsError(
                f'An advanced event with integrationId "{request.integration_id}" already exists'
            )
        connected = request.connected_session_id
        if connected is not None:
            self._check_connected_session(connected)
        stamp = format_time(state.clock())
        profile_id = request.profile_id
        profile, event_id = self._event_profile(profile_id, stamp, dry=dry)
        attributes = request.attributes or {}
        cards = request.loyalty_cards or ()
        outcome = self._evaluate_event(
            profile,
            request.type,
            event_id,
            dry=dry,
            evaluable=request.evaluable_campaign_ids,
            event_attributes=attributes,
            store_integration_id=request.store_integration_id,
            cards=cards,
        )
        record = AdvancedEventRecord(
            id=event_id,
            integration_id=request.integration_id,
            created=stamp,
            profile_id=profile_id,
            type=request.type,
            attributes=attributes,
            effects=outcome.effects,
            store_integration_id=request.store_integration_id,
            connected_session_id=connected,
        )
        if not dry:
            state.events.add(record)
        if silent:
            return None
        content = request.response_content
        response = advanced_event_state(state, profile, outcome, content, record, cards)
        return add_created(state, response, outcome, content, stamp)

    def get_advanced_event(self, integration_id: str) -> Body:
        """getEventV3: the stored EventV3.

        Raises:
            NotFoundError: no advanced event has this integration ID.
        """
        record = self.state.events.get(integration_id)
        if record is None:
            raise NotFoundError(f'Advanced event "{integration_id}" not found')
        return advanced_event_json(self.state, record)

    def _check_connected_session(self, session_id: str) -> None:
        """The connected session must exist and be ``closed`` (the specification: "Otherwise,
        the API call will fail"; it declares no 404 here, so both are a 400)."""
        session = self.state.sessions.get(session_id)
        if session is None:
            details = f'The customer session "{session_id}" does not exist.'
        elif session.state != "closed":
            details = (
                f'The customer session "{session_id}" is {session.state}; only a closed '
                "session can be connected to an advanced event."
            )
        else:
            return
        detail = ApiErrorDetail("Invalid", details, pointer=pointer("connectedSessionId"))
        raise InvalidDataError((detail,))

"""The customer profile and custom event operations of the Integration API, without HTTP.

``updateCustomerProfileV2`` merges attributes and runs the rule engine only when asked
(``runRuleEngine``); ``updateCustomerProfilesV2`` merges the attributes of many profiles and never
runs it; ``trackEventV2`` always does. A dry request evaluates a copy and stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.outcomes import add_created, keep_updates, record_points
from talon_one_emulator.api.validation import (
    bulk_profile_request,
    event_request,
    pointer,
    profile_request,
)
from talon_one_emulator.errors import ApiErrorDetail, InvalidDataError
from talon_one_emulator.render.responses import empty_state, profile_json, profile_state
from talon_one_emulator.rules.engine import Facts, Outcome
from talon_one_emulator.store.state import ProfileRecord
from talon_one_emulator.times import format_time

if TYPE_CHECKING:
    from talon_one_emulator.api.audiences import AudienceService
    from talon_one_emulator.store.state import EmulatorState

__all__ = ["ProfileOperations"]

Body = dict[str, Any]

_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


class ProfileOperations:
    """Update customer profiles and track custom events
    (part of :class:`~talon_one_emulator.api.operations.IntegrationService`)."""

    state: EmulatorState
    audiences: AudienceService

    def update_customer_profile(
        self,
        integration_id: str,
        body: Any,
        *,
        run_rule_engine: bool = False,
        dry: bool = False,
    ) -> Body:
        """updateCustomerProfileV2: merge attributes; evaluate only with ``run_rule_engine``.

        Raises:
            InvalidDataError: the body is invalid, or uses ``responseContent`` without the engine.
        """
        state = self.state
        request = profile_request(body, state.campaigns)
        if request.response_content and not run_rule_engine:
            detail = ApiErrorDetail(
                "Invalid",
                "responseContent can only be used together with runRuleEngine=true",
                pointer=pointer("responseContent"),
            )
            raise InvalidDataError((detail,))
        if dry and not run_rule_engine:
            details = "dry can only be used together with runRuleEngine=true"
            raise InvalidDataError((ApiErrorDetail("Invalid", details, parameter="dry"),))
        audience_changes = self.audiences.parse_changes(request.audiences_changes)
        stamp = format_time(state.clock())
        existing = state.profiles.get(integration_id)
        changes = request.attributes or {}
        if not run_rule_engine:
            profile = state.ensure_profile(integration_id, stamp)
            profile.attributes.update(changes)
            self.audiences.apply_changes(integration_id, audience_changes)
            return empty_state()
        event_type = "talon_profile_created" if existing is None else "talon_profile_updated"
        if dry:
            base = existing or ProfileRecord(0, integration_id, stamp, stamp)
            profile = replace(
                base, attributes={**base.attributes, **changes}, points=dict(base.points)
            )
            event_id = 0
        else:
            profile = state.ensure_profile(integration_id, stamp)
            profile.attributes.update(changes)
            profile.last_activity = stamp
            self.audiences.apply_changes(integration_id, audience_changes)
            event_id = state.next_id("event")
        outcome = self._evaluate_event(
            profile, event_type, event_id, dry=dry, evaluable=request.evaluable_campaign_ids
        )
        response = profile_state(
            state, profile, outcome, request.response_content, event_type, event_id, stamp, {}
        )
        return add_created(state, response, outcome, request.response_content, stamp)

    def update_customer_profiles(self, body: Any, *, silent: bool = True) -> Body | None:
        """updateCustomerProfilesV2: merge the attributes of many profiles; no rule engine.

        Returns ``None`` when silent (the HTTP layer sends 204), else
        MultipleCustomerProfileIntegrationResponseV2.

        Raises:
            InvalidDataError: the body is invalid.
        """
        state = self.state
        request = bulk_profile_request(body, state.campaigns)
        stamp = format_time(state.clock())
        profiles = []
        for item in request.customer_profiles or ():
            profile = state.ensure_profile(item.integration_id, stamp)
            profile.attributes.update(item.attributes or {})
            profiles.append(profile)
        if silent:
            return None
        return {
            "integrationStates": [
                {"customerProfile": profile_json(state, profile)} for profile in profiles
            ]
        }

    def track_event(self, body: Any, *, silent: bool = True, dry: bool = False) -> Body | None:
        """trackEventV2: evaluate a custom event; ``None`` when silent (the HTTP layer sends 204).

        Raises:
            InvalidDataError: the body is invalid, has no ``profileId`` or an unknown type.
        """
        state = self.state
        request = event_request(body, state.campaigns)
        stamp = format_time(state.clock())
        profile, event_id = self._event_profile(request.profile_id or "", stamp, dry=dry)
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
        if silent:
            return None
        response = profile_state(
            state,
            profile,
            outcome,
            request.response_content,
            request.type,
            event_id,
            stamp,
            attributes,
            cards,
        )
        return add_created(state, response, outcome, request.response_content, stamp)

    def _event_profile(
        self, profile_id: str, stamp: str, *, dry: bool
    ) -> tuple[ProfileRecord, int]:
        """The profile an event is for (created at ``stamp`` unless ``dry``; a dry run on an
        unknown one evaluates a blank profile) and the event's id (0 when dry)."""
        state = self.state
        if dry:
            existing = state.profiles.get(profile_id)
            return existing or ProfileRecord(0, profile_id, stamp, stamp), 0
        profile = state.ensure_profile(profile_id, stamp)
        profile.last_activity = stamp
        return profile, state.next_id("event")

    def _evaluate_event(
        self,
        profile: ProfileRecord,
        event_type: str,
        event_id: int,
        *,
        dry: bool,
        evaluable: list[int] | None,
        event_attributes: Mapping[str, Any] = _NO_ATTRIBUTES,
        store_integration_id: str | None = None,
        cards: Sequence[str] = (),
    ) -> Outcome:
        """Evaluate the campaigns for a profile update or a custom event; unless ``dry``, keep
        what the evaluation changed and persist its points."""
        state = self.state
        profile_id = profile.integration_id
        now = state.clock()
        facts = Facts(
            event_type,
            profile_id,
            profile.attributes,
            None,
            f"event/{event_id}",
            event_attributes=event_attributes,
            store_integration_id=store_integration_id,
            now=now,
            loyalty=state.loyalty.view(profile_id, cards, now),
        )
        # evaluableCampaignIds only count for dry requests; [] means "not given".
        outcome = state.engine.evaluate(
            facts, evaluable=(evaluable if dry else None) or None, ledger=state.ledger
        )
        if not dry:
            keep_updates(state, outcome, None, profile)
            record_points(state, outcome.effects, profile_id, event_id=event_id)
        return outcome

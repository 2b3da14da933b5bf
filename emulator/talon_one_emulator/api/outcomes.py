"""What a rule evaluation leaves behind, shared by the session, profile and event operations.

A non-dry evaluation keeps its attribute updates, created coupons and referrals and awarded
giveaways (:func:`keep_updates`) and persists its loyalty effects (:func:`record_points`); every
answer lists what the evaluation created (:func:`add_created`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from talon_one_emulator.store.promotion_ledger import awarded_json, created_json

if TYPE_CHECKING:
    from talon_one_emulator.rules.engine import Outcome
    from talon_one_emulator.store.state import EmulatorState, ProfileRecord, SessionRecord

__all__ = ["add_created", "keep_updates", "record_points"]

Body = dict[str, Any]


def keep_updates(
    state: EmulatorState,
    outcome: Outcome,
    session: SessionRecord | None,
    profile: ProfileRecord | None,
) -> None:
    """Keep what a non-dry evaluation changed: attributes, created coupons and referrals,
    awarded giveaways."""
    for entity, name, value in outcome.attribute_updates:
        if entity == "Profile" and profile is not None:
            profile.attributes[name] = value
        elif entity == "Session" and session is not None:
            session.attributes[name] = value
    if outcome.created_coupons or outcome.created_referrals or outcome.awarded_giveaways:
        profiles = state.profiles

        def profile_number(integration_id: str) -> int | None:
            found = profiles.get(integration_id)
            return found.id if found is not None else None

        stamp = state.now_stamp()
        state.ledger.store(outcome, stamp, profile_number)
        if outcome.created_coupons and state.notifications is not None:
            coupons, _referrals = created_json(state.ledger, outcome, stamp)
            state.notifications.coupons_created(coupons)


def add_created(
    state: EmulatorState,
    response: Body,
    outcome: Outcome,
    content: Collection[str] | None,
    stamp: str,
) -> Body:
    """Fill ``createdCoupons``, ``createdReferrals`` and (if asked) ``awardedGiveaways``."""
    ledger = state.ledger
    if outcome.created_coupons or outcome.created_referrals:
        response["createdCoupons"], response["createdReferrals"] = created_json(
            ledger, outcome, stamp
        )
    if content and "awardedGiveaways" in content and outcome.awarded_giveaways:
        response["awardedGiveaways"] = awarded_json(ledger, outcome, stamp)
    return response


def record_points(
    state: EmulatorState,
    effects: list[Body],
    profile_id: str | None,
    *,
    session_id: str | None = None,
    event_id: int | None = None,
) -> None:
    """Persist the loyalty effects: points earned, spent and rolled back."""
    recorded = state.loyalty.record(
        effects,
        profile_id=profile_id or None,
        now=state.clock(),
        session_id=session_id,
        event_id=event_id,
    )
    if recorded and state.notifications is not None:
        state.notifications.points_changed(recorded)

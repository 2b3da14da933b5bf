"""Stored records rendered as Talon.One JSON, and the answers assembled from them.

``session_json``, ``profile_json``, ... render one entity (CustomerSessionV2, CustomerProfile,
Event, EventV3, IntegrationCampaign, ...); ``integration_state``, ``profile_state`` and
``advanced_event_state`` assemble a whole answer with the parts ``responseContent`` asks for.
Every function returns plain dicts with every field the SDK models require, integers as JSON
integers and times as RFC 3339 strings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from talon_one_emulator.campaigns.file import CampaignSpec
from talon_one_emulator.money import json_number
from talon_one_emulator.render.loyalty import loyalty_json as render_loyalty
from talon_one_emulator.rules.engine import Outcome
from talon_one_emulator.store.events import AdvancedEventRecord
from talon_one_emulator.store.promotion_ledger import coupon_json, referral_json
from talon_one_emulator.store.state import EmulatorState, ProfileRecord, ReturnRecord, SessionRecord

__all__ = [
    "advanced_event_json",
    "advanced_event_state",
    "campaigns_json",
    "coupons_json",
    "empty_state",
    "event_json",
    "integration_campaign_json",
    "integration_state",
    "loyalty_json",
    "profile_json",
    "profile_state",
    "return_json",
    "session_json",
]

Body = dict[str, Any]


def empty_state() -> dict[str, Any]:
    """The three keys every IntegrationStateV2-like answer carries."""
    return {"effects": [], "createdCoupons": [], "createdReferrals": []}


def session_json(state: EmulatorState, session: SessionRecord) -> dict[str, Any]:
    """CustomerSessionV2."""
    items = [
        {
            **item.data,
            "position": position,
            "returnedQuantity": item.returned,
            "remainingQuantity": item.quantity - item.returned,
        }
        for position, item in enumerate(session.items)
    ]
    cart_item_total = session.cart_item_total
    additional_cost_total = session.additional_cost_total
    body: dict[str, Any] = {
        "id": session.id,
        "created": session.created,
        "integrationId": session.integration_id,
        "applicationId": state.application_id,
        "profileId": session.profile_id or "",
        "couponCodes": list(session.coupon_codes),
        "loyaltyCards": list(session.loyalty_cards),
        "state": session.state,
        "cartItems": items,
        "additionalCosts": dict(session.additional_costs),
        "identifiers": list(session.identifiers),
        "attributes": dict(session.attributes),
        "firstSession": session.first_session,
        "updateCount": session.update_count,
        "total": json_number(cart_item_total + additional_cost_total),
        "cartItemTotal": json_number(cart_item_total),
        "additionalCostTotal": json_number(additional_cost_total),
        "updated": session.updated,
    }
    if session.referral_code:
        body["referralCode"] = session.referral_code
    if session.store_integration_id is not None:
        body["storeIntegrationId"] = session.store_integration_id
    return body


def profile_json(state: EmulatorState, profile: ProfileRecord) -> dict[str, Any]:
    """CustomerProfile."""
    return {
        "id": profile.id,
        "created": profile.created,
        "integrationId": profile.integration_id,
        "attributes": dict(profile.attributes),
        "accountId": state.account_id,
        "closedSessions": profile.closed_sessions,
        "totalSales": json_number(round(profile.total_sales, 2)),
        "lastActivity": profile.last_activity,
        "audienceMemberships": state.audiences.memberships(profile.integration_id),
        "sandbox": False,
    }


def event_json(
    state: EmulatorState,
    *,
    event_id: int,
    created: str,
    event_type: str,
    profile_id: str | None,
    attributes: dict[str, Any],
    effects: Sequence[dict[str, Any]],
    session_id: str | None = None,
    store_integration_id: str | None = None,
) -> dict[str, Any]:
    """Event (the event an operation produced)."""
    body: dict[str, Any] = {
        "id": event_id,
        "created": created,
        "applicationId": state.application_id,
        "type": event_type,
        "attributes": attributes,
        "effects": list(effects),
    }
    if profile_id:
        body["profileId"] = profile_id
    if session_id is not None:
        body["sessionId"] = session_id
    if store_integration_id is not None:
        body["storeIntegrationId"] = store_integration_id
    return body


def advanced_event_json(state: EmulatorState, record: AdvancedEventRecord) -> dict[str, Any]:
    """EventV3 (the answer of getEventV3, ``advancedEvent`` of trackEventV3).

    ``effects`` are effect objects, as in :func:`event_json` and the SDK's Event model (the
    specification types their items as arrays).
    """
    body: dict[str, Any] = {
        "id": record.id,
        "created": record.created,
        "applicationId": state.application_id,
        "integrationId": record.integration_id,
        "profileId": record.profile_id,
        "type": record.type,
        "attributes": dict(record.attributes),
        "effects": list(record.effects),
    }
    if record.store_integration_id is not None:
        body["storeIntegrationId"] = record.store_integration_id
    if record.connected_session_id is not None:
        body["connectedSessionId"] = record.connected_session_id
    return body


def integration_campaign_json(state: EmulatorState, campaign: CampaignSpec) -> dict[str, Any]:
    """IntegrationCampaign (integrationGetAllCampaigns): a running campaign and the titles of
    its rules. The campaign file gives no schedule, linked stores or audiences, so
    ``startTime``, ``endTime``, ``linkedStoreIds`` and ``linkedAudienceIds`` are left out."""
    body: dict[str, Any] = {
        "id": campaign.id,
        "applicationId": state.application_id,
        "name": campaign.name,
        "attributes": {},
        "state": "enabled",
        "tags": list(campaign.tags),
        "features": campaign.features,
        "rules": [{"title": rule.name} for rule in campaign.rules],
    }
    if campaign.description:
        body["description"] = campaign.description
    return body


def coupons_json(
    state: EmulatorState, codes: Iterable[str], profile_id: str | None
) -> list[dict[str, Any]]:
    """IntegrationCoupon for every known code in ``codes`` (created coupons included)."""
    out = []
    for code in codes:
        record = state.ledger.coupon_record(code)
        if record is not None:
            out.append(coupon_json(record, profile_id=profile_id, integration=True))
    return out


def campaigns_json(state: EmulatorState, campaign_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Campaign for every ID (triggeredCampaigns)."""
    out = []
    for campaign_id in campaign_ids:
        campaign = state.engine.campaign(campaign_id)
        if campaign is None:
            continue
        body: dict[str, Any] = {
            "id": campaign.id,
            "created": state.started,
            "applicationId": state.application_id,
            "userId": 1,
            "name": campaign.name,
            "attributes": {},
            "state": "enabled" if campaign.enabled else "disabled",
            "activeRulesetId": campaign.ruleset_id,
            "tags": list(campaign.tags),
            "features": campaign.features,
            "limits": [],
            "type": "advanced",
            "frontendState": "running",
            "storesImported": False,
        }
        if campaign.description:
            body["description"] = campaign.description
        out.append(body)
    return out


def loyalty_json(
    state: EmulatorState,
    profile: ProfileRecord | None,
    effects: Iterable[dict[str, Any]] | None = None,
    cards: Sequence[str] = (),
) -> dict[str, Any]:
    """Loyalty: the profile's balances in every profile-based program and those of the known
    loyalty ``cards``; an open session's ``effects`` make the tentative balances."""
    store = state.loyalty
    records = [
        found
        for identifier in cards
        for program_cards in store.cards.values()
        if (found := program_cards.get(identifier)) is not None
    ]
    profile_id = profile.integration_id if profile is not None else None
    return render_loyalty(store, profile_id, state.clock(), effects, records)


def return_json(
    state: EmulatorState,
    session: SessionRecord,
    record: ReturnRecord,
    profile: ProfileRecord | None,
) -> dict[str, Any]:
    """ModelReturn."""
    body: dict[str, Any] = {
        "id": record.id,
        "created": record.created,
        "applicationId": state.application_id,
        "accountId": state.account_id,
        "returnedCartItems": [dict(item) for item in record.items],
        "eventId": record.event_id,
        "sessionId": session.id,
        "sessionIntegrationId": session.integration_id,
    }
    if profile is not None:
        body["profileId"] = profile.id
        body["profileIntegrationId"] = profile.integration_id
    return body


def integration_state(
    state: EmulatorState,
    session: SessionRecord,
    profile: ProfileRecord | None,
    effects: list[Body],
    triggered: list[int],
    content: Collection[str] | None,
    event_type: str,
    event_id: int,
    stamp: str,
    previous_returns: list[ReturnRecord] | None = None,
) -> Body:
    """IntegrationStateV2 with the parts ``responseContent`` asks for."""
    body = empty_state()
    body["effects"] = effects
    if not content:
        return body
    if "customerSession" in content:
        body["customerSession"] = session_json(state, session)
    if "customerProfile" in content and profile is not None:
        body["customerProfile"] = profile_json(state, profile)
    if "coupons" in content:
        body["coupons"] = coupons_json(state, session.coupon_codes, session.profile_id)
    if "referral" in content and session.referral_code:
        referral = state.ledger.referral_record(session.referral_code)
        if referral is not None:
            body["referral"] = referral_json(referral, inventory=True)
    if "triggeredCampaigns" in content:
        body["triggeredCampaigns"] = campaigns_json(state, triggered)
    if "loyalty" in content and (profile is not None or session.loyalty_cards):
        tentative = effects if session.state == "open" else None
        body["loyalty"] = loyalty_json(state, profile, tentative, session.loyalty_cards)
    if "event" in content:
        body["event"] = event_json(
            state,
            event_id=event_id,
            created=stamp,
            event_type=event_type,
            profile_id=session.profile_id,
            attributes={},
            effects=effects,
            session_id=session.integration_id,
            store_integration_id=session.store_integration_id,
        )
    if "awardedGiveaways" in content:
        body["awardedGiveaways"] = []
    if "ruleFailureReasons" in content:
        body["ruleFailureReasons"] = []
    if "previousReturns" in content:
        returns = session.returns if previous_returns is None else previous_returns
        body["previousReturns"] = [
            return_json(state, session, record, profile) for record in returns
        ]
    return body


def profile_state(
    state: EmulatorState,
    profile: ProfileRecord,
    outcome: Outcome,
    content: Collection[str] | None,
    event_type: str,
    event_id: int,
    stamp: str,
    attributes: dict[str, Any],
    cards: Sequence[str] = (),
) -> Body:
    """CustomerProfileIntegrationResponseV2 / TrackEventV2Response (``cards``: the event's
    loyalty cards)."""
    body = empty_state()
    body["effects"] = outcome.effects
    if not content:
        return body
    if "customerProfile" in content:
        body["customerProfile"] = profile_json(state, profile)
    if "triggeredCampaigns" in content:
        body["triggeredCampaigns"] = campaigns_json(state, outcome.triggered_campaign_ids)
    if "loyalty" in content:
        body["loyalty"] = loyalty_json(state, profile, cards=cards)
    if "event" in content:
        body["event"] = event_json(
            state,
            event_id=event_id,
            created=stamp,
            event_type=event_type,
            profile_id=profile.integration_id,
            attributes=attributes,
            effects=outcome.effects,
        )
    if "awardedGiveaways" in content:
        body["awardedGiveaways"] = []
    if "ruleFailureReasons" in content:
        body["ruleFailureReasons"] = []
    return body


def advanced_event_state(
    state: EmulatorState,
    profile: ProfileRecord,
    outcome: Outcome,
    content: Collection[str] | None,
    record: AdvancedEventRecord,
    cards: Sequence[str] = (),
) -> Body:
    """IntegrationEventV3Response: as :func:`profile_state` for an event, with the tracked
    event as ``advancedEvent`` instead of ``event``."""
    body = profile_state(
        state,
        profile,
        outcome,
        content,
        record.type,
        record.id,
        record.created,
        record.attributes,
        cards,
    )
    if content and "advancedEvent" in content:
        body["advancedEvent"] = advanced_event_json(state, record)
    return body

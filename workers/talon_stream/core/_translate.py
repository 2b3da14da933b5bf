"""Event → Talon.One call: pure functions, no I/O.

Each event type maps to exactly one Integration API operation (see ``docs/events.md``):

=====================  ==========================================================
``cart.updated``       update customer session v2, ``state: open``
``order.placed``       update customer session v2, ``state: closed``
``order.cancelled``    update customer session v2, ``state: cancelled``
``order.items_returned`` return cart items
``order.reopened``     reopen customer session
``customer.updated``   update customer profile v2 (``runRuleEngine`` on by default);
                       without rules, an entry of update multiple customer profiles when
                       bulk profiles are on (the worker batches them:
                       ``talon_stream.core._profiles``)
``customer.event``     track event v2 with ``silent=no`` so effects come back (or, set
                       to v3, track advanced event: its ``integrationId`` is the
                       ``eventId``, so a replay is a duplicate Talon.One recognises)
``customer.erased``    delete customer data (the profile's personal data)
``product.*``          sync catalog (one action; the worker batches them:
                       ``talon_stream.core._catalog``)
=====================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from talon_stream._exceptions import TranslationError
from talon_stream.core import _events as events
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.core._catalog import catalog_action
from talon_stream.core._events import CartItem, Event, SessionPayload

__all__ = ["ResponseContent", "TranslationOptions", "coalesce_session_updates", "translate"]

# Which responseContent values each operation accepts (the SDK request models list them).
#: What an answer may hold beside the session (``responseContent`` of the request).
ResponseContent = Literal[
    "customerSession",
    "customerProfile",
    "coupons",
    "triggeredCampaigns",
    "referral",
    "loyalty",
    "event",
    "awardedGiveaways",
    "ruleFailureReasons",
    "previousReturns",
]

_SESSION_CONTENT = frozenset(get_args(ResponseContent))
_RETURN_CONTENT = _SESSION_CONTENT - {"awardedGiveaways", "ruleFailureReasons"}
_PROFILE_CONTENT = frozenset(
    {
        "customerProfile",
        "triggeredCampaigns",
        "loyalty",
        "event",
        "awardedGiveaways",
        "ruleFailureReasons",
    }
)
# trackEventV3 calls the tracked event ``advancedEvent``.
_EVENT_V3_CONTENT = (_PROFILE_CONTENT - {"event"}) | {"advancedEvent"}


@dataclass(frozen=True, slots=True)
class TranslationOptions:
    """Settings that shape every call: what Talon.One should send back, dry runs, and which
    track-event operation custom events use."""

    response_content: tuple[str, ...] = ("customerSession",)
    dry: bool = False
    profile_run_rule_engine: bool = True
    custom_events: Literal["v2", "v3"] = "v2"
    #: The cart item catalog product events sync (``None``: none is configured).
    catalog_id: int | None = None
    #: A profile update that runs no rules goes in a bulk call (update multiple customer
    #: profiles) when it carries nothing that call cannot: no audience changes, no dry run.
    bulk_profiles: bool = False

    def content_for(self, allowed: frozenset[str]) -> list[str]:
        return [value for value in self.response_content if value in allowed]


def translate(event: Event, options: TranslationOptions) -> TalonCall:
    """Turn one event into the Integration API call it stands for.

    Raises:
        TranslationError: the event is valid but no call can carry it.
    """
    match event:
        case events.CartUpdated():
            return _session_update(
                event.session_id, event.profile_id, event.payload, "open", options
            )
        case events.OrderPlaced():
            return _session_update(
                event.session_id, event.profile_id, event.payload, "closed", options
            )
        case events.OrderCancelled():
            return _session_update(
                event.session_id, event.profile_id, SessionPayload(), "cancelled", options
            )
        case events.OrderItemsReturned():
            return _returns(event, options)
        case events.OrderReopened():
            return TalonCall(
                operation=Operation.REOPEN_CUSTOMER_SESSION,
                integration_id=_session_id(event.session_id),
                body=None,
                profile_id=event.profile_id or None,
                session_id=event.session_id,
            )
        case events.CustomerUpdated():
            return _profile_update(event, options)
        case events.CustomerEvent():
            if options.custom_events == "v3":
                return _track_event_v3(event, options)
            return _track_event(event, options)
        case events.CustomerErased():
            if options.dry:
                raise TranslationError(
                    "customer.erased is not sent in a dry run: Talon.One's delete customer data "
                    "has no dry mode"
                )
            profile_id = _profile_id(event.profile_id)
            return TalonCall(
                operation=Operation.DELETE_CUSTOMER_DATA,
                integration_id=profile_id,
                body=None,
                profile_id=profile_id,
            )
        case events.ProductUpserted() | events.ProductUpdated() | events.ProductDeleted():
            return _catalog_sync(event, options)
    raise TranslationError(f"no Talon.One call is defined for event type {event.type!r}")


def _session_id(session_id: str | None) -> str:
    # The envelope validators guarantee it; this keeps the type checker and a future caller honest.
    if not session_id:
        raise TranslationError("a session event needs a sessionId")
    return session_id


def _session_update(
    session_id: str | None,
    profile_id: str | None,
    payload: SessionPayload,
    state: str,
    options: TranslationOptions,
) -> TalonCall:
    session: dict[str, Any] = {"state": state}
    if profile_id is not None:
        session["profileId"] = profile_id
    if payload.cart_items is not None:
        session["cartItems"] = [_cart_item(item) for item in payload.cart_items]
    # Coupons and the referral code are sent only when the event sets them: an empty list clears
    # the stored coupons in Talon.One, an omitted key keeps them.
    if payload.coupon_codes is not None:
        session["couponCodes"] = list(payload.coupon_codes)
    if payload.referral_code is not None:
        session["referralCode"] = payload.referral_code
    if payload.loyalty_cards is not None:
        session["loyaltyCards"] = list(payload.loyalty_cards)
    if payload.additional_costs is not None:
        session["additionalCosts"] = {
            name: {"price": cost.price} for name, cost in payload.additional_costs.items()
        }
    if payload.identifiers is not None:
        session["identifiers"] = list(payload.identifiers)
    if payload.store_integration_id is not None:
        session["storeIntegrationId"] = payload.store_integration_id
    if payload.attributes is not None:
        session["attributes"] = payload.attributes
    body: dict[str, Any] = {"customerSession": session}
    content = options.content_for(_SESSION_CONTENT)
    if content:
        body["responseContent"] = content
    return TalonCall(
        operation=Operation.UPDATE_CUSTOMER_SESSION,
        integration_id=_session_id(session_id),
        body=body,
        query={"dry": "true"} if options.dry else {},
        profile_id=profile_id or None,
        session_id=session_id,
    )


def _cart_item(item: CartItem) -> dict[str, Any]:
    out: dict[str, Any] = {"sku": item.sku, "quantity": item.quantity}
    if item.name is not None:
        out["name"] = item.name
    if item.price is not None:
        out["price"] = item.price
    if item.category is not None:
        out["category"] = item.category
    if item.attributes is not None:
        out["attributes"] = item.attributes
    if item.additional_costs is not None:
        out["additionalCosts"] = {
            name: {"price": cost.price} for name, cost in item.additional_costs.items()
        }
    return out


def _returns(event: events.OrderItemsReturned, options: TranslationOptions) -> TalonCall:
    items: list[dict[str, Any]] = []
    for item in event.payload.items:
        line: dict[str, Any] = {"quantity": item.quantity}
        if item.position is not None:
            line["position"] = item.position
        if item.sku is not None:
            line["sku"] = item.sku
        items.append(line)
    body: dict[str, Any] = {"return": {"returnedCartItems": items}}
    content = options.content_for(_RETURN_CONTENT)
    if content:
        body["responseContent"] = content
    return TalonCall(
        operation=Operation.RETURN_CART_ITEMS,
        integration_id=_session_id(event.session_id),
        body=body,
        query={"dry": "true"} if options.dry else {},
        profile_id=event.profile_id or None,
        session_id=event.session_id,
    )


def _profile_update(event: events.CustomerUpdated, options: TranslationOptions) -> TalonCall:
    payload = event.payload
    run_rules = (
        options.profile_run_rule_engine
        if payload.run_rule_engine is None
        else payload.run_rule_engine
    )
    if (
        options.bulk_profiles
        and not run_rules
        and not options.dry
        and payload.audiences_changes is None
    ):
        return _bulk_profile_entry(event)
    body: dict[str, Any] = {}
    if payload.attributes is not None:
        body["attributes"] = payload.attributes
    if payload.audiences_changes is not None:
        body["audiencesChanges"] = {
            "adds": list(payload.audiences_changes.adds),
            "deletes": list(payload.audiences_changes.deletes),
        }
    query = {"runRuleEngine": "true" if run_rules else "false"}
    # responseContent and dry are only allowed when the rule engine runs.
    if run_rules:
        content = options.content_for(_PROFILE_CONTENT)
        if content:
            body["responseContent"] = content
        if options.dry:
            query["dry"] = "true"
    return _profile_call(Operation.UPDATE_CUSTOMER_PROFILE, event, body, query)


def _bulk_profile_entry(event: events.CustomerUpdated) -> TalonCall:
    """The profile's entry of an update multiple customer profiles call, alone: the worker
    gathers the entries of many records into one call. ``silent=yes``: Talon.One answers 204
    (this operation never runs rules, so there are no effects to ask for)."""
    profile_id = _profile_id(event.profile_id)
    entry: dict[str, Any] = {"integrationId": profile_id}
    if event.payload.attributes is not None:
        entry["attributes"] = event.payload.attributes
    return TalonCall(
        operation=Operation.UPDATE_CUSTOMER_PROFILES,
        integration_id=profile_id,
        body={"customerProfiles": [entry]},
        query={"silent": "yes"},
        profile_id=profile_id,
        session_id=event.session_id,
    )


def _event_body(event: events.CustomerEvent, **identity: str) -> dict[str, Any]:
    """The body track event v2 and v3 share: type, profile, attributes, store, cards."""
    payload = event.payload
    body: dict[str, Any] = {
        "type": payload.event_type,
        "profileId": _profile_id(event.profile_id),
        **identity,
    }
    if payload.attributes is not None:
        body["attributes"] = payload.attributes
    if payload.store_integration_id is not None:
        body["storeIntegrationId"] = payload.store_integration_id
    if payload.loyalty_cards is not None:
        body["loyaltyCards"] = list(payload.loyalty_cards)
    return body


def _track_event(event: events.CustomerEvent, options: TranslationOptions) -> TalonCall:
    body = _event_body(event)
    content = options.content_for(_PROFILE_CONTENT)
    if content:
        body["responseContent"] = content
    # silent defaults to "yes" (204, no body): ask for the effects explicitly.
    query = {"silent": "no"}
    if options.dry:
        query["dry"] = "true"
    return _profile_call(Operation.TRACK_EVENT, event, body, query)


def _catalog_sync(
    event: events.ProductUpserted | events.ProductUpdated | events.ProductDeleted,
    options: TranslationOptions,
) -> TalonCall:
    if options.catalog_id is None:
        raise TranslationError(
            f"a {event.type} event needs a catalog to sync: set TALON_STREAM_CATALOG_ID"
        )
    if options.dry:
        raise TranslationError(
            f"{event.type} is not sent in a dry run: Talon.One's catalog sync has no dry mode"
        )
    action = catalog_action(event)
    return TalonCall(
        operation=Operation.SYNC_CATALOG,
        integration_id=str(options.catalog_id),
        body={"actions": [action.as_json()]},
    )


def _track_event_v3(event: events.CustomerEvent, options: TranslationOptions) -> TalonCall:
    body = _event_body(event, integrationId=event.event_id)
    content = [
        "advancedEvent" if value == "event" else value
        for value in options.response_content
        if value in _EVENT_V3_CONTENT or value == "event"
    ]
    if content:
        body["responseContent"] = content
    query = {"silent": "no"}
    if options.dry:
        query["dry"] = "true"
    return _profile_call(Operation.TRACK_EVENT_V3, event, body, query)


def _profile_call(
    operation: Operation, event: Event, body: dict[str, Any], query: dict[str, str]
) -> TalonCall:
    """A call on the event's customer profile, whose integration ID is the profile's."""
    profile_id = _profile_id(event.profile_id)
    return TalonCall(
        operation=operation,
        integration_id=profile_id,
        body=body,
        query=query,
        profile_id=profile_id,
        session_id=event.session_id,
    )


def _profile_id(profile_id: str | None) -> str:
    if not profile_id:
        raise TranslationError("a customer event needs a profileId")
    return profile_id


def coalesce_session_updates(calls: Sequence[TalonCall]) -> TalonCall:
    """One session update standing for ``calls`` — updates of one session, oldest first — under
    Talon.One's cumulative semantics: each field of the session as the latest call that sets it
    (``cartItems``, ``couponCodes``, ``referralCode`` …: an omitted field keeps what Talon.One
    holds), ``attributes`` merged key by key, the newer value winning; the rest of the request
    as the latest call's.

    Raises:
        ValueError: no calls, or a call that is not an update of the same session.
    """
    if not calls:
        raise ValueError("nothing to coalesce")
    latest = calls[-1]
    merged: dict[str, Any] = {}
    for call in calls:
        if (
            call.operation is not Operation.UPDATE_CUSTOMER_SESSION
            or call.integration_id != latest.integration_id
            or call.body is None
        ):
            raise ValueError(
                f"{call.describe()} is not an update of session {latest.integration_id}"
            )
        for name, value in call.body["customerSession"].items():
            if name == "attributes":
                merged["attributes"] = {**merged.get("attributes", {}), **value}
            else:
                merged[name] = value
    assert latest.body is not None
    return replace(latest, body={**latest.body, "customerSession": merged})

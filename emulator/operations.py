"""The emulated Integration API operations, without HTTP.

:class:`IntegrationService` takes parsed JSON bodies and typed query flags, changes the
:class:`~emulator.state.EmulatorState` and returns the response body Talon.One would send, or
raises an :class:`~emulator.errors.ApiError`.

Session state machine (Talon.One's documented transitions)::

    (new) ──PUT──▶ open ──PUT──▶ closed ──PUT──▶ cancelled (rollback effects)
      └────PUT──────────────────▶ │  ├──returns──▶ partially_returned ──PUT──▶ cancelled
                     open ──PUT──▶ cancelled    └──reopen──▶ open (rollback effects)

Anything else, and every change to a cancelled session, is a 400 ErrorResponse.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from emulator.audiences import AudienceService
from emulator.catalogs import CatalogService, CatalogStore
from emulator.errors import ApiErrorDetail, BadRequestError, InvalidDataError, NotFoundError
from emulator.ledger import awarded_json, created_json
from emulator.models import IntegrationRequest, NewCustomerSessionV2
from emulator.money import json_number
from emulator.promotions import PromotionService
from emulator.responses import (
    empty_state,
    integration_state,
    profile_json,
    profile_state,
    return_json,
    session_json,
)
from emulator.returns import resolve_returns
from emulator.rollback import plan_rollback
from emulator.rules import Facts, Outcome, SessionFacts
from emulator.state import (
    CartItemRecord,
    EmulatorState,
    ProfileRecord,
    ReturnRecord,
    SessionRecord,
)
from emulator.times import format_time
from emulator.validation import (
    bulk_profile_request,
    event_request,
    pointer,
    profile_request,
    return_request,
    session_request,
)

__all__ = ["IntegrationService"]

Body = dict[str, Any]

_SESSION_EVENTS = {
    "open": "talon_session_updated",
    "closed": "talon_session_closed",
    "cancelled": "talon_session_cancelled",
}


def _transition_error(session_id: str, current: str | None, target: str) -> BadRequestError:
    if current is None:
        hint = "a new session can only be created open or closed"
    elif current == "cancelled":
        hint = "a cancelled session cannot be changed"
    elif current == "closed" and target == "open":
        hint = "a closed session can only be reopened with the reopen endpoint"
    elif target == "partially_returned":
        hint = "use the returns endpoint to return cart items"
    elif current in ("closed", "partially_returned"):
        hint = f"a {current} session can only be cancelled"
    else:
        hint = "this transition is not allowed"
    source = "new" if current is None else current
    return BadRequestError(
        f'Cannot change the state of customer session "{session_id}" from {source} to {target}: '
        f"{hint}."
    )


# CartItem fields a client may set; read-only ones (position, returnedQuantity, ...) are computed.
_ITEM_KEYS = frozenset(
    {
        "name",
        "sku",
        "quantity",
        "price",
        "category",
        "product",
        "weight",
        "height",
        "width",
        "length",
        "attributes",
        "additionalCosts",
        "selectedPriceType",
    }
)


def _items(
    session: NewCustomerSessionV2, raw: Any, catalogs: CatalogStore | None = None
) -> list[CartItemRecord]:
    """Stored cart items; ``raw`` is the validated JSON list, echoed back without re-dumping.

    An item without ``price`` takes its SKU's catalog price (and ``catalogItemID``).
    """
    records = []
    raw_items = raw if isinstance(raw, list) else [None] * len(session.cart_items or ())
    for item, sent in zip(session.cart_items or (), raw_items, strict=True):
        if isinstance(sent, dict):
            if _ITEM_KEYS.issuperset(sent) and None not in sent.values():
                data = sent  # freshly parsed for this request, with nothing to drop: keep it
            else:
                data = {
                    key: value
                    for key, value in sent.items()
                    if key in _ITEM_KEYS and value is not None
                }
        else:
            data = item.model_dump(by_alias=True, exclude_none=True)
        price = item.price if item.price is not None else 0.0
        if item.price is None and catalogs is not None:
            found = catalogs.price(item.sku)
            if found is not None:
                price, data["catalogItemID"] = found
                data["price"] = json_number(price)
        records.append(CartItemRecord(data, item.sku, price, item.quantity, item.category))
    return records


# The NewCustomerSessionV2 fields stored on the session (state and evaluableCampaignIds are not).
_SESSION_FIELDS = frozenset(
    {
        "profile_id",
        "store_integration_id",
        "coupon_codes",
        "referral_code",
        "loyalty_cards",
        "identifiers",
        "cart_items",
        "additional_costs",
        "attributes",
    }
)


def _costs(session: NewCustomerSessionV2) -> dict[str, dict[str, Any]]:
    costs = session.additional_costs or {}
    return {name: {"price": cost.price} for name, cost in costs.items()}


class IntegrationService:
    """The Integration API operations over one :class:`EmulatorState`.

    Sessions, profiles and events are methods here; referrals and coupon reservations are in
    ``promotions``, audiences in ``audiences``, catalogs in ``catalogs``.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.promotions = PromotionService(state)
        self.audiences = AudienceService(state)
        self.catalogs = CatalogService(state)

    # --- customer sessions ---------------------------------------------------------------------

    def update_customer_session(
        self, session_id: str, body: Any, *, dry: bool = False, now: datetime | None = None
    ) -> Body:
        """updateCustomerSessionV2: create or update a session and evaluate the campaigns.

        Raises:
            InvalidDataError: the body or a query flag is invalid.
            BadRequestError: the state transition is not allowed.
        """
        state = self.state
        request = session_request(body, state.campaigns)
        self._check_now(dry, now)
        incoming = request.customer_session
        raw_items = body["customerSession"].get("cartItems")  # validated: a dict
        existing = state.sessions.get(session_id)
        # `now` (dry only, checked above) is the time the evaluation pretends it is.
        moment = now if now is not None else state.clock()
        stamp = format_time(moment)
        if dry:
            return self._dry_update(session_id, request, raw_items, existing, stamp, moment)
        target = incoming.state
        if existing is None:
            if target not in ("open", "closed"):
                raise _transition_error(session_id, None, target)
            session = self._create_session(session_id, incoming, raw_items, stamp)
            event_type = "talon_session_created"
            profile = state.profiles.get(session.profile_id or "")
        else:
            session = existing
            current = session.state
            if current in ("closed", "partially_returned") and target == "cancelled":
                return self._revoke(session, request, stamp)
            if current != "open" or target == "partially_returned":
                raise _transition_error(session_id, current, target)
            self._merge(session, incoming, raw_items, stamp)
            event_type = _SESSION_EVENTS[target]
            profile = state.profiles.get(session.profile_id or "")
        session.state = target
        session.updated = stamp
        if profile is not None:
            profile.last_activity = stamp
        if target == "cancelled":
            session.effects = []
            outcome = Outcome()
        else:
            outcome = self._evaluate(session, profile, event_type, now=moment)
            self._apply_updates(outcome, session, profile)
            session.effects = outcome.effects
            if target == "closed":
                self._close(session, profile)
        response = integration_state(
            self.state,
            session,
            profile,
            outcome.effects,
            outcome.triggered_campaign_ids,
            request.response_content,
            event_type,
            state.next_id("event"),
            stamp,
        )
        return self._with_created(response, outcome, request.response_content, stamp)

    def get_customer_session(self, session_id: str) -> Body:
        """getCustomerSession: the stored session and its net effects.

        Raises:
            NotFoundError: no session has this integration ID.
        """
        session = self.state.sessions.get(session_id)
        if session is None:
            raise NotFoundError(f'Customer session "{session_id}" not found')
        return {
            "customerSession": session_json(self.state, session),
            "effects": list(session.effects),
        }

    def return_cart_items(self, session_id: str, body: Any, *, dry: bool = False) -> Body:
        """returnCartItems: return units of a closed session; rolls back their share of effects.

        Raises:
            InvalidDataError: the body is invalid or names items that cannot be returned.
            BadRequestError: the session is unknown or neither closed nor partially returned.
        """
        state = self.state
        request = return_request(body)
        session = self._stored(session_id, "return items of")
        if session.state not in ("closed", "partially_returned"):
            raise BadRequestError(
                f'Cannot return items of customer session "{session_id}": it is {session.state}; '
                "only closed or partially returned sessions accept returns."
            )
        wanted = resolve_returns(session, request.return_.returned_cart_items)
        returned_after = {
            position: item.returned + wanted.get(position, 0)
            for position, item in enumerate(session.items)
        }
        cart_total = session.cart_item_total
        value_after = sum(item.price * returned_after[p] for p, item in enumerate(session.items))
        item_share = {
            position: returned_after[position] / item.quantity
            for position, item in enumerate(session.items)
        }
        effects, amounts = plan_rollback(
            session.closing_effects,
            session.rolled_back,
            full=False,
            session_share=value_after / cart_total if cart_total > 0 else 1.0,
            item_share=item_share,
            item_units=returned_after,
            recipient=session.profile_id or "",
        )
        stamp = format_time(state.clock())
        items = [
            {"position": position, "quantity": quantity, "sku": session.items[position].sku}
            for position, quantity in wanted.items()
        ]
        profile = state.profiles.get(session.profile_id or "")
        previous = list(session.returns)
        if dry:
            record = ReturnRecord(0, stamp, 0, items)
            event_id = 0
        else:
            event_id = state.next_id("event")
            record = ReturnRecord(state.next_id("return"), stamp, event_id, items)
            for position, quantity in wanted.items():
                session.items[position].returned += quantity
            session.rolled_back = amounts
            session.state = "partially_returned"
            session.updated = stamp
            session.returns.append(record)
            if profile is not None:
                returned_value = sum(session.items[p].price * q for p, q in wanted.items())
                profile.total_sales -= returned_value
            self._record_points(effects, session.profile_id, session_id=session.integration_id)
            state.ledger.give_back(effects, session.profile_id)
        response = integration_state(
            self.state,
            session,
            profile,
            effects,
            [],
            request.response_content,
            "talon_session_partially_returned",
            event_id,
            stamp,
            previous_returns=previous,
        )
        response["return"] = return_json(state, session, record, profile)
        return response

    def reopen_customer_session(self, session_id: str) -> Body:
        """reopenCustomerSession: closed → open; answers the rolled-back effects.

        Raises:
            BadRequestError: the session is unknown or not closed.
        """
        session = self._stored(session_id, "reopen")
        if session.state != "closed":
            raise BadRequestError(
                f'Cannot reopen customer session "{session_id}": it is {session.state}; '
                "only closed sessions can be reopened."
            )
        stamp = format_time(self.state.clock())
        effects = self._undo_close(session)
        session.state = "open"
        session.effects = []
        session.updated = stamp
        self.state.next_id("event")  # talon_session_reopened
        return {"effects": effects}

    # --- customer profiles and events ----------------------------------------------------------

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
        now = state.clock()
        facts = Facts(
            event_type,
            integration_id,
            profile.attributes,
            None,
            f"event/{event_id}",
            now=now,
            loyalty=state.loyalty.view(integration_id, (), now),
        )
        evaluable = request.evaluable_campaign_ids if dry else None
        outcome = state.engine.evaluate(facts, evaluable=evaluable or None, ledger=state.ledger)
        if not dry:
            self._apply_updates(outcome, None, profile)
            self._record_points(outcome.effects, integration_id, event_id=event_id)
        response = profile_state(
            self.state, profile, outcome, request.response_content, event_type, event_id, stamp, {}
        )
        return self._with_created(response, outcome, request.response_content, stamp)

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
        profile_id = request.profile_id or ""
        stamp = format_time(state.clock())
        if dry:
            existing = state.profiles.get(profile_id)
            profile = existing or ProfileRecord(0, profile_id, stamp, stamp)
            event_id = 0
        else:
            profile = state.ensure_profile(profile_id, stamp)
            profile.last_activity = stamp
            event_id = state.next_id("event")
        now = state.clock()
        facts = Facts(
            request.type,
            profile_id,
            profile.attributes,
            None,
            f"event/{event_id}",
            event_attributes=request.attributes or {},
            store_integration_id=request.store_integration_id,
            now=now,
            loyalty=state.loyalty.view(profile_id, request.loyalty_cards or (), now),
        )
        evaluable = request.evaluable_campaign_ids if dry else None
        outcome = state.engine.evaluate(facts, evaluable=evaluable or None, ledger=state.ledger)
        if not dry:
            self._apply_updates(outcome, None, profile)
            self._record_points(outcome.effects, profile_id, event_id=event_id)
        if silent:
            return None
        response = profile_state(
            self.state,
            profile,
            outcome,
            request.response_content,
            request.type,
            event_id,
            stamp,
            request.attributes or {},
            request.loyalty_cards or (),
        )
        return self._with_created(response, outcome, request.response_content, stamp)

    # --- session helpers -----------------------------------------------------------------------

    def _check_now(self, dry: bool, now: datetime | None) -> None:
        if now is None:
            return
        if not dry:
            details = "now can only be used together with dry=true"
        elif now <= self.state.clock():
            details = "now must be a time in the future"
        else:
            return
        raise InvalidDataError((ApiErrorDetail("Invalid", details, parameter="now"),))

    def _stored(self, session_id: str, action: str) -> SessionRecord:
        session = self.state.sessions.get(session_id)
        if session is None:
            raise BadRequestError(
                f'Cannot {action} customer session "{session_id}": the session does not exist.'
            )
        return session

    def _create_session(
        self, session_id: str, incoming: NewCustomerSessionV2, raw_items: Any, stamp: str
    ) -> SessionRecord:
        state = self.state
        profile_id = incoming.profile_id or None
        first = True
        if profile_id is not None:
            profile = state.ensure_profile(profile_id, stamp)
            first = profile.sessions_created == 0
            profile.sessions_created += 1
        session = SessionRecord(
            id=state.next_id("session"),
            integration_id=session_id,
            created=stamp,
            updated=stamp,
            profile_id=profile_id,
            first_session=first,
        )
        self._fill(session, incoming, raw_items, replace_all=True)
        state.sessions[session_id] = session
        return session

    def _merge(
        self, session: SessionRecord, incoming: NewCustomerSessionV2, raw_items: Any, stamp: str
    ) -> None:
        """Cumulative PUT: keys that are absent (or null) keep their stored value."""
        self._fill(session, incoming, raw_items, replace_all=False)
        if session.profile_id is not None:
            self.state.ensure_profile(session.profile_id, stamp)
        session.update_count += 1

    def _fill(
        self,
        session: SessionRecord,
        incoming: NewCustomerSessionV2,
        raw_items: Any,
        *,
        replace_all: bool,
    ) -> None:
        # Only the keys the body sent (and not as null) change the session.
        for name in incoming.model_fields_set & _SESSION_FIELDS:
            value = getattr(incoming, name)
            if value is None:
                continue
            if name == "cart_items":
                session.set_cart(_items(incoming, raw_items, self.state.catalogs))
            elif name == "attributes":
                session.attributes.update(value)
            elif name == "additional_costs":
                session.additional_costs = _costs(incoming)
            elif name in ("coupon_codes", "loyalty_cards", "identifiers"):
                setattr(session, name, list(value))
            elif name == "store_integration_id":
                session.store_integration_id = value
            elif name == "referral_code":
                session.referral_code = value or None
            elif not replace_all:  # profile_id: set when the session is created
                session.profile_id = value or None

    def _dry_update(
        self,
        session_id: str,
        request: IntegrationRequest,
        raw_items: Any,
        existing: SessionRecord | None,
        stamp: str,
        now: datetime | None = None,
    ) -> Body:
        """dry=true: the payload alone is the session; nothing is stored or counted."""
        incoming = request.customer_session
        profile_id = incoming.profile_id or None
        profile = self.state.profiles.get(profile_id) if profile_id else None
        if profile_id is not None and profile is None:
            profile = ProfileRecord(0, profile_id, stamp, stamp)
        if existing is not None:
            first = existing.first_session
        else:
            first = profile is None or profile.sessions_created == 0
        session = SessionRecord(
            id=existing.id if existing else 0,
            integration_id=session_id,
            created=existing.created if existing else stamp,
            updated=stamp,
            profile_id=profile_id,
            first_session=first,
            state=incoming.state,
            update_count=existing.update_count + 1 if existing else 1,
        )
        self._fill(session, incoming, raw_items, replace_all=True)
        event_type = _SESSION_EVENTS.get(incoming.state, "talon_session_updated")
        outcome = self._evaluate(
            session, profile, event_type, incoming.evaluable_campaign_ids, now=now
        )
        response = integration_state(
            self.state,
            session,
            profile,
            outcome.effects,
            outcome.triggered_campaign_ids,
            request.response_content,
            event_type,
            0,
            stamp,
        )
        return self._with_created(response, outcome, request.response_content, stamp)

    def _evaluate(
        self,
        session: SessionRecord,
        profile: ProfileRecord | None,
        event_type: str,
        evaluable: list[int] | None = None,
        *,
        now: datetime | None = None,
    ) -> Outcome:
        cart_item_total = session.cart_item_total
        moment = now if now is not None else self.state.clock()
        facts = Facts(
            event_type=event_type,
            profile_id=session.profile_id,
            profile_attributes=profile.attributes if profile is not None else {},
            session=SessionFacts(
                integration_id=session.integration_id,
                state=session.state,
                lines=session.lines,
                coupon_codes=tuple(session.coupon_codes),
                first_session=session.first_session,
                cart_item_total=cart_item_total,
                total=cart_item_total + session.additional_cost_total,
                referral_code=session.referral_code,
                attributes=session.attributes,
                store_integration_id=session.store_integration_id,
                additional_costs=tuple(
                    (name, float(cost["price"])) for name, cost in session.additional_costs.items()
                ),
            ),
            key=f"session/{session.integration_id}",
            store_integration_id=session.store_integration_id,
            now=moment,
            loyalty=self.state.loyalty.view(session.profile_id, session.loyalty_cards, moment),
        )
        # evaluableCampaignIds only reach here from dry requests; [] means "not given".
        return self.state.engine.evaluate(
            facts, evaluable=evaluable or None, ledger=self.state.ledger
        )

    def _close(self, session: SessionRecord, profile: ProfileRecord | None) -> None:
        """Redeem coupons, persist points and count the sale."""
        session.closing_effects = list(session.effects)
        session.rolled_back = [0.0] * len(session.closing_effects)
        self.state.ledger.redeem(session.closing_effects, session.profile_id)
        if profile is not None:
            profile.closed_sessions += 1
            profile.total_sales += session.total
        self._record_points(
            session.closing_effects, session.profile_id, session_id=session.integration_id
        )

    def _undo_close(self, session: SessionRecord, *, cancel: bool = False) -> list[Body]:
        """Roll back what is left of a closed (or partially returned) session.

        Redemptions and discount budgets are given back; a cancel also gives back referral
        creations (coupon creations never: created coupons stay).
        """
        effects, _ = plan_rollback(
            session.closing_effects,
            session.rolled_back,
            full=True,
            recipient=session.profile_id or "",
        )
        if not cancel:
            # A reopen takes back pending points, active ones only if the program says so.
            effects = self.state.loyalty.reopen_rollbacks(effects, self.state.clock())
        self.state.ledger.give_back(
            effects, session.profile_id, cancelled_effects=session.closing_effects if cancel else ()
        )
        profile = self.state.profiles.get(session.profile_id or "")
        if profile is not None:
            profile.closed_sessions = max(0, profile.closed_sessions - 1)
            profile.total_sales -= session.total - session.returned_value
        self._record_points(effects, session.profile_id, session_id=session.integration_id)
        session.closing_effects = []
        session.rolled_back = []
        return effects

    def _revoke(self, session: SessionRecord, request: IntegrationRequest, stamp: str) -> Body:
        """closed/partially_returned → cancelled: the body's content is ignored."""
        effects = self._undo_close(session, cancel=True)
        session.state = "cancelled"
        session.effects = []
        session.updated = stamp
        session.update_count += 1
        profile = self.state.profiles.get(session.profile_id or "")
        return integration_state(
            self.state,
            session,
            profile,
            effects,
            [],
            request.response_content,
            "talon_session_revoked",
            self.state.next_id("event"),
            stamp,
        )

    # --- shared helpers ------------------------------------------------------------------------

    def _apply_updates(
        self, outcome: Outcome, session: SessionRecord | None, profile: ProfileRecord | None
    ) -> None:
        """Keep what a non-dry evaluation changed: attributes, created coupons and referrals,
        awarded giveaways."""
        for entity, name, value in outcome.attribute_updates:
            if entity == "Profile" and profile is not None:
                profile.attributes[name] = value
            elif entity == "Session" and session is not None:
                session.attributes[name] = value
        if outcome.created_coupons or outcome.created_referrals or outcome.awarded_giveaways:
            profiles = self.state.profiles

            def profile_number(integration_id: str) -> int | None:
                found = profiles.get(integration_id)
                return found.id if found is not None else None

            self.state.ledger.store(outcome, self.state.now_stamp(), profile_number)

    def _with_created(
        self, response: Body, outcome: Outcome, content: Collection[str] | None, stamp: str
    ) -> Body:
        """Fill ``createdCoupons``, ``createdReferrals`` and (if asked) ``awardedGiveaways``."""
        ledger = self.state.ledger
        if outcome.created_coupons or outcome.created_referrals:
            response["createdCoupons"], response["createdReferrals"] = created_json(
                ledger, outcome, stamp
            )
        if content and "awardedGiveaways" in content and outcome.awarded_giveaways:
            response["awardedGiveaways"] = awarded_json(ledger, outcome, stamp)
        return response

    def _record_points(
        self,
        effects: list[Body],
        profile_id: str | None,
        *,
        session_id: str | None = None,
        event_id: int | None = None,
    ) -> None:
        """Persist the loyalty effects: points earned, spent and rolled back."""
        self.state.loyalty.record(
            effects,
            profile_id=profile_id or None,
            now=self.state.clock(),
            session_id=session_id,
            event_id=event_id,
        )

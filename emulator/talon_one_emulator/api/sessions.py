"""The customer session operations of the Integration API, without HTTP.

Session state machine (Talon.One's documented transitions)::

    (new) ──PUT──▶ open ──PUT──▶ closed ──PUT──▶ cancelled (rollback effects)
      └────PUT──────────────────▶ │  ├──returns──▶ partially_returned ──PUT──▶ cancelled
                     open ──PUT──▶ cancelled    └──reopen──▶ open (rollback effects)

Anything else, and every change to a cancelled session, is a 400 ErrorResponse. How a request
body changes the stored session is in :mod:`talon_one_emulator.api.session_fill`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.outcomes import add_created, keep_updates, record_points
from talon_one_emulator.api.returns import resolve_returns
from talon_one_emulator.api.session_fill import fill_session
from talon_one_emulator.api.validation import return_request, session_request
from talon_one_emulator.errors import (
    ApiErrorDetail,
    BadRequestError,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.render.responses import integration_state, return_json, session_json
from talon_one_emulator.rules.engine import Facts, Outcome, SessionFacts
from talon_one_emulator.rules.rollback import plan_rollback
from talon_one_emulator.store.state import ProfileRecord, ReturnRecord, SessionRecord
from talon_one_emulator.times import format_time

if TYPE_CHECKING:
    from talon_one_emulator.models.integration import IntegrationRequest, NewCustomerSessionV2
    from talon_one_emulator.store.state import EmulatorState

__all__ = ["SessionOperations"]

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


class SessionOperations:
    """Create, update, read, return, reopen and cancel customer sessions
    (part of :class:`~talon_one_emulator.api.operations.IntegrationService`)."""

    state: EmulatorState

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
            # The payload alone is the session; nothing is stored or counted.
            session, profile = self._dry_session(session_id, incoming, raw_items, existing, stamp)
            event_type = _SESSION_EVENTS.get(incoming.state, "talon_session_updated")
            outcome = self._evaluate(
                session, profile, event_type, moment, incoming.evaluable_campaign_ids
            )
            event_id = 0
        else:
            target = incoming.state
            if existing is None:
                if target not in ("open", "closed"):
                    raise _transition_error(session_id, None, target)
                session = self._create_session(session_id, incoming, raw_items, stamp)
                event_type = "talon_session_created"
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
                outcome = self._evaluate(session, profile, event_type, moment)
                keep_updates(state, outcome, session, profile)
                session.effects = outcome.effects
                if target == "closed":
                    self._close(session, profile)
            event_id = state.next_id("event")
        response = integration_state(
            state,
            session,
            profile,
            outcome.effects,
            outcome.triggered_campaign_ids,
            request.response_content,
            event_type,
            event_id,
            stamp,
        )
        return add_created(state, response, outcome, request.response_content, stamp)

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
        same_customer = self._closed_for(session, profile)
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
            if profile is not None and same_customer:
                returned_value = sum(session.items[p].price * q for p, q in wanted.items())
                profile.total_sales -= returned_value
            record_points(state, effects, session.profile_id, session_id=session.integration_id)
            state.ledger.give_back(effects, session.profile_id, own_counts=same_customer)
        response = integration_state(
            state,
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

    # --- helpers -------------------------------------------------------------------------------

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
        fill_session(session, incoming, raw_items, state.catalogs, replace_all=True)
        state.add_session(session)
        return session

    def _merge(
        self, session: SessionRecord, incoming: NewCustomerSessionV2, raw_items: Any, stamp: str
    ) -> None:
        """Cumulative PUT: keys that are absent (or null) keep their stored value."""
        fill_session(session, incoming, raw_items, self.state.catalogs, replace_all=False)
        if session.profile_id is not None:
            self.state.ensure_profile(session.profile_id, stamp)
        session.update_count += 1

    def _dry_session(
        self,
        session_id: str,
        incoming: NewCustomerSessionV2,
        raw_items: Any,
        existing: SessionRecord | None,
        stamp: str,
    ) -> tuple[SessionRecord, ProfileRecord | None]:
        """dry=true: a session (and profile) made of the payload alone, stored nowhere."""
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
        fill_session(session, incoming, raw_items, self.state.catalogs, replace_all=True)
        return session, profile

    def _evaluate(
        self,
        session: SessionRecord,
        profile: ProfileRecord | None,
        event_type: str,
        now: datetime,
        evaluable: list[int] | None = None,
    ) -> Outcome:
        cart_item_total = session.cart_item_total
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
            now=now,
            loyalty=self.state.loyalty.view(session.profile_id, session.loyalty_cards, now),
        )
        # evaluableCampaignIds only reach here from dry requests; [] means "not given".
        return self.state.engine.evaluate(
            facts, evaluable=evaluable or None, ledger=self.state.ledger
        )

    @staticmethod
    def _closed_for(session: SessionRecord, profile: ProfileRecord | None) -> bool:
        """Whether ``profile`` (the current one of the session's profile ID) is the profile the
        session closed for, or the session has no profile."""
        if session.profile_id is None:
            return True
        return profile is not None and profile.id == session.closed_for

    def _close(self, session: SessionRecord, profile: ProfileRecord | None) -> None:
        """Redeem coupons, persist points and count the sale."""
        if profile is not None:
            session.closed_for = profile.id
        session.closing_effects = list(session.effects)
        session.rolled_back = [0.0] * len(session.closing_effects)
        self.state.ledger.redeem(session.closing_effects, session.profile_id)
        if profile is not None:
            profile.closed_sessions += 1
            profile.total_sales += session.total
        record_points(
            self.state,
            session.closing_effects,
            session.profile_id,
            session_id=session.integration_id,
        )

    def _undo_close(self, session: SessionRecord, *, cancel: bool = False) -> list[Body]:
        """Roll back what is left of a closed (or partially returned) session.

        Redemptions and discount budgets are given back; a cancel also gives back referral
        creations (coupon creations never: created coupons stay).
        """
        state = self.state
        effects, _ = plan_rollback(
            session.closing_effects,
            session.rolled_back,
            full=True,
            recipient=session.profile_id or "",
        )
        if not cancel:
            # A reopen takes back pending points, active ones only if the program says so.
            effects = state.loyalty.reopen_rollbacks(effects, state.clock())
        profile = state.profiles.get(session.profile_id or "")
        same_customer = self._closed_for(session, profile)
        state.ledger.give_back(
            effects,
            session.profile_id,
            cancelled_effects=session.closing_effects if cancel else (),
            own_counts=same_customer,
        )
        if profile is not None and same_customer:
            profile.closed_sessions = max(0, profile.closed_sessions - 1)
            profile.total_sales -= session.total - session.returned_value
        record_points(state, effects, session.profile_id, session_id=session.integration_id)
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

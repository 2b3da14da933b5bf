"""SessionLedger: a cart update that happened before the newest event applied to its session is
superseded; state changes and profile events never are; the ledger is bounded."""

from __future__ import annotations

from typing import Any

import orjson

from talon_stream.core._events import Event, decode_event
from talon_stream.processing._sessions import SessionLedger, Superseded

CART = {"cartItems": [{"sku": "A", "name": "A", "price": 1.0, "quantity": 1, "category": "c"}]}


def event(event_id: str, event_type: str, second: int, session: str = "s1", **extra: Any) -> Event:
    payload: dict[str, Any] = {
        "cart.updated": CART,
        "order.placed": CART,
        "order.cancelled": {},
        "order.reopened": {},
        "customer.updated": {"attributes": {"tier": "gold"}},
    }[event_type]
    fields: dict[str, Any] = {"profileId": "ada", **extra}
    if not event_type.startswith("customer."):
        fields["sessionId"] = session
    return decode_event(
        orjson.dumps(
            {
                "eventId": event_id,
                "type": event_type,
                "occurredAt": f"2026-12-05T10:00:{second:02d}Z",
                "payload": payload,
                **fields,
            }
        )
    )


def test_a_cart_older_than_the_order_applied_is_superseded_by_it() -> None:
    ledger = SessionLedger()
    ledger.applied(event("o1", "order.placed", 5), "env-o1", "closed")
    verdict = ledger.superseded(event("c0", "cart.updated", 1))
    assert verdict is not None
    assert (verdict.by.event_id, verdict.by.event_type, verdict.by.envelope_id) == (
        "o1",
        "order.placed",
        "env-o1",
    )
    assert verdict.by.state == "closed"
    assert verdict.reason == (
        "happened before order.placed o1 (2026-12-05T10:00:05+00:00), already applied to the "
        "session (session closed)"
    )


def test_a_cart_as_new_or_newer_is_sent() -> None:
    ledger = SessionLedger()
    ledger.applied(event("c1", "cart.updated", 5), "env-c1", "open")
    assert ledger.superseded(event("c2", "cart.updated", 5)) is None
    assert ledger.superseded(event("c3", "cart.updated", 6)) is None
    older = ledger.superseded(event("c0", "cart.updated", 4))
    assert older is not None
    assert older.reason.endswith("already applied to the session")  # open: no state named


def test_state_changes_and_profile_events_are_never_superseded() -> None:
    ledger = SessionLedger()
    ledger.applied(event("o1", "order.placed", 50), "env-o1", "closed")
    for late in (
        event("x", "order.placed", 1),
        event("x", "order.cancelled", 1),
        event("x", "order.reopened", 1),
        event("x", "customer.updated", 1),
    ):
        assert ledger.superseded(late) is None
    assert ledger.superseded(event("c", "cart.updated", 1, session="another")) is None


def test_an_older_event_applied_late_changes_only_the_state() -> None:
    ledger = SessionLedger()
    ledger.applied(event("c9", "cart.updated", 9), "env-c9", "open")
    ledger.applied(event("x1", "order.cancelled", 2), "env-x1", "cancelled")
    verdict = ledger.superseded(event("c5", "cart.updated", 5))
    assert verdict is not None
    assert (verdict.by.event_id, verdict.by.state) == ("c9", "cancelled")


def test_the_least_recently_updated_sessions_are_forgotten_beyond_the_capacity() -> None:
    ledger = SessionLedger(capacity=2)
    ledger.applied(event("a", "cart.updated", 5, session="s1"), "e1", "open")
    ledger.applied(event("b", "cart.updated", 5, session="s2"), "e2", "open")
    ledger.applied(event("c", "cart.updated", 6, session="s1"), "e3", "open")  # s1 recent
    ledger.applied(event("d", "cart.updated", 5, session="s3"), "e4", "open")
    assert len(ledger) == 2
    assert ledger.superseded(event("z", "cart.updated", 1, session="s2")) is None  # forgotten
    assert ledger.superseded(event("z", "cart.updated", 1, session="s1")) is not None
    assert ledger.superseded(event("z", "cart.updated", 1, session="s3")) is not None


def test_a_session_talon_one_holds_closed_supersedes_without_a_known_event() -> None:
    verdict = Superseded.by_session_state("cancelled")
    assert (verdict.by.event_id, verdict.by.occurred_at, verdict.by.state) == (
        None,
        None,
        "cancelled",
    )
    assert verdict.reason == (
        "the session is cancelled in Talon.One (by an event applied before this worker's memory "
        "of it): a cart update can no longer change it"
    )

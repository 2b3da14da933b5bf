"""SessionBook: every dry call carries the session as the live, cumulative updates left it.

Two properties over arbitrary sequences of cart updates (and a final order): the accumulated
session equals a fold written out here (each field as the latest event that sets it,
``attributes`` merged key by key); and, against the emulator's own cumulative update, the dry
call made of the accumulated session sees the very session — and the very effects — the live
updates left in Talon.One.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon_one_emulator import EmulatorState, IntegrationService, load_campaigns
from talon_stream.core._calls import Operation
from talon_stream.core._events import Event, decode_event
from talon_stream.core._translate import TranslationOptions, translate
from talon_stream.whatif import SessionBook, with_campaigns
from talon_stream.whatif._sessions import NOT_EVALUATED, RULE_ENGINE_OFF, SESSION_NOT_OPEN

DRY = TranslationOptions(dry=True, response_content=("customerSession",))
LIVE = TranslationOptions(response_content=("customerSession",))
CAMPAIGNS = load_campaigns()
ALL_CAMPAIGNS = tuple(campaign.id for campaign in CAMPAIGNS.campaigns)
SESSION_FIELDS = (
    "cartItems",
    "couponCodes",
    "referralCode",
    "loyaltyCards",
    "additionalCosts",
    "identifiers",
    "storeIntegrationId",
)

_counter = iter(range(10**9))


def event(event_type: str, payload: dict[str, Any] | None = None, **ids: Any) -> Event:
    fields: dict[str, Any] = {"profileId": "ada", "sessionId": "s1", **ids}
    if event_type.startswith("customer."):
        fields.pop("sessionId")
    return decode_event(
        orjson.dumps(
            {
                "eventId": f"e-{next(_counter)}",
                "type": event_type,
                "occurredAt": "2026-12-05T10:00:00Z",
                "payload": payload or {},
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
    )


ITEMS = st.lists(
    st.builds(
        lambda sku, quantity, colour: {
            "sku": sku[0],
            "name": sku[0],
            "price": sku[1],
            "category": sku[2],
            "quantity": quantity,
            **({"attributes": {"color": colour}} if colour else {}),
        },
        st.sampled_from(
            [
                ("rsb002", 49.0, "Shirts"),
                ("dtr003", 74.0, "Trousers"),
                ("shoe01", 89.5, "Shoes"),
                ("tote01", 15.0, "Bags"),
            ]
        ),
        st.integers(1, 4),
        st.sampled_from([None, "red", "blue"]),
    ),
    max_size=4,
)
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "cartItems": ITEMS,
        "couponCodes": st.lists(
            st.sampled_from(["xmas20", "SHOES15", "FREESHIP", "NOPE-1"]), max_size=2, unique=True
        ),
        "referralCode": st.sampled_from(["", "REF-UNKNOWN"]),
        "loyaltyCards": st.sampled_from([[], ["CARD-0001"]]),
        "additionalCosts": st.dictionaries(
            st.just("shipping"),
            st.builds(lambda p: {"price": p}, st.sampled_from([0.0, 4.9, 9.9])),
            max_size=1,
        ),
        "identifiers": st.lists(st.sampled_from(["dev-1", "dev-2"]), max_size=2, unique=True),
        "storeIntegrationId": st.sampled_from(["store-berlin", "store-paris"]),
        "attributes": st.fixed_dictionaries(
            {},
            optional={"channel": st.sampled_from(["web", "app"]), "redeemPoints": st.booleans()},
        ),
    },
)
JOURNEYS = st.tuples(
    st.lists(PAYLOADS, min_size=1, max_size=6),
    st.one_of(st.none(), PAYLOADS),  # the order that closes it, if any
    st.sampled_from(["ada", None]),
)


def journey_events(
    carts: list[dict[str, Any]], order: dict[str, Any] | None, profile: str | None
) -> list[Event]:
    out = [event("cart.updated", payload, profileId=profile) for payload in carts]
    if order is not None:
        out.append(event("order.placed", order, profileId=profile))
    return out


def folded(events: list[Event]) -> dict[str, Any]:
    """The session cumulative live updates leave: each field as the latest event that sets
    it, attributes merged key by key, the state of the latest."""
    session: dict[str, Any] = {}
    for e in events:
        payload = e.payload.model_dump(by_alias=True, exclude_none=True)  # type: ignore[union-attr]
        for name in SESSION_FIELDS:
            if name in payload:
                session[name] = payload[name]
        if "attributes" in payload:
            session["attributes"] = {**session.get("attributes", {}), **payload["attributes"]}
        if e.profile_id is not None:
            session["profileId"] = e.profile_id
        session["state"] = "closed" if e.type == "order.placed" else "open"
    return session


@given(JOURNEYS)
@settings(max_examples=300, deadline=None)
def test_the_accumulated_session_is_what_cumulative_updates_leave(journey: Any) -> None:
    events = journey_events(*journey)
    book = SessionBook((12, 15), DRY)
    steps = [book.step(e) for e in events]
    assert all(step.call is not None for step in steps)
    expected = folded(events)
    assert book.accumulated("s1") == expected
    last = steps[-1].call
    assert last is not None
    assert last.query == {"dry": "true"}
    assert last.body is not None
    assert last.body["customerSession"] == {**expected, "evaluableCampaignIds": [12, 15]}
    assert last.body["responseContent"] == ["customerSession"]
    # Each call carried the session as of its event, never a later one.
    for n, step in enumerate(steps):
        assert step.call is not None
        assert step.call.body is not None
        sent = dict(step.call.body["customerSession"])
        assert sent.pop("evaluableCampaignIds") == [12, 15]
        assert sent == folded(events[: n + 1])


def _session_fields(session: dict[str, Any]) -> dict[str, Any]:
    keys = (*SESSION_FIELDS, "attributes", "profileId", "state", "total", "cartItemTotal")
    return {key: session.get(key) for key in keys}


@given(JOURNEYS)
@settings(max_examples=150, deadline=None)
def test_a_dry_call_of_the_accumulated_session_sees_what_live_updates_left(journey: Any) -> None:
    """The emulator applies the live calls cumulatively; the dry call of the accumulated
    session, evaluated standalone just before, sees the same session and gets the same
    effects."""
    events = journey_events(*journey)
    api = IntegrationService(EmulatorState(CAMPAIGNS))
    book = SessionBook(ALL_CAMPAIGNS, DRY)
    for e in events:
        # The dry call first: Talon.One's own state (a giveaway pool, say) then is as it was
        # when the live call was made.
        dry_call = book.step(e).call
        assert dry_call is not None
        assert dry_call.body is not None
        dry = api.update_customer_session("s1", dry_call.body, dry=True)
        live_call = translate(e, LIVE)
        assert live_call.body is not None
        live = api.update_customer_session("s1", live_call.body)
        assert _session_fields(dry["customerSession"]) == _session_fields(live["customerSession"])
        assert dry["effects"] == live["effects"]


def test_the_dry_call_would_differ_without_the_accumulation() -> None:
    """The property above can fail: the last update alone, sent standalone, loses the coupon
    an earlier update set, and with it the discount."""
    events = [
        event("cart.updated", {"cartItems": [{"sku": "rsb002", "price": 49, "quantity": 1}]}),
        event("cart.updated", {"couponCodes": ["xmas20"]}),
        event("cart.updated", {"cartItems": [{"sku": "dtr003", "price": 74, "quantity": 2}]}),
    ]
    api = IntegrationService(EmulatorState(CAMPAIGNS))
    book = SessionBook((1,), DRY)
    for e in events:
        live = api.update_customer_session("s1", translate(e, LIVE).body)
        call = book.step(e).call
    assert call is not None
    alone = with_campaigns(translate(events[-1], DRY), (1,))
    accumulated = api.update_customer_session("s1", call.body, dry=True)
    standalone = api.update_customer_session("s1", alone.body, dry=True)
    kinds = {e["effectType"] for e in live["effects"] if e["campaignId"] == 1}
    assert kinds == {"acceptCoupon", "setDiscount"}
    assert [e for e in accumulated["effects"] if e["campaignId"] == 1] == [
        e for e in live["effects"] if e["campaignId"] == 1
    ]
    assert not [e for e in standalone["effects"] if e["campaignId"] == 1]


def test_order_lifecycle_moves_the_state_and_is_not_evaluated() -> None:
    book = SessionBook((12,), DRY)
    cart = {"cartItems": [{"sku": "a", "price": 1, "quantity": 1}], "couponCodes": ["xmas20"]}
    assert book.step(event("cart.updated", cart)).call is not None
    assert book.step(event("order.placed")).call is not None
    assert book.state("s1") == "closed"
    # A cart update after the order: the worker supersedes it, Talon.One would refuse it.
    assert book.step(event("cart.updated", cart)).skipped == SESSION_NOT_OPEN
    assert book.step(event("order.reopened")).skipped == NOT_EVALUATED
    assert book.state("s1") == "open"
    # Reopened: the next update builds on what the session held (the coupon stays).
    call = book.step(event("cart.updated", {"cartItems": []})).call
    assert call is not None
    assert call.body is not None
    assert call.body["customerSession"]["couponCodes"] == ["xmas20"]
    assert call.body["customerSession"]["cartItems"] == []
    assert book.step(event("order.placed")).call is not None
    returned = {"items": [{"position": 0, "quantity": 1}]}
    assert book.step(event("order.items_returned", returned)).skipped == NOT_EVALUATED
    assert book.state("s1") == "partially_returned"
    assert book.step(event("order.cancelled")).skipped == NOT_EVALUATED
    assert book.state("s1") == "cancelled"
    assert book.step(event("order.placed")).skipped == SESSION_NOT_OPEN


def test_profile_updates_and_custom_events_are_dry_with_the_campaigns_in_the_body() -> None:
    book = SessionBook((15, 12), DRY)
    call = book.step(event("customer.updated", {"attributes": {"tier": "gold"}})).call
    assert call is not None
    assert call.body is not None
    assert call.operation is Operation.UPDATE_CUSTOMER_PROFILE
    assert call.query == {"runRuleEngine": "true", "dry": "true"}
    assert call.body["evaluableCampaignIds"] == [15, 12]
    off = {"attributes": {"tier": "gold"}, "runRuleEngine": False}
    assert book.step(event("customer.updated", off)).skipped == RULE_ENGINE_OFF
    review = {"eventType": "review_submitted", "attributes": {"rating": 5}}
    call = book.step(event("customer.event", review)).call
    assert call is not None
    assert call.body is not None
    assert call.operation is Operation.TRACK_EVENT  # v2 even where the worker tracks v3
    assert call.query == {"silent": "no", "dry": "true"}
    assert call.body["evaluableCampaignIds"] == [15, 12]
    assert book.step(event("customer.erased")).skipped == NOT_EVALUATED


def test_v3_custom_events_become_dry_v2_track_events() -> None:
    book = SessionBook((1,), TranslationOptions(dry=True, custom_events="v3"))
    call = book.step(event("customer.event", {"eventType": "review_submitted"})).call
    assert call is not None
    assert call.operation is Operation.TRACK_EVENT


def test_the_book_forgets_the_least_recently_used_session_beyond_its_bound() -> None:
    book = SessionBook((1,), DRY, max_sessions=2)
    for session in ("s1", "s2"):
        book.step(event("cart.updated", {"couponCodes": ["xmas20"]}, sessionId=session))
    book.step(event("cart.updated", {}, sessionId="s1"))  # s1 used last
    book.step(event("cart.updated", {}, sessionId="s3"))
    assert len(book) == 2
    assert book.forgotten == 1
    assert book.accumulated("s2") is None
    assert book.accumulated("s1") == {
        "state": "open",
        "profileId": "ada",
        "couponCodes": ["xmas20"],
    }


def test_only_dry_options_and_dry_calls_are_accepted() -> None:
    with pytest.raises(ValueError, match="dry=True"):
        SessionBook((1,), LIVE)
    live = translate(event("cart.updated", {}), LIVE)
    with pytest.raises(ValueError, match="not a dry call"):
        with_campaigns(live, (1,))

"""Rule conditions of the campaign file, compiled once into plain predicates over :class:`Facts`.

Conditions about the session are false outside session evaluations (profile updates, events);
profile conditions hold everywhere. ``couponValid`` and ``referralValid`` always hold here: the
engine only runs such rules when the session carries a usable code of the campaign.

Some conditions can be decided from the kind of evaluation alone (its event type, and whether a
session is evaluated): :func:`static_verdict` tells the engine which, so that it can drop rules
that never fire, and checks that always hold, once per kind of evaluation instead of per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from talon_one_emulator.campaigns.rules import (
    AttributeMatch,
    CartSubtotalAtLeast,
    CartSubtotalBelow,
    Condition,
    CouponValid,
    EventAttributeEquals,
    EventTypeIs,
    FirstSession,
    ItemCategoryPresent,
    ItemQuantityAtLeast,
    ItemSkuPresent,
    ProfileAttributeEquals,
    ReferralValid,
    SessionAttributeEquals,
    SessionStateIs,
    StoreIs,
)
from talon_one_emulator.rules.facts import Facts

__all__ = ["Predicate", "compile_condition", "static_verdict"]

Predicate = Callable[[Facts], bool]


# Conditions about the session: false whenever no session is evaluated.
_SESSION_CONDITIONS = (
    CartSubtotalAtLeast,
    CartSubtotalBelow,
    ItemSkuPresent,
    ItemCategoryPresent,
    ItemQuantityAtLeast,
    FirstSession,
    SessionStateIs,
    SessionAttributeEquals,
)


def _same(left: Any, right: Any) -> bool:
    # YAML `true` must not match the number 1, nor `1` match `true`.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _always(_facts: Facts) -> bool:
    return True


def _attribute_equals(match: AttributeMatch, entity: str) -> Predicate:
    name, value = match.attribute, match.value

    def holds(facts: Facts) -> bool:
        if entity == "profile":
            if facts.profile_id is None:
                return False
            attributes = facts.profile_attributes
        elif entity == "session":
            if facts.session is None:
                return False
            attributes = facts.session.attributes
        else:
            attributes = facts.event_attributes
        return name in attributes and _same(attributes[name], value)

    return holds


def _store(facts: Facts) -> str | None:
    if facts.store_integration_id is not None:
        return facts.store_integration_id
    return facts.session.store_integration_id if facts.session is not None else None


def compile_condition(condition: Condition) -> Predicate:
    """The predicate of one condition of the campaign file."""
    match condition:
        case CouponValid() | ReferralValid():
            return _always

        case CartSubtotalAtLeast(amount=amount):
            return lambda f: f.session is not None and f.session.cart_item_total >= amount

        case CartSubtotalBelow(amount=amount):
            return lambda f: f.session is not None and f.session.cart_item_total < amount

        case ItemSkuPresent(skus=skus):
            wanted_skus = frozenset(skus)
            return lambda f: (
                f.session is not None and any(line.sku in wanted_skus for line in f.session.lines)
            )

        case ItemCategoryPresent(categories=categories):
            wanted_categories = frozenset(categories)
            return lambda f: (
                f.session is not None
                and any(line.category in wanted_categories for line in f.session.lines)
            )

        case ItemQuantityAtLeast(spec=spec):
            only_skus = frozenset(spec.skus) if spec.skus is not None else None
            only_categories = frozenset(spec.categories) if spec.categories is not None else None

            def quantity(facts: Facts) -> bool:
                if facts.session is None:
                    return False
                units = sum(
                    line.quantity
                    for line in facts.session.lines
                    if (only_skus is None or line.sku in only_skus)
                    and (only_categories is None or line.category in only_categories)
                )
                return units >= spec.quantity

            return quantity

        case EventTypeIs(types=types):
            event_types = frozenset(types)
            return lambda facts: facts.event_type in event_types

        case ProfileAttributeEquals(match=match):
            return _attribute_equals(match, "profile")

        case SessionAttributeEquals(match=match):
            return _attribute_equals(match, "session")

        case EventAttributeEquals(match=match):
            return _attribute_equals(match, "event")

        case FirstSession(first=first):
            return lambda facts: facts.session is not None and facts.session.first_session == first

        case SessionStateIs(states=states):
            session_states = frozenset(states)
            return lambda facts: facts.session is not None and facts.session.state in session_states

        case StoreIs(stores=stores):
            wanted_stores = frozenset(stores)
            return lambda facts: _store(facts) in wanted_stores

    raise AssertionError(f"unhandled condition {condition!r}")  # pragma: no cover


def static_verdict(condition: Condition, event_type: str, *, in_session: bool) -> bool | None:
    """What a condition is in every evaluation of ``event_type`` (with a session or without):
    ``True`` (it always holds), ``False`` (it never does) or ``None`` (it depends on the facts)."""
    if isinstance(condition, EventTypeIs):
        return event_type in condition.types
    if isinstance(condition, CouponValid | ReferralValid):
        return True
    if not in_session and isinstance(condition, _SESSION_CONDITIONS):
        return False
    return None

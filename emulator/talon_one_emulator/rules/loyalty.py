"""The loyalty effects of rules, compiled once like every other effect
(:mod:`talon_one_emulator.rules.effects`).

* ``addLoyaltyPoints`` adds points for the customer's profile (profile-based programs) or for the
  loyalty card the session or event carries (card-based programs), with ``startDate`` and
  ``expiryDate`` when the program has pending days or a validity, ``awaitsActivation`` when its
  points wait for ``activateLoyaltyPoints``; per cart item with ``perItem``. Crossing a tier emits
  ``changeLoyaltyTierLevel``.
* ``deductLoyaltyPoints`` spends active points. A rule with deductions is guarded by an extra
  condition (:func:`loyalty_guard`): it only fires when the points are there, so its other
  effects (typically a discount) are only given when the points pay for them.

Points are tentative while the session is open; :mod:`talon_one_emulator.store.loyalty` persists
them on close.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from talon_one_emulator.campaigns.loyalty import (
    AddLoyaltyPointsSpec,
    DeductLoyaltyPoints,
    DeductLoyaltyPointsSpec,
    LoyaltyProgramSpec,
)
from talon_one_emulator.money import json_number, round_money
from talon_one_emulator.rules.facts import CartLine, Facts
from talon_one_emulator.times import format_time

if TYPE_CHECKING:
    from talon_one_emulator.rules.run import Run

__all__ = [
    "add_loyalty_points",
    "deduct_loyalty_points",
    "loyalty_guard",
    "transaction_uuid",
]

Effect = dict[str, Any]
Apply = Callable[["Run"], None]
Predicate = Callable[[Facts], bool]

_POINTS_PREFIX = bytes.fromhex("5b1f1c0e8d3f4f5e9a533c1a7d9e2b10")
# The variant bits of an RFC 4122 UUID: the first hex digit of the 4th group becomes 8, 9, a or b.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
# Points compared with this tolerance: balances are sums of cents.
_EPSILON = 1e-9


@lru_cache(maxsize=65_536)
def transaction_uuid(seed: str) -> str:
    """A name-based (version 5 style) UUID for ``seed``, without UUID objects, which cost a
    tenth of a session update on the hot path (every seed is new when sessions are).

    Re-evaluating the same session names the same transaction again.
    """
    h = hashlib.sha1(_POINTS_PREFIX + seed.encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _dates(program: LoyaltyProgramSpec, now: datetime | None) -> dict[str, Any]:
    """``startDate``, ``expiryDate``, ``awaitsActivation``, ``validityDuration`` of new points."""
    if program.activate_on_action:
        extra: dict[str, Any] = {"awaitsActivation": True}
        if program.validity_days is not None:
            extra["validityDuration"] = f"{program.validity_days}D"
        return extra
    if now is None or (program.pending_days is None and program.validity_days is None):
        return {}
    start = now
    extra = {}
    if program.pending_days is not None:
        start = now + timedelta(days=program.pending_days)
        extra["startDate"] = format_time(start)
    if program.validity_days is not None:
        extra["expiryDate"] = format_time(start + timedelta(days=program.validity_days))
    return extra


def _recipient(program: LoyaltyProgramSpec, facts: Facts) -> tuple[str, str | None] | None:
    """``(recipientIntegrationId, cardIdentifier)``, or ``None`` when nobody can get points."""
    if program.card_based:
        view = facts.loyalty
        card = view.card(program.id) if view is not None else None
        if card is None:
            return None  # points of a card-based program need an active card of the program
        return facts.profile_id or "", card
    if facts.profile_id is None:
        return None  # points of a profile-based program need a profile
    return facts.profile_id, None


def _lines(spec: AddLoyaltyPointsSpec, facts: Facts) -> list[CartLine]:
    session = facts.session
    if session is None:
        return []
    skus = spec.skus
    categories = spec.categories
    return [
        line
        for line in session.lines
        if (skus is None or line.sku in skus)
        and (categories is None or line.category in categories)
    ]


def add_loyalty_points(
    spec: AddLoyaltyPointsSpec,
    base: Effect,
    effect_index: int,
    programs: dict[int, LoyaltyProgramSpec],
) -> Apply:
    """The function applying one ``addLoyaltyPoints`` effect of a rule."""
    program = programs[spec.program_id]
    program_id = program.id
    subledger_id = spec.sub_ledger_id
    rule_name = str(base["ruleName"])
    name = spec.name or rule_name
    suffix = f"/{base['campaignId']}/{base['ruleIndex']}/{effect_index}"
    tiers = bool(program.tiers) and subledger_id == ""
    lowest_tier = program.tiers[0].min_points if program.tiers else 0.0
    dated = (
        program.activate_on_action
        or program.pending_days is not None
        or program.validity_days is not None
    )

    def props(
        value: float, recipient: str, card: str | None, seed: str, now: datetime | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": name,
            "programId": program_id,
            "subLedgerId": subledger_id,
            "value": json_number(value),
            "recipientIntegrationId": recipient,
            "transactionUUID": transaction_uuid(seed),
        }
        if dated:
            out.update(_dates(program, now))
        if card is not None:
            out["cardIdentifier"] = card
        return out

    def per_item(run: Run, recipient: str, card: str | None, seed: str) -> float:
        """Emit the points of every matching cart item (unit); returns the points earned."""
        facts = run.facts
        flatten = run.settings.cart_item_flattening
        earned = 0.0
        for line in _lines(spec, facts):
            if spec.points is not None:
                unit = spec.points
            else:
                unit = line.price * (spec.points_per_currency_unit or 0.0)
            units = range(line.quantity) if flatten else (None,)
            for sub in units:
                value = round_money(unit if flatten else unit * line.quantity)
                if value <= 0:
                    continue
                item_seed = f"{seed}/{line.position}"
                if sub is not None:
                    item_seed += f"/{sub}"
                out = props(value, recipient, card, item_seed, facts.now)
                out["cartItemPosition"] = line.position
                if sub is not None:
                    out["cartItemSubPosition"] = sub
                run.emit(base, "addLoyaltyPoints", out)
                earned += value
        return earned

    def apply(run: Run) -> None:
        facts = run.facts
        if program.card_based:
            found = _recipient(program, facts)
            if found is None:
                return
            recipient, card = found
        elif facts.profile_id is None:
            return  # points of a profile-based program need a profile
        else:
            recipient, card = facts.profile_id, None
        seed = facts.key + suffix
        if spec.per_item:
            earned = per_item(run, recipient, card, seed)
        else:
            session = facts.session
            if spec.points is not None:
                earned = spec.points
            elif session is not None and spec.points_per_currency_unit is not None:
                earned = round_money(session.cart_item_total * spec.points_per_currency_unit)
            else:
                return
            if earned <= 0:
                return
            run.emit(base, "addLoyaltyPoints", props(earned, recipient, card, seed, facts.now))
        view = facts.loyalty
        if tiers and earned > 0 and view is not None:
            before, after = view.earn(program_id, card, earned)
            if after >= lowest_tier:  # else no tier is reached, nor left
                _change_tier(run, base, program, rule_name, before, after)

    return apply


def _change_tier(
    run: Run,
    base: Effect,
    program: LoyaltyProgramSpec,
    rule_name: str,
    before: float,
    after: float,
) -> None:
    """Emit ``changeLoyaltyTierLevel`` if earning took the points from ``before`` to a higher
    tier at ``after``."""
    old, new = program.tier_index(before), program.tier_index(after)
    if new is not None and (old is None or new > old):
        change: dict[str, Any] = {
            "ruleTitle": rule_name,
            "programId": program.id,
            "subLedgerId": "",
            "newTierName": program.tiers[new].name,
        }
        if old is not None:
            change["previousTierName"] = program.tiers[old].name
        run.emit(base, "changeLoyaltyTierLevel", change)


def deduct_loyalty_points(
    spec: DeductLoyaltyPointsSpec,
    base: Effect,
    effect_index: int,
    programs: dict[int, LoyaltyProgramSpec],
) -> Apply:
    """The function applying one ``deductLoyaltyPoints`` effect of a rule."""
    program = programs[spec.program_id]
    suffix = f"/deduct/{base['campaignId']}/{base['ruleIndex']}/{effect_index}"
    points = spec.points

    def apply(run: Run) -> None:
        facts = run.facts
        view = facts.loyalty
        found = _recipient(program, facts)
        if view is None or found is None:
            return
        _, card = found
        if view.spendable(program.id, spec.sub_ledger_id, card) + _EPSILON < points:
            return  # the rule's guard normally keeps the rule from firing
        view.spend(program.id, spec.sub_ledger_id, card, points)
        props: dict[str, Any] = {
            "ruleTitle": str(base["ruleName"]),
            "programId": program.id,
            "subLedgerId": spec.sub_ledger_id,
            "value": json_number(points),
            "transactionUUID": transaction_uuid(facts.key + suffix),
            "name": spec.name or program.name,
        }
        if card is not None:
            props["cardIdentifier"] = card
        run.emit(base, "deductLoyaltyPoints", props)

    return apply


def loyalty_guard(
    effects: Sequence[object], programs: dict[int, LoyaltyProgramSpec]
) -> Predicate | None:
    """The extra condition of a rule with deductions: the points they spend are there.

    ``None`` for rules without deductions.
    """
    needs: dict[tuple[int, str], float] = {}
    for effect in effects:
        if isinstance(effect, DeductLoyaltyPoints):
            key = (effect.spec.program_id, effect.spec.sub_ledger_id)
            needs[key] = needs.get(key, 0.0) + effect.spec.points
    if not needs:
        return None
    wanted = tuple((programs[pid], sub, points) for (pid, sub), points in needs.items())

    def holds(facts: Facts) -> bool:
        view = facts.loyalty
        if view is None:
            return False
        for program, subledger, points in wanted:
            found = _recipient(program, facts)
            if found is None:
                return False
            if view.spendable(program.id, subledger, found[1]) + _EPSILON < points:
                return False
        return True

    return holds

"""Loyalty ledgers and cards rendered as Talon.One JSON.

``Loyalty`` (the ``loyalty`` response content and the inventory), ``LedgerInfo``,
``LoyaltyCard``, ``LoyaltyBalance(WithTier)``, the transaction and points entries of the loyalty
endpoints and ``LoyaltyLedgerEntry``. Points are rounded to cents and integral values printed as
integers; times are RFC 3339 UTC.

Tentative balances (``tentative*``) add what an open session's effects would add and spend:
``addLoyaltyPoints`` with a ``startDate`` or ``awaitsActivation`` counts as pending, any other as
active; ``deductLoyaltyPoints`` spends active points. ``expiredBalance`` and ``spentBalance`` of
LedgerInfo are always 0: Talon.One deprecated them ("Value is shown as 0"); the balance endpoints
report expired and spent points.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from talon_one_emulator.campaigns.loyalty import LoyaltyProgramSpec
from talon_one_emulator.money import json_number, round_money
from talon_one_emulator.store.loyalty import LoyaltyStore
from talon_one_emulator.store.loyalty_ledger import (
    Balance,
    CardRecord,
    Ledger,
    Transaction,
    balance,
)
from talon_one_emulator.times import add_times, format_time

__all__ = [
    "balance_json",
    "balance_with_tier_json",
    "card_json",
    "ledger_entry_json",
    "loyalty_json",
    "points_json",
    "tentative_deltas",
    "transaction_json",
]

Body = dict[str, Any]
# (program ID, subledger ID, card identifier or None) → (active delta, pending delta)
Deltas = dict[tuple[int, str, str | None], tuple[float, float]]


def _number(value: float) -> int | float:
    return json_number(round_money(value))


def tentative_deltas(effects: Iterable[Body]) -> Deltas:
    """What an open session's effects would add to (and spend from) each ledger."""
    deltas: Deltas = {}
    for effect in effects:
        effect_type = effect["effectType"]
        if effect_type not in ("addLoyaltyPoints", "deductLoyaltyPoints"):
            continue
        props = effect["props"]
        key = (int(props["programId"]), str(props["subLedgerId"]), props.get("cardIdentifier"))
        active, pending = deltas.get(key, (0.0, 0.0))
        value = float(props["value"])
        if effect_type == "deductLoyaltyPoints":
            active -= value
        elif props.get("startDate") or props.get("awaitsActivation"):
            pending += value
        else:
            active += value
        deltas[key] = (active, pending)
    return deltas


def tier_json(program: LoyaltyProgramSpec, index: int) -> Body:
    """Tier."""
    return {
        "id": program.tier_id(index),
        "name": program.tiers[index].name,
        "downgradePolicy": "balance_based",
    }


def ledger_info(
    program: LoyaltyProgramSpec,
    ledger: Ledger | None,
    at: datetime,
    delta: tuple[float, float] = (0.0, 0.0),
    *,
    tiers: bool = False,
) -> Body:
    """LedgerInfo; ``delta`` is the tentative (active, pending) change of an open session."""
    now = balance(ledger, at)
    current = now.active + delta[0]
    negative = now.negative
    if current < 0:
        # Only programs with a negative balance let a session spend more than is active.
        negative += -current
        current = 0.0
    body: Body = {
        "currentBalance": _number(now.active),
        "pendingBalance": _number(now.pending),
        "negativeBalance": _number(now.negative),
        "expiredBalance": 0,
        "spentBalance": 0,
        "tentativeCurrentBalance": _number(current),
        "tentativePendingBalance": _number(now.pending + delta[1]),
        "tentativeNegativeBalance": _number(negative),
    }
    if tiers and program.tiers:
        index = program.tier_index(now.active)
        if index is not None:
            body["currentTier"] = tier_json(program, index)
        following = 0 if index is None else index + 1
        if following < len(program.tiers):
            body["pointsToNextTier"] = _number(program.tiers[following].min_points - now.active)
    return body


def _is_zero(info: Body) -> bool:
    return all(info[key] == 0 for key in info if key.endswith("Balance"))


def _ledgers(
    program: LoyaltyProgramSpec,
    ledgers: dict[str, Ledger],
    at: datetime,
    deltas: Deltas,
    card: str | None,
    *,
    skip_zero: bool,
) -> tuple[Body, Body]:
    """The main LedgerInfo and the subledgers' ones."""
    main = ledger_info(
        program, ledgers.get(""), at, deltas.get((program.id, "", card), (0.0, 0.0)), tiers=True
    )
    subs: Body = {}
    for subledger_id in program.subledgers:
        info = ledger_info(
            program,
            ledgers.get(subledger_id),
            at,
            deltas.get((program.id, subledger_id, card), (0.0, 0.0)),
        )
        if not (skip_zero and _is_zero(info)):
            subs[subledger_id] = info
    return main, subs


def card_json(card: CardRecord, at: datetime, deltas: Deltas | None = None) -> Body:
    """LoyaltyCard, with the card's balances (tentative ones from ``deltas``)."""
    program = card.program
    main, subs = _ledgers(
        program, card.account.ledgers, at, deltas or {}, card.identifier, skip_zero=False
    )
    body: Body = {
        "id": card.id,
        "created": format_time(card.created),
        "programID": program.id,
        "programName": program.name,
        "programTitle": program.title,
        "status": card.status,
        "identifier": card.identifier,
        "usersPerCardLimit": program.users_per_card_limit,
        "profiles": [
            {"integrationId": integration_id, "timestamp": format_time(linked)}
            for integration_id, linked in card.profiles.items()
        ],
        "ledger": main,
        "subledgers": subs,
        "modified": format_time(card.modified),
    }
    if card.batch_id is not None:
        body["batchId"] = card.batch_id
    return body


def loyalty_json(
    store: LoyaltyStore,
    profile_id: str | None,
    at: datetime,
    effects: Iterable[Body] | None = None,
    cards: Sequence[CardRecord] = (),
) -> Body:
    """Loyalty: the profile's balance in every profile-based program, and ``cards``.

    ``effects`` (an open session's) make the tentative balances.
    """
    deltas = tentative_deltas(effects) if effects is not None else {}
    programs: Body = {}
    if profile_id is not None:
        for program in store.programs.values():
            if program.card_based:
                continue
            account = store.profile_account(program.id, profile_id)
            ledgers = account.ledgers if account is not None else {}
            main, subs = _ledgers(program, ledgers, at, deltas, None, skip_zero=True)
            entry: Body = {
                "id": program.id,
                "title": program.title,
                "name": program.name,
                "ledger": main,
            }
            if account is not None:
                entry["joinDate"] = format_time(account.joined)
            if subs:
                entry["subLedgers"] = subs
            programs[str(program.id)] = entry
    body: Body = {"programs": programs}
    if cards:
        body["cards"] = [card_json(card, at, deltas) for card in cards]
    return body


def balance_json(value: Balance) -> Body:
    """LoyaltyBalance."""
    return {
        "activePoints": _number(value.active),
        "pendingPoints": _number(value.pending),
        "spentPoints": _number(value.spent),
        "expiredPoints": _number(value.expired),
        "negativePoints": _number(value.negative),
    }


def balance_with_tier_json(
    program: LoyaltyProgramSpec, value: Balance, *, tiers: bool, projected: bool
) -> Body:
    """LoyaltyBalanceWithTier (tier fields only for programs with tiers, when asked for)."""
    body = balance_json(value)
    if not program.tiers:
        return body
    index = program.tier_index(value.active)
    if tiers:
        following = 0 if index is None else index + 1
        if index is not None:
            body["currentTier"] = tier_json(program, index)
        if following < len(program.tiers):
            body["nextTierName"] = program.tiers[following].name
            body["pointsToNextTier"] = _number(program.tiers[following].min_points - value.active)
    if projected:
        projection: Body = {"projectedActivePoints": _number(value.active)}
        if index is not None:
            projection["projectedTierName"] = program.tiers[index].name
            projection["stayInTierPoints"] = 0
        body["projectedTier"] = projection
    return body


def _start(tx: Transaction) -> str:
    if tx.awaits_activation:
        return "on_action"
    return format_time(tx.start) if tx.start is not None else "immediate"


def _expiry(tx: Transaction) -> str:
    return format_time(tx.expiry) if tx.expiry is not None else "unlimited"


def transaction_json(tx: Transaction, *, card: bool = False) -> Body:
    """LedgerTransactionLogEntryIntegrationAPI (CardLedgerTransactionLogEntryIntegrationAPI with
    ``card``)."""
    body: Body = {
        "transactionUUID": tx.uuid,
        "created": format_time(tx.created),
        "programId": tx.program_id,
        "type": tx.kind,
        "name": tx.name[:255],
        "startDate": _start(tx),
        "expiryDate": _expiry(tx),
        "subledgerId": tx.subledger_id,
        "amount": _number(tx.amount),
        "id": tx.id,
    }
    if card and tx.card is not None:
        body["cardIdentifier"] = tx.card
    if tx.session_id is not None:
        body["customerSessionId"] = tx.session_id[:255]
    if tx.ruleset_id is not None:
        body["rulesetId"] = tx.ruleset_id
    if tx.rule_name is not None:
        body["ruleName"] = tx.rule_name
    if tx.overdraft > 0:
        body["flags"] = {"createsNegativeBalance": True}
    if tx.awaits_activation and tx.validity_days is not None:
        body["validityDuration"] = f"{tx.validity_days}D"
    return body


def points_json(tx: Transaction, *, card: bool = False) -> Body:
    """LedgerPointsEntryIntegrationAPI (CardLedgerPointsEntryIntegrationAPI with ``card``):
    the unspent points of one addition."""
    body: Body = {
        "id": tx.id,
        "transactionUUID": tx.uuid,
        "created": format_time(tx.created),
        "programId": tx.program_id,
        "name": tx.name[:255],
        "startDate": _start(tx),
        "expiryDate": _expiry(tx),
        "subledgerId": tx.subledger_id,
        "amount": _number(tx.remaining),
    }
    if card and tx.profile_id is not None:
        body["customerProfileID"] = tx.profile_id
    if tx.session_id is not None:
        body["customerSessionId"] = tx.session_id[:255]
    if tx.awaits_activation and tx.validity_days is not None:
        body["validityDuration"] = f"{tx.validity_days}D"
    return body


def ledger_entry_json(tx: Transaction, card: CardRecord | None) -> Body:
    """LoyaltyLedgerEntry (activateLoyaltyPoints)."""
    body: Body = {
        "created": format_time(tx.created),
        "programID": tx.program_id,
        "type": tx.kind,
        "amount": _number(tx.amount),
        "name": tx.name,
        "subLedgerID": tx.subledger_id,
        "archived": False,
    }
    if tx.profile_id is not None:
        body["customerProfileID"] = tx.profile_id
    if card is not None:
        body["cardID"] = card.id
    if tx.session_id is not None:
        body["customerSessionID"] = tx.session_id
    if tx.event_id is not None:
        body["eventID"] = tx.event_id
    add_times(body, startDate=tx.start, expiryDate=tx.expiry)
    return body

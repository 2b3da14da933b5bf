"""The bodies of the notifications the emulator sends, with the field names of Talon.One's
notification schemas (docs/notifications.md lists them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from talon_one_emulator.store.loyalty_ledger import Transaction
from talon_one_emulator.times import format_time

__all__ = ["coupons_created", "points_changed", "strikethrough_updates"]

Body = dict[str, Any]


def strikethrough_updates(
    *,
    application_id: int,
    catalog_id: int,
    catalog_version: int,
    trigger_id: int,
    priced: Sequence[tuple[str, float]],
    stamp: str,
    batch_size: int,
) -> Iterator[Body]:
    """``StrikethroughPrice`` notifications for the items a catalog sync priced, in batches.
    The emulator runs no strikethrough rules: ``effects`` is empty."""
    batches = [priced[at : at + batch_size] for at in range(0, len(priced), batch_size)]
    trigger = {
        "id": trigger_id,
        "type": "CATALOG_SYNC",
        "triggeredAt": stamp,
        "totalAffectedItems": len(priced),
        "payload": {"catalogId": catalog_id, "catalogVersion": catalog_version},
    }
    for number, batch in enumerate(batches, start=1):
        yield {
            "applicationId": application_id,
            "currentBatch": number,
            "totalBatches": len(batches),
            "trigger": trigger,
            "changedItems": [
                {
                    "id": trigger_id,
                    "catalogId": catalog_id,
                    "sku": sku,
                    "version": catalog_version,
                    "price": price,
                    "evaluatedAt": stamp,
                    "effects": [],
                }
                for sku, price in batch
            ],
            "NotificationType": "StrikethroughPrice",
            "sentAt": stamp,
        }


def points_changed(tx: Transaction, *, profiles: Sequence[str] = (), per_card: int = 0) -> Body:
    """A ``LoyaltyPoints{Added,Deducted}`` notification for one ledger transaction (or the
    ``LoyaltyCardPoints…`` one, for a card), made by the Rule Engine."""
    added = tx.kind == "addition"
    card = tx.card is not None
    body: Body = {
        "EmployeeName": "",
        "LoyaltyProgramID": tx.program_id,
        "NotificationType": ("LoyaltyCardPoints" if card else "LoyaltyPoints")
        + ("Added" if added else "Deducted"),
        "SessionIntegrationID": tx.session_id or "",
        "SubledgerID": tx.subledger_id,
        "TypeOfChange": "rule_engine",
        "UserID": 0,
        "Amount": tx.amount,
        "Operation": "addition" if added else "deduction",
        "Reason": tx.name,
        "TransactionUUID": tx.uuid,
    }
    if card:
        body["CardIdentifier"] = tx.card
        body["ProfileIntegrationIDs"] = list(profiles)
        body["UsersPerCardLimit"] = per_card
    else:
        body["ProfileIntegrationID"] = tx.profile_id
    if tx.start is not None:
        body["StartDate"] = format_time(tx.start)
    if tx.expiry is not None:
        body["ExpiryDate"] = format_time(tx.expiry)
    return body


def coupons_created(coupons: Sequence[Body], *, application_id: int) -> Body:
    """A ``CouponCreated`` notification for the coupons one evaluation created."""
    return {
        "TypeOfChange": "rule_engine",
        "Operation": "CouponCreated",
        "EmployeeName": "",
        "NotificationType": "CouponCreated",
        "totalResultSize": len(coupons),
        "data": [{**coupon, "ApplicationId": application_id} for coupon in coupons],
    }

"""Request bodies of the loyalty operations, as strict pydantic models mirroring the SDK's.

Strict types, the SDK's limits and enums; unknown keys are ignored, as the SDK ignores them.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CARD_IDENTIFIER_PATTERN",
    "ActivateLoyaltyPoints",
    "DeleteLoyaltyTransactionsRequest",
    "GenerateLoyaltyCard",
    "LoyaltyCardRegistration",
]

# Loyalty card identifiers, as the SDK's LoyaltyCard validates them.
CARD_IDENTIFIER_PATTERN = r"^[A-Za-z0-9_-]*$"


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=False)


class ActivateLoyaltyPoints(_Body):
    transaction_uuids: (
        Annotated[list[Annotated[UUID, Field(strict=False)]], Field(min_length=1, max_length=50)]
        | None
    ) = Field(default=None, alias="transactionUUIDs")
    session_id: Annotated[str, Field(min_length=1)] | None = Field(default=None, alias="sessionId")


class DeleteLoyaltyTransactionsRequest(_Body):
    scope: Literal["AllSubledgers", "SelectedSubledgers"]
    subledger_ids: list[str] | None = Field(default=None, alias="subledgerIds")


class GenerateLoyaltyCard(_Body):
    status: Literal["active", "inactive"] = "active"
    customer_profile_ids: list[str] | None = Field(default=None, alias="customerProfileIds")
    card_identifier: (
        Annotated[str, Field(min_length=4, max_length=108, pattern=CARD_IDENTIFIER_PATTERN)] | None
    ) = Field(default=None, alias="cardIdentifier")


class LoyaltyCardRegistration(_Body):
    integration_id: str = Field(alias="integrationId")

"""Request bodies of the emulated operations, as strict pydantic models.

The constraints mirror the official SDK models (strict types, ``quantity >= 1``, non-empty
``sku``, coupon codes of at most 100 characters, at most one loyalty card and five identifiers,
enums for ``state`` and ``responseContent``) plus the documented server-side cart limits. Keys the
models do not know are ignored, as the SDK does. Read-only fields a client may echo back
(``position``, ``returnedQuantity``, ...) are ignored too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_BULK_PROFILES",
    "MAX_CART_ITEMS",
    "MAX_CART_QUANTITY",
    "AdditionalCost",
    "AdvancedEventResponseContent",
    "CartItem",
    "CustomerProfileIntegrationRequestV2",
    "IntegrationEventV2Request",
    "IntegrationEventV3Request",
    "IntegrationRequest",
    "MultipleCustomerProfileIntegrationRequest",
    "MultipleCustomerProfileIntegrationRequestItem",
    "NewCustomerSessionV2",
    "NewReturn",
    "Product",
    "ProfileResponseContent",
    "ReturnIntegrationRequest",
    "ReturnResponseContent",
    "ReturnedCartItem",
    "SessionResponseContent",
    "SessionState",
]

MAX_CART_ITEMS = 1000
MAX_CART_QUANTITY = 10_000
MAX_BULK_PROFILES = 1000

SessionState = Literal["open", "closed", "partially_returned", "cancelled"]
# The parts of a session's answer; a session update and a return ask for them and more (the
# nested Literals flatten, in this order, which is the SDK's).
_SessionParts = Literal[
    "customerSession",
    "customerProfile",
    "coupons",
    "triggeredCampaigns",
    "referral",
    "loyalty",
    "event",
]
SessionResponseContent = Literal[
    _SessionParts, "awardedGiveaways", "ruleFailureReasons", "previousReturns"
]
ReturnResponseContent = Literal[_SessionParts, "previousReturns"]
ProfileResponseContent = Literal[
    "customerProfile",
    "triggeredCampaigns",
    "loyalty",
    "event",
    "awardedGiveaways",
    "ruleFailureReasons",
]

# trackEventV3 answers the event it stored as ``advancedEvent`` (the specification's enum; SDK 26.2
# still has ``event`` there, which the specification no longer lists).
AdvancedEventResponseContent = Literal[
    "customerProfile",
    "triggeredCampaigns",
    "loyalty",
    "advancedEvent",
    "awardedGiveaways",
    "ruleFailureReasons",
]

_Number = Annotated[float, Field(strict=True)]
_CouponCode = Annotated[str, Field(max_length=100)]
_StoreId = Annotated[str, Field(min_length=1, max_length=1000)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=False)


class AdditionalCost(_Body):
    price: _Number


class Product(_Body):
    name: str


class CartItem(_Body):
    name: str | None = None
    sku: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1)]
    price: _Number | None = None
    category: str | None = None
    product: Product | None = None
    weight: _Number | None = None
    height: _Number | None = None
    width: _Number | None = None
    length: _Number | None = None
    attributes: dict[str, Any] | None = None
    additional_costs: dict[str, AdditionalCost] | None = Field(
        default=None, alias="additionalCosts"
    )
    selected_price_type: str | None = Field(default=None, alias="selectedPriceType")


class NewCustomerSessionV2(_Body):
    profile_id: str | None = Field(default=None, alias="profileId")
    store_integration_id: _StoreId | None = Field(default=None, alias="storeIntegrationId")
    evaluable_campaign_ids: list[int] | None = Field(default=None, alias="evaluableCampaignIds")
    coupon_codes: list[_CouponCode] | None = Field(default=None, alias="couponCodes")
    referral_code: _CouponCode | None = Field(default=None, alias="referralCode")
    loyalty_cards: Annotated[list[str], Field(max_length=1)] | None = Field(
        default=None, alias="loyaltyCards"
    )
    # The schema default; the SDK always sends the field.
    state: SessionState = "open"
    cart_items: Annotated[list[CartItem], Field(max_length=MAX_CART_ITEMS)] | None = Field(
        default=None, alias="cartItems"
    )
    additional_costs: dict[str, AdditionalCost] | None = Field(
        default=None, alias="additionalCosts"
    )
    identifiers: Annotated[list[str], Field(max_length=5)] | None = None
    attributes: dict[str, Any] | None = None


class IntegrationRequest(_Body):
    customer_session: NewCustomerSessionV2 = Field(alias="customerSession")
    response_content: list[SessionResponseContent] | None = Field(
        default=None, alias="responseContent"
    )


class ReturnedCartItem(_Body):
    position: int | None = None
    quantity: int | None = None
    sku: Annotated[str, Field(min_length=1)] | None = None


class NewReturn(_Body):
    returned_cart_items: list[ReturnedCartItem] = Field(alias="returnedCartItems")


class ReturnIntegrationRequest(_Body):
    return_: NewReturn = Field(alias="return")
    response_content: list[ReturnResponseContent] | None = Field(
        default=None, alias="responseContent"
    )


class CustomerProfileIntegrationRequestV2(_Body):
    attributes: dict[str, Any] | None = None
    evaluable_campaign_ids: list[int] | None = Field(default=None, alias="evaluableCampaignIds")
    # Typed ``Any`` in the SDK; the spec shape is {adds: [int], deletes: [int]}. Not emulated yet.
    audiences_changes: Any = Field(default=None, alias="audiencesChanges")
    response_content: list[ProfileResponseContent] | None = Field(
        default=None, alias="responseContent"
    )


class MultipleCustomerProfileIntegrationRequestItem(_Body):
    integration_id: Annotated[str, Field(max_length=1000)] = Field(alias="integrationId")
    attributes: dict[str, Any] | None = None


class MultipleCustomerProfileIntegrationRequest(_Body):
    customer_profiles: (
        Annotated[
            list[MultipleCustomerProfileIntegrationRequestItem],
            Field(max_length=MAX_BULK_PROFILES),
        ]
        | None
    ) = Field(default=None, alias="customerProfiles")


class IntegrationEventV2Request(_Body):
    profile_id: str | None = Field(default=None, alias="profileId")
    store_integration_id: _StoreId | None = Field(default=None, alias="storeIntegrationId")
    evaluable_campaign_ids: list[int] | None = Field(default=None, alias="evaluableCampaignIds")
    type: Annotated[str, Field(min_length=1)]
    attributes: dict[str, Any] | None = None
    loyalty_cards: Annotated[list[str], Field(max_length=1)] | None = Field(
        default=None, alias="loyaltyCards"
    )
    response_content: list[ProfileResponseContent] | None = Field(
        default=None, alias="responseContent"
    )


class IntegrationEventV3Request(_Body):
    """An advanced event: a custom event with an ``integrationId`` of its own, maybe about a
    closed session (``connectedSessionId``).

    ``connectedSessionID`` is how SDK 26.2 spells the connection; it is read as the same field.
    """

    profile_id: str = Field(alias="profileId")
    store_integration_id: _StoreId | None = Field(default=None, alias="storeIntegrationId")
    evaluable_campaign_ids: list[int] | None = Field(default=None, alias="evaluableCampaignIds")
    type: Annotated[str, Field(min_length=1)]
    attributes: dict[str, Any] | None = None
    integration_id: Annotated[str, Field(min_length=1)] = Field(alias="integrationId")
    connected_session_id: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, alias="connectedSessionId"
    )
    sdk_connected_session_id: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, alias="connectedSessionID"
    )
    loyalty_cards: Annotated[list[str], Field(max_length=1)] | None = Field(
        default=None, alias="loyaltyCards"
    )
    response_content: list[AdvancedEventResponseContent] | None = Field(
        default=None, alias="responseContent"
    )

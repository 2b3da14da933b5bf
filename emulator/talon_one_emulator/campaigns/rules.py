"""The conditions and effects of campaign rules, as the campaign file writes them.

Each is a mapping with exactly one key (``- couponValid: true``, ``- setDiscount: {...}``); each
key is a small typed model here, so :mod:`talon_one_emulator.rules.conditions` and
:mod:`talon_one_emulator.rules.effects` can
compile it by its class. :data:`Condition` and :data:`EffectSpec` pick the model by the key. The
loyalty effects are in :mod:`talon_one_emulator.campaigns.loyalty`;
:mod:`talon_one_emulator.campaigns.file` assembles
rules into campaigns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, model_validator

from talon_one_emulator.campaigns.declarations import Spec, one_or_many
from talon_one_emulator.campaigns.loyalty import AddLoyaltyPoints, DeductLoyaltyPoints
from talon_one_emulator.models.integration import SessionState

__all__ = [
    "AddFreeItem",
    "AddFreeItemSpec",
    "AttributeMatch",
    "AwardGiveaway",
    "AwardGiveawaySpec",
    "CartSubtotalAtLeast",
    "CartSubtotalBelow",
    "Condition",
    "CouponValid",
    "CreateCoupon",
    "CreateCouponSpec",
    "CreateReferral",
    "CreateReferralSpec",
    "CustomEffect",
    "CustomEffectSpec",
    "EffectSpec",
    "EventAttributeEquals",
    "EventTypeIs",
    "FirstSession",
    "ItemCategoryPresent",
    "ItemQuantityAtLeast",
    "ItemQuantitySpec",
    "ItemSkuPresent",
    "ProfileAttributeEquals",
    "ReferralValid",
    "SessionAttributeEquals",
    "SessionStateIs",
    "SetDiscount",
    "SetDiscountPerAdditionalCost",
    "SetDiscountPerAdditionalCostSpec",
    "SetDiscountPerItem",
    "SetDiscountPerItemSpec",
    "SetDiscountSpec",
    "ShowNotification",
    "ShowNotificationSpec",
    "StoreIs",
    "UpdateAttribute",
    "UpdateAttributeSpec",
]

# A YAML scalar or a list of scalars: ``itemSkuPresent: SKU-1`` or ``itemSkuPresent: [A, B]``.
_Strings = Annotated[tuple[str, ...], BeforeValidator(one_or_many), Field(min_length=1)]
_States = Annotated[tuple[SessionState, ...], BeforeValidator(one_or_many), Field(min_length=1)]


# --- conditions -------------------------------------------------------------------------------


class CouponValid(Spec):
    """The session carries a usable coupon of this campaign; the rule then emits acceptCoupon."""

    coupon_valid: Literal[True] = Field(alias="couponValid")


class CartSubtotalAtLeast(Spec):
    amount: float = Field(alias="cartSubtotalAtLeast")


class ItemSkuPresent(Spec):
    skus: _Strings = Field(alias="itemSkuPresent")


class ItemCategoryPresent(Spec):
    categories: _Strings = Field(alias="itemCategoryPresent")


class EventTypeIs(Spec):
    types: _Strings = Field(alias="eventType")


class AttributeMatch(Spec):
    attribute: str
    value: Any


class ProfileAttributeEquals(Spec):
    match: AttributeMatch = Field(alias="profileAttributeEquals")


class FirstSession(Spec):
    first: bool = Field(alias="firstSession")


class SessionStateIs(Spec):
    states: _States = Field(alias="sessionState")


class ReferralValid(Spec):
    """The session carries a usable referral code of this campaign; the rule then emits
    acceptReferral."""

    referral_valid: Literal[True] = Field(alias="referralValid")


class CartSubtotalBelow(Spec):
    amount: float = Field(alias="cartSubtotalBelow")


class ItemQuantitySpec(Spec):
    """At least ``quantity`` units in the cart of the given SKUs or categories (any item)."""

    quantity: Annotated[int, Field(ge=1)]
    skus: _Strings | None = Field(default=None, alias="sku")
    categories: _Strings | None = Field(default=None, alias="category")


class ItemQuantityAtLeast(Spec):
    spec: ItemQuantitySpec = Field(alias="itemQuantityAtLeast")


class SessionAttributeEquals(Spec):
    match: AttributeMatch = Field(alias="sessionAttributeEquals")


class EventAttributeEquals(Spec):
    match: AttributeMatch = Field(alias="eventAttributeEquals")


class StoreIs(Spec):
    stores: _Strings = Field(alias="storeIntegrationId")


# --- effects ----------------------------------------------------------------------------------


class _PercentageOrAmount(Spec):
    percentage: Annotated[float, Field(gt=0, le=100)] | None = None
    amount: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.percentage is None) == (self.amount is None):
            raise ValueError("give exactly one of percentage or amount")
        return self


class SetDiscountSpec(_PercentageOrAmount):
    """A session discount: ``percentage`` of the session total, or a fixed ``amount``.

    ``scope`` (emitted when given) narrows it to the cart items or the additional costs.
    """

    name: Annotated[str, Field(min_length=1)]
    scope: Literal["sessionTotal", "cartItems", "additionalCosts"] | None = None


class SetDiscountPerItemSpec(_PercentageOrAmount):
    """A percentage or a fixed amount off each matching cart item (all without a filter).

    A fixed ``amount`` is per unit: without flattening a cart item gets amount times quantity.
    """

    name: Annotated[str, Field(min_length=1)]
    skus: _Strings | None = Field(default=None, alias="sku")
    categories: _Strings | None = Field(default=None, alias="category")


class SetDiscountPerAdditionalCostSpec(_PercentageOrAmount):
    """A discount on a session-level additional cost (declared in ``additionalCosts``)."""

    name: Annotated[str, Field(min_length=1)]
    additional_cost: Annotated[str, Field(min_length=1)] = Field(alias="additionalCost")


class AddFreeItemSpec(Spec):
    sku: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    desired_quantity: Annotated[int, Field(ge=1)] | None = Field(
        default=None, alias="desiredQuantity"
    )


class CreateCouponSpec(Spec):
    """Create a coupon of this campaign for the customer (or the referral's advocate)."""

    prefix: Annotated[str, Field(max_length=40)] = ""
    usage_limit: Annotated[int, Field(ge=0, le=999_999, alias="usageLimit")] = 1
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")
    recipient: Literal["profile", "advocate"] = "profile"


class CreateReferralSpec(Spec):
    """Create a referral code with the customer as advocate."""

    campaign_id: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="campaignId")
    """The referral campaign (default: this one)."""
    usage_limit: Annotated[int, Field(ge=0, le=999_999)] | None = Field(
        default=None, alias="usageLimit"
    )
    """Default: the referral campaign's ``referrals.usageLimit``."""
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")


class AwardGiveawaySpec(Spec):
    pool_id: Annotated[int, Field(ge=1)] = Field(alias="poolId")


class ShowNotificationSpec(Spec):
    notification_type: str = Field(default="Info", alias="notificationType")
    title: str
    body: str


class CustomEffectSpec(Spec):
    effect_id: int = Field(alias="effectId")
    name: Annotated[str, Field(min_length=1)]
    payload: dict[str, Any] = Field(default_factory=dict)


class UpdateAttributeSpec(Spec):
    """``path`` like ``Profile.Attributes.tier`` or ``Session.Attributes.channel``."""

    path: Annotated[str, Field(pattern=r"^(Profile|Session)\.Attributes\.[^.]+$")]
    value: Any


class SetDiscount(Spec):
    spec: SetDiscountSpec = Field(alias="setDiscount")


class SetDiscountPerItem(Spec):
    spec: SetDiscountPerItemSpec = Field(alias="setDiscountPerItem")


class SetDiscountPerAdditionalCost(Spec):
    spec: SetDiscountPerAdditionalCostSpec = Field(alias="setDiscountPerAdditionalCost")


class AddFreeItem(Spec):
    spec: AddFreeItemSpec = Field(alias="addFreeItem")


class CreateCoupon(Spec):
    spec: CreateCouponSpec = Field(alias="createCoupon")


class CreateReferral(Spec):
    spec: CreateReferralSpec = Field(alias="createReferral")


class AwardGiveaway(Spec):
    spec: AwardGiveawaySpec = Field(alias="awardGiveaway")


class ShowNotification(Spec):
    spec: ShowNotificationSpec = Field(alias="showNotification")


class CustomEffect(Spec):
    spec: CustomEffectSpec = Field(alias="customEffect")


class UpdateAttribute(Spec):
    spec: UpdateAttributeSpec = Field(alias="updateAttribute")


def _single_key(value: Any) -> str | None:
    """The tag of a one-key mapping (YAML) or of an already built model."""
    if isinstance(value, Mapping):
        return str(next(iter(value))) if len(value) == 1 else None
    if isinstance(value, BaseModel):
        field = next(iter(type(value).model_fields.values()))
        return field.alias
    return None


def _require_one_key(value: Any) -> Any:
    if not isinstance(value, Mapping | BaseModel):
        # pydantic turns ValueError (not TypeError) into a readable validation error.
        raise ValueError(  # noqa: TRY004
            f"each entry is a mapping with exactly one key, got {value!r}"
        )
    if isinstance(value, Mapping) and len(value) != 1:
        keys = ", ".join(str(key) for key in value) or "none"
        raise ValueError(f"each entry is a mapping with exactly one key, got keys: {keys}")
    return value


Condition = Annotated[
    Annotated[CouponValid, Tag("couponValid")]
    | Annotated[CartSubtotalAtLeast, Tag("cartSubtotalAtLeast")]
    | Annotated[ItemSkuPresent, Tag("itemSkuPresent")]
    | Annotated[ItemCategoryPresent, Tag("itemCategoryPresent")]
    | Annotated[EventTypeIs, Tag("eventType")]
    | Annotated[ProfileAttributeEquals, Tag("profileAttributeEquals")]
    | Annotated[FirstSession, Tag("firstSession")]
    | Annotated[SessionStateIs, Tag("sessionState")]
    | Annotated[ReferralValid, Tag("referralValid")]
    | Annotated[CartSubtotalBelow, Tag("cartSubtotalBelow")]
    | Annotated[ItemQuantityAtLeast, Tag("itemQuantityAtLeast")]
    | Annotated[SessionAttributeEquals, Tag("sessionAttributeEquals")]
    | Annotated[EventAttributeEquals, Tag("eventAttributeEquals")]
    | Annotated[StoreIs, Tag("storeIntegrationId")],
    Discriminator(_single_key),
    BeforeValidator(_require_one_key),
]

EffectSpec = Annotated[
    Annotated[SetDiscount, Tag("setDiscount")]
    | Annotated[SetDiscountPerItem, Tag("setDiscountPerItem")]
    | Annotated[ShowNotification, Tag("showNotification")]
    | Annotated[AddLoyaltyPoints, Tag("addLoyaltyPoints")]
    | Annotated[DeductLoyaltyPoints, Tag("deductLoyaltyPoints")]
    | Annotated[CustomEffect, Tag("customEffect")]
    | Annotated[UpdateAttribute, Tag("updateAttribute")]
    | Annotated[SetDiscountPerAdditionalCost, Tag("setDiscountPerAdditionalCost")]
    | Annotated[AddFreeItem, Tag("addFreeItem")]
    | Annotated[CreateCoupon, Tag("createCoupon")]
    | Annotated[CreateReferral, Tag("createReferral")]
    | Annotated[AwardGiveaway, Tag("awardGiveaway")],
    Discriminator(_single_key),
    BeforeValidator(_require_one_key),
]

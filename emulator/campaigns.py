"""The campaign file: declared attributes, event types, loyalty programs and campaigns.

The YAML format is documented in ``docs/emulator.md``. Conditions and effects are written as
mappings with exactly one key (``- couponValid: true``, ``- setDiscount: {...}``); each key is a
small typed model here, so :mod:`emulator.rules` can match on the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from emulator.declarations import (
    AdditionalCostSpec,
    ApplicationSettings,
    BudgetSpec,
    CatalogSpec,
    GiveawayPoolSpec,
    ReferralSettings,
    Timestamp,
)
from emulator.errors import CampaignFileError
from emulator.loyalty_declarations import (
    AchievementSpec,
    AddLoyaltyPoints,
    AddLoyaltyPointsSpec,
    DeductLoyaltyPoints,
    DeductLoyaltyPointsSpec,
    LoyaltyProgramSpec,
    check_loyalty_effect,
)
from emulator.models import SessionState

__all__ = [
    "AchievementSpec",
    "AddFreeItem",
    "AddFreeItemSpec",
    "AddLoyaltyPoints",
    "AddLoyaltyPointsSpec",
    "AttributeDeclarations",
    "AttributeMatch",
    "AttributeType",
    "AwardGiveaway",
    "AwardGiveawaySpec",
    "CampaignSet",
    "CampaignSpec",
    "CartSubtotalAtLeast",
    "CartSubtotalBelow",
    "Condition",
    "CouponSpec",
    "CouponValid",
    "CreateCoupon",
    "CreateCouponSpec",
    "CreateReferral",
    "CreateReferralSpec",
    "CustomEffect",
    "CustomEffectSpec",
    "DeductLoyaltyPoints",
    "DeductLoyaltyPointsSpec",
    "EffectSpec",
    "EventAttributeEquals",
    "EventTypeIs",
    "EventTypeSpec",
    "FirstSession",
    "ItemCategoryPresent",
    "ItemQuantityAtLeast",
    "ItemQuantitySpec",
    "ItemSkuPresent",
    "LoyaltyProgramSpec",
    "ProfileAttributeEquals",
    "ReferralValid",
    "RuleSpec",
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
    "load_campaigns",
    "parse_campaigns",
]

AttributeType = Literal["string", "number", "boolean", "time", "list"]

# Event types Talon.One fires itself; a rule may match them with ``eventType``.
BUILT_IN_EVENT_TYPES = frozenset(
    {
        "talon_session_created",
        "talon_session_updated",
        "talon_session_closed",
        "talon_session_cancelled",
        "talon_session_revoked",
        "talon_session_partially_returned",
        "talon_session_reopened",
        "talon_profile_created",
        "talon_profile_updated",
    }
)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _as_tuple(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


# A YAML scalar or a list of scalars: ``itemSkuPresent: SKU-1`` or ``itemSkuPresent: [A, B]``.
_Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple), Field(min_length=1)]
_States = Annotated[tuple[SessionState, ...], BeforeValidator(_as_tuple), Field(min_length=1)]


class AttributeDeclarations(_Spec):
    """Custom attributes per entity: name → type. Undeclared names are rejected with 400."""

    customer_session: dict[str, AttributeType] = Field(
        default_factory=dict, alias="CustomerSession"
    )
    cart_item: dict[str, AttributeType] = Field(default_factory=dict, alias="CartItem")
    customer_profile: dict[str, AttributeType] = Field(
        default_factory=dict, alias="CustomerProfile"
    )
    event: dict[str, AttributeType] = Field(default_factory=dict, alias="Event")


class EventTypeSpec(_Spec):
    """A custom event type; its attributes are allowed in addition to ``attributes.Event``."""

    description: str | None = None
    attributes: dict[str, AttributeType] = Field(default_factory=dict)


class CouponSpec(_Spec):
    # The SDK's IntegrationCoupon requires at least 4 characters.
    code: Annotated[str, Field(min_length=4, max_length=100)]
    usage_limit: Annotated[int, Field(ge=0, le=999_999, alias="usageLimit")] = 0
    start_date: Timestamp | None = Field(default=None, alias="startDate")
    expiry_date: Timestamp | None = Field(default=None, alias="expiryDate")
    recipient_integration_id: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        default=None, alias="recipientIntegrationId"
    )
    """Only this customer may redeem the coupon."""
    reservation_mandatory: bool = Field(default=False, alias="isReservationMandatory")
    """The coupon is only valid for customers it was reserved for (createCouponReservation)."""
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.start_date and self.expiry_date and self.expiry_date <= self.start_date:
            raise ValueError(f"coupon {self.code!r}: expiryDate must be after startDate")
        return self


# --- conditions -------------------------------------------------------------------------------


class CouponValid(_Spec):
    """The session carries a usable coupon of this campaign; the rule then emits acceptCoupon."""

    coupon_valid: Literal[True] = Field(alias="couponValid")


class CartSubtotalAtLeast(_Spec):
    amount: float = Field(alias="cartSubtotalAtLeast")


class ItemSkuPresent(_Spec):
    skus: _Strings = Field(alias="itemSkuPresent")


class ItemCategoryPresent(_Spec):
    categories: _Strings = Field(alias="itemCategoryPresent")


class EventTypeIs(_Spec):
    types: _Strings = Field(alias="eventType")


class AttributeMatch(_Spec):
    attribute: str
    value: Any


class ProfileAttributeEquals(_Spec):
    match: AttributeMatch = Field(alias="profileAttributeEquals")


class FirstSession(_Spec):
    first: bool = Field(alias="firstSession")


class SessionStateIs(_Spec):
    states: _States = Field(alias="sessionState")


class ReferralValid(_Spec):
    """The session carries a usable referral code of this campaign; the rule then emits
    acceptReferral."""

    referral_valid: Literal[True] = Field(alias="referralValid")


class CartSubtotalBelow(_Spec):
    amount: float = Field(alias="cartSubtotalBelow")


class ItemQuantitySpec(_Spec):
    """At least ``quantity`` units in the cart of the given SKUs or categories (any item)."""

    quantity: Annotated[int, Field(ge=1)]
    skus: _Strings | None = Field(default=None, alias="sku")
    categories: _Strings | None = Field(default=None, alias="category")


class ItemQuantityAtLeast(_Spec):
    spec: ItemQuantitySpec = Field(alias="itemQuantityAtLeast")


class SessionAttributeEquals(_Spec):
    match: AttributeMatch = Field(alias="sessionAttributeEquals")


class EventAttributeEquals(_Spec):
    match: AttributeMatch = Field(alias="eventAttributeEquals")


class StoreIs(_Spec):
    stores: _Strings = Field(alias="storeIntegrationId")


# --- effects ----------------------------------------------------------------------------------


class _PercentageOrAmount(_Spec):
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


class AddFreeItemSpec(_Spec):
    sku: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    desired_quantity: Annotated[int, Field(ge=1)] | None = Field(
        default=None, alias="desiredQuantity"
    )


class CreateCouponSpec(_Spec):
    """Create a coupon of this campaign for the customer (or the referral's advocate)."""

    prefix: Annotated[str, Field(max_length=40)] = ""
    usage_limit: Annotated[int, Field(ge=0, le=999_999, alias="usageLimit")] = 1
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")
    recipient: Literal["profile", "advocate"] = "profile"


class CreateReferralSpec(_Spec):
    """Create a referral code with the customer as advocate."""

    campaign_id: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="campaignId")
    """The referral campaign (default: this one)."""
    usage_limit: Annotated[int, Field(ge=0, le=999_999)] | None = Field(
        default=None, alias="usageLimit"
    )
    """Default: the referral campaign's ``referrals.usageLimit``."""
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")


class AwardGiveawaySpec(_Spec):
    pool_id: Annotated[int, Field(ge=1)] = Field(alias="poolId")


class ShowNotificationSpec(_Spec):
    notification_type: str = Field(default="Info", alias="notificationType")
    title: str
    body: str


class CustomEffectSpec(_Spec):
    effect_id: int = Field(alias="effectId")
    name: Annotated[str, Field(min_length=1)]
    payload: dict[str, Any] = Field(default_factory=dict)


class UpdateAttributeSpec(_Spec):
    """``path`` like ``Profile.Attributes.tier`` or ``Session.Attributes.channel``."""

    path: Annotated[str, Field(pattern=r"^(Profile|Session)\.Attributes\.[^.]+$")]
    value: Any


class SetDiscount(_Spec):
    spec: SetDiscountSpec = Field(alias="setDiscount")


class SetDiscountPerItem(_Spec):
    spec: SetDiscountPerItemSpec = Field(alias="setDiscountPerItem")


class SetDiscountPerAdditionalCost(_Spec):
    spec: SetDiscountPerAdditionalCostSpec = Field(alias="setDiscountPerAdditionalCost")


class AddFreeItem(_Spec):
    spec: AddFreeItemSpec = Field(alias="addFreeItem")


class CreateCoupon(_Spec):
    spec: CreateCouponSpec = Field(alias="createCoupon")


class CreateReferral(_Spec):
    spec: CreateReferralSpec = Field(alias="createReferral")


class AwardGiveaway(_Spec):
    spec: AwardGiveawaySpec = Field(alias="awardGiveaway")


class ShowNotification(_Spec):
    spec: ShowNotificationSpec = Field(alias="showNotification")


class CustomEffect(_Spec):
    spec: CustomEffectSpec = Field(alias="customEffect")


class UpdateAttribute(_Spec):
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


class RuleSpec(_Spec):
    name: Annotated[str, Field(min_length=1)]
    conditions: tuple[Condition, ...] = ()
    effects: Annotated[tuple[EffectSpec, ...], Field(min_length=1)]

    @property
    def needs_coupon(self) -> bool:
        return any(isinstance(condition, CouponValid) for condition in self.conditions)

    @property
    def needs_referral(self) -> bool:
        return any(isinstance(condition, ReferralValid) for condition in self.conditions)


class CampaignSpec(_Spec):
    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1)]
    ruleset_id: Annotated[int, Field(ge=1, alias="rulesetId")]
    description: str | None = None
    tags: tuple[str, ...] = ()
    # A disabled campaign is only evaluated when a dry request lists it in evaluableCampaignIds.
    enabled: bool = True
    coupons: tuple[CouponSpec, ...] = ()
    referrals: ReferralSettings | None = None
    """Present for referral campaigns (createReferral, referralValid)."""
    budgets: BudgetSpec = Field(default_factory=BudgetSpec)
    rules: Annotated[tuple[RuleSpec, ...], Field(min_length=1)]

    @property
    def creates_coupons(self) -> bool:
        return any(isinstance(e, CreateCoupon) for rule in self.rules for e in rule.effects)

    @property
    def features(self) -> list[str]:
        """Talon.One's campaign features (``Campaign.features``)."""
        features = []
        if self.coupons or self.creates_coupons or any(rule.needs_coupon for rule in self.rules):
            features.append("coupons")
        if self.referrals is not None:
            features.append("referrals")
        if any(isinstance(e, AwardGiveaway) for rule in self.rules for e in rule.effects):
            features.append("giveaways")
        return features


class CampaignSet(_Spec):
    """Everything the emulated Application knows: the parsed campaign file."""

    attributes: AttributeDeclarations = Field(default_factory=AttributeDeclarations)
    event_types: dict[str, EventTypeSpec] = Field(default_factory=dict, alias="eventTypes")
    loyalty_programs: tuple[LoyaltyProgramSpec, ...] = Field(default=(), alias="loyaltyPrograms")
    application: ApplicationSettings = Field(default_factory=ApplicationSettings)
    additional_costs: tuple[AdditionalCostSpec, ...] = Field(default=(), alias="additionalCosts")
    catalogs: tuple[CatalogSpec, ...] = ()
    giveaway_pools: tuple[GiveawayPoolSpec, ...] = Field(default=(), alias="giveawayPools")
    achievements: tuple[AchievementSpec, ...] = ()
    campaigns: tuple[CampaignSpec, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique("campaign id", [campaign.id for campaign in self.campaigns])
        _unique("loyalty program id", [program.id for program in self.loyalty_programs])
        codes = [coupon.code.lower() for c in self.campaigns for coupon in c.coupons]
        _unique("coupon code (case-insensitive)", codes)
        _unique("additional cost id", [cost.id for cost in self.additional_costs])
        _unique("additional cost name", [cost.name for cost in self.additional_costs])
        _unique("catalog id", [catalog.id for catalog in self.catalogs])
        _unique("giveaway pool id", [pool.id for pool in self.giveaway_pools])
        _unique("giveaway code", [code for pool in self.giveaway_pools for code in pool.codes])
        programs = {program.id: program for program in self.loyalty_programs}
        _unique("achievement id", [achievement.id for achievement in self.achievements])
        campaign_ids = {campaign.id for campaign in self.campaigns}
        for achievement in self.achievements:
            if achievement.campaign_id not in campaign_ids:
                raise ValueError(
                    f"achievement {achievement.id}: unknown campaign {achievement.campaign_id}"
                )
        for name in self.event_types:
            if name.startswith("talon_"):
                raise ValueError(f"event type {name!r} uses the reserved prefix talon_")
        known_events = BUILT_IN_EVENT_TYPES | self.event_types.keys()
        for campaign in self.campaigns:
            for rule in campaign.rules:
                where = f"campaign {campaign.id} rule {rule.name!r}"
                if rule.needs_coupon and not campaign.coupons and not campaign.creates_coupons:
                    raise ValueError(f"{where}: couponValid in a campaign without coupons")
                if rule.needs_referral and campaign.referrals is None:
                    raise ValueError(f"{where}: referralValid in a campaign without referrals")
                for condition in rule.conditions:
                    if isinstance(condition, EventTypeIs):
                        for event_type in condition.types:
                            if event_type not in known_events:
                                raise ValueError(f"{where}: unknown event type {event_type!r}")
                    if isinstance(condition, SessionAttributeEquals):
                        name = condition.match.attribute
                        if name not in self.attributes.customer_session:
                            raise ValueError(f"{where}: undeclared session attribute {name!r}")
                for effect in rule.effects:
                    _check_effect(effect, where, programs, self.attributes)
                    self._check_promotion_effect(effect, where, campaign, rule)
        return self

    def _check_promotion_effect(
        self, effect: EffectSpec, where: str, campaign: CampaignSpec, rule: RuleSpec
    ) -> None:
        if isinstance(effect, SetDiscountPerAdditionalCost):
            cost = effect.spec.additional_cost
            if cost not in {declared.name for declared in self.additional_costs}:
                raise ValueError(f"{where}: undeclared additional cost {cost!r}")
        elif isinstance(effect, AwardGiveaway):
            if effect.spec.pool_id not in {pool.id for pool in self.giveaway_pools}:
                raise ValueError(f"{where}: unknown giveaway pool {effect.spec.pool_id}")
        elif isinstance(effect, CreateCoupon):
            if effect.spec.recipient == "advocate" and not rule.needs_referral:
                raise ValueError(f"{where}: a coupon for the advocate needs referralValid")
        elif isinstance(effect, CreateReferral):
            target_id = effect.spec.campaign_id or campaign.id
            target = next((c for c in self.campaigns if c.id == target_id), None)
            if target is None or target.referrals is None:
                raise ValueError(f"{where}: createReferral needs a referral campaign")


def _check_effect(
    effect: EffectSpec,
    where: str,
    programs: Mapping[int, LoyaltyProgramSpec],
    attributes: AttributeDeclarations,
) -> None:
    check_loyalty_effect(effect, where, programs)
    if isinstance(effect, UpdateAttribute):
        entity, _, name = effect.spec.path.split(".", 2)
        declared = (
            attributes.customer_profile if entity == "Profile" else attributes.customer_session
        )
        if name not in declared:
            raise ValueError(f"{where}: updateAttribute on undeclared attribute {name!r}")


def _unique(what: str, values: list[Any]) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what}: {value!r}")
        seen.add(value)


def parse_campaigns(document: Any, *, path: Path | None = None) -> CampaignSet:
    """Validate an already parsed YAML/JSON document.

    Raises:
        CampaignFileError: the document does not describe a valid campaign set.
    """
    if document is None:
        document = {}
    try:
        return CampaignSet.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        locations = [error["loc"] for error in errors]
        # A failing entry also makes its container look too short; report the entry only.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}"
            for error in errors
            if not any(
                len(other) > len(error["loc"]) and other[: len(error["loc"])] == error["loc"]
                for other in locations
            )
        )
        raise CampaignFileError(path, problems) from exc


def load_campaigns(path: Path | None = None) -> CampaignSet:
    """Load a campaign file; without ``path`` the packaged default campaigns.

    Raises:
        CampaignFileError: the file cannot be read, is not YAML, or is not a valid campaign set.
    """
    try:
        if path is None:
            text = resources.files("emulator").joinpath("campaigns/default.yaml").read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except OSError as exc:
        raise CampaignFileError(path, f"cannot read the file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CampaignFileError(path, f"not valid YAML: {exc}") from exc
    return parse_campaigns(document, path=path)

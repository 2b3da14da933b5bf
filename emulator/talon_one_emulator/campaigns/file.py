"""The campaign file: declared attributes, event types, loyalty programs and campaigns.

The YAML format is documented in ``docs/emulator.md``. :class:`CampaignSet` is the whole file,
checked for consistency as it is parsed (unique IDs and codes, rules that only name declared
programs, attributes, event types, costs and pools); :func:`load_campaigns` and
:func:`parse_campaigns` turn YAML or an already parsed document into one. The conditions and
effects of rules are in :mod:`talon_one_emulator.campaigns.rules`, the other parts of the file in
:mod:`talon_one_emulator.campaigns.declarations` and :mod:`talon_one_emulator.campaigns.loyalty`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, model_validator

from talon_one_emulator.campaigns.declarations import (
    AdditionalCostSpec,
    ApplicationSettings,
    BudgetSpec,
    CatalogSpec,
    GiveawayPoolSpec,
    ReferralSettings,
    Spec,
    Timestamp,
)
from talon_one_emulator.campaigns.loyalty import (
    AchievementSpec,
    LoyaltyProgramSpec,
    check_loyalty_effect,
)
from talon_one_emulator.campaigns.rules import (
    AwardGiveaway,
    Condition,
    CouponValid,
    CreateCoupon,
    CreateReferral,
    EffectSpec,
    EventTypeIs,
    ReferralValid,
    SessionAttributeEquals,
    SetDiscountPerAdditionalCost,
    UpdateAttribute,
)
from talon_one_emulator.errors import CampaignFileError

__all__ = [
    "AttributeDeclarations",
    "AttributeType",
    "CampaignSet",
    "CampaignSpec",
    "CouponSpec",
    "EventTypeSpec",
    "RuleSpec",
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


class AttributeDeclarations(Spec):
    """Custom attributes per entity: name → type. Undeclared names are rejected with 400."""

    customer_session: dict[str, AttributeType] = Field(
        default_factory=dict, alias="CustomerSession"
    )
    cart_item: dict[str, AttributeType] = Field(default_factory=dict, alias="CartItem")
    customer_profile: dict[str, AttributeType] = Field(
        default_factory=dict, alias="CustomerProfile"
    )
    event: dict[str, AttributeType] = Field(default_factory=dict, alias="Event")


class EventTypeSpec(Spec):
    """A custom event type; its attributes are allowed in addition to ``attributes.Event``."""

    description: str | None = None
    attributes: dict[str, AttributeType] = Field(default_factory=dict)


class CouponSpec(Spec):
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


class RuleSpec(Spec):
    name: Annotated[str, Field(min_length=1)]
    conditions: tuple[Condition, ...] = ()
    effects: Annotated[tuple[EffectSpec, ...], Field(min_length=1)]

    @property
    def needs_coupon(self) -> bool:
        return any(isinstance(condition, CouponValid) for condition in self.conditions)

    @property
    def needs_referral(self) -> bool:
        return any(isinstance(condition, ReferralValid) for condition in self.conditions)


class CampaignSpec(Spec):
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


class CampaignSet(Spec):
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
            text = (
                resources.files("talon_one_emulator")
                .joinpath("campaigns/default.yaml")
                .read_text("utf-8")
            )
        else:
            text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except OSError as exc:
        raise CampaignFileError(path, f"cannot read the file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CampaignFileError(path, f"not valid YAML: {exc}") from exc
    return parse_campaigns(document, path=path)

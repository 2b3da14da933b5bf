"""The campaign file's declarations around the campaigns: settings, costs, catalogs, pools, budgets.

These are the parts a real deployment configures in the Campaign Manager outside the rules:
Application settings, additional costs, cart item catalogs, giveaway pools, and per campaign its
budgets and referral settings. :mod:`talon_one_emulator.campaigns.file` assembles them into a
:class:`~talon_one_emulator.campaigns.file.CampaignSet`; the format is documented in
``docs/emulator.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AdditionalCostSpec",
    "ApplicationSettings",
    "BudgetSpec",
    "CatalogItemSpec",
    "CatalogSpec",
    "GiveawayPoolSpec",
    "ReferralSettings",
    "Spec",
    "Timestamp",
    "one_or_many",
]

# Coupon and referral dates: RFC 3339 with an offset, as Talon.One stores them.
Timestamp = AwareDatetime

_Limit = Annotated[int, Field(ge=1)]


class Spec(BaseModel):
    """The base of every model of the campaign file: frozen, unknown keys rejected, fields
    given by their YAML name (the alias) or their Python name."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def one_or_many(value: object) -> object:
    """A YAML scalar as a one-element tuple (for fields that take a scalar or a list)."""
    return (value,) if isinstance(value, str) else value


class ApplicationSettings(Spec):
    """Application settings that change how discounts are computed.

    Attributes:
        cascading_discounts: percentages apply to what is left after earlier discounts
            (Talon.One's discounted session total and discounted item price); otherwise to the
            original prices. Either way the total never goes below zero.
        cart_item_flattening: a cart item of quantity N counts as N units; per-item effects
            address each unit with ``position`` and ``subPosition``.
    """

    cascading_discounts: bool = Field(default=True, alias="cascadingDiscounts")
    cart_item_flattening: bool = Field(default=False, alias="cartItemFlattening")


class AdditionalCostSpec(Spec):
    """An additional cost created in the Campaign Manager (``additionalCostId`` in effects)."""

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1)]
    title: str | None = None


class CatalogItemSpec(Spec):
    sku: Annotated[str, Field(min_length=1)]
    price: Annotated[float, Field(ge=0)] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    product: Annotated[str, Field(min_length=1)] | None = None
    """The product name."""


class CatalogSpec(Spec):
    """A cart item catalog the Application is subscribed to; synced with ``syncCatalog``."""

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    items: tuple[CatalogItemSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_skus(self) -> Self:
        seen: set[str] = set()
        for item in self.items:
            if item.sku in seen:
                raise ValueError(f"duplicate sku {item.sku!r} in catalog {self.id}")
            seen.add(item.sku)
        return self


class GiveawayPoolSpec(Spec):
    """A pool of giveaway codes (gift cards, vouchers) that ``awardGiveaway`` hands out."""

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1)]
    codes: Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_codes(self) -> Self:
        if len(set(self.codes)) != len(self.codes):
            raise ValueError(f"duplicate code in giveaway pool {self.id}")
        return self


class BudgetSpec(Spec):
    """Campaign budgets; an absent budget is unlimited.

    Redemptions count on close and are given back on cancel, reopen (and, for the discount
    budget, returns); creations count when the coupon or referral is created.
    """

    coupon_redemptions: _Limit | None = Field(default=None, alias="couponRedemptions")
    referral_redemptions: _Limit | None = Field(default=None, alias="referralRedemptions")
    discount: Annotated[float, Field(gt=0)] | None = None
    """The total discount value the campaign may give."""
    coupon_creations: _Limit | None = Field(default=None, alias="couponCreations")
    referral_creations: _Limit | None = Field(default=None, alias="referralCreations")
    profile_coupon_redemptions: _Limit | None = Field(
        default=None, alias="profileCouponRedemptions"
    )
    profile_referral_redemptions: _Limit | None = Field(
        default=None, alias="profileReferralRedemptions"
    )

    @property
    def any(self) -> bool:
        return any(value is not None for value in self.__dict__.values())


class ReferralSettings(Spec):
    """Marks a referral campaign; defaults for referrals created without explicit values."""

    usage_limit: Annotated[int, Field(ge=0, le=999_999, alias="usageLimit")] = 1
    """``0`` = unlimited."""
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")

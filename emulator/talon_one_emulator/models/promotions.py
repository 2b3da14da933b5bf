"""Request bodies of the referral, coupon reservation, audience and catalog operations.

Strict pydantic models mirroring the official SDK's (strict types, the same length and range
limits, enums); unknown keys are ignored, as the SDK ignores them. Catalog sync actions are typed
as free-form objects in the SDK; here each action's ``payload`` is validated by its ``type``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "MAX_AUDIENCE_ACTIONS",
    "MAX_CATALOG_ACTIONS",
    "AddItemPayload",
    "AudienceAction",
    "AudiencesChangesField",
    "BestPriorPriceRequest",
    "BestPriorTarget",
    "CatalogAction",
    "CatalogActionFilter",
    "CatalogSyncRequest",
    "CouponReservations",
    "CustomerProfileAudienceRequest",
    "NewAudience",
    "NewReferral",
    "NewReferralsForMultipleAdvocates",
    "PatchItemPayload",
    "PatchManyPayload",
    "ProfileAudiencesChanges",
    "RemoveItemPayload",
    "RemoveManyPayload",
    "UpdateAudience",
]

MAX_AUDIENCE_ACTIONS = 1000
MAX_CATALOG_ACTIONS = 1000

_Number = Annotated[float, Field(strict=True)]
_UsageLimit = Annotated[int, Field(ge=0, le=999_999)]
_IntegrationId = Annotated[str, Field(max_length=1000)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=False)


# --- referrals and coupon reservations ----------------------------------------------------------


class NewReferral(_Body):
    start_date: AwareDatetime | None = Field(default=None, alias="startDate", strict=False)
    expiry_date: AwareDatetime | None = Field(default=None, alias="expiryDate", strict=False)
    usage_limit: _UsageLimit | None = Field(default=None, alias="usageLimit")
    campaign_id: int = Field(alias="campaignId")
    advocate_profile_integration_id: _IntegrationId = Field(alias="advocateProfileIntegrationId")
    friend_profile_integration_id: str | None = Field(
        default=None, alias="friendProfileIntegrationId"
    )
    attributes: dict[str, Any] | None = None


class NewReferralsForMultipleAdvocates(_Body):
    start_date: AwareDatetime | None = Field(default=None, alias="startDate", strict=False)
    expiry_date: AwareDatetime | None = Field(default=None, alias="expiryDate", strict=False)
    usage_limit: _UsageLimit | None = Field(default=None, alias="usageLimit")
    campaign_id: int = Field(alias="campaignId")
    advocate_profile_integration_ids: Annotated[list[str], Field(min_length=1, max_length=1000)] = (
        Field(alias="advocateProfileIntegrationIds")
    )
    attributes: dict[str, Any] | None = None
    valid_characters: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | (
        None
    ) = Field(default=None, alias="validCharacters")
    referral_pattern: Annotated[str, Field(min_length=3, max_length=100)] | None = Field(
        default=None, alias="referralPattern"
    )


class CouponReservations(_Body):
    integration_ids: Annotated[list[str], Field(max_length=1000)] = Field(alias="integrationIDs")


# --- audiences ------------------------------------------------------------------------------------


class NewAudience(_Body):
    name: Annotated[str, Field(min_length=1)]
    sandbox: bool | None = None
    description: str | None = None
    integration: str | None = None
    integration_id: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        default=None, alias="integrationId"
    )
    created_in3rd_party: bool | None = Field(default=None, alias="createdIn3rdParty")
    last_update: AwareDatetime | None = Field(default=None, alias="lastUpdate", strict=False)


class UpdateAudience(_Body):
    name: Annotated[str, Field(min_length=1)]


class AudienceAction(_Body):
    action: Literal["add", "delete"]
    profile_integration_id: _IntegrationId = Field(alias="profileIntegrationId")
    audience_id: int = Field(alias="audienceId")


class CustomerProfileAudienceRequest(_Body):
    data: Annotated[list[AudienceAction], Field(max_length=MAX_AUDIENCE_ACTIONS)] | None = None


class ProfileAudiencesChanges(_Body):
    """``audiencesChanges`` of updateCustomerProfileV2: audience IDs to join and to leave."""

    adds: list[int]
    deletes: list[int]


class AudiencesChangesField(_Body):
    """Wraps :class:`ProfileAudiencesChanges` so errors point into the profile update's body."""

    changes: ProfileAudiencesChanges = Field(alias="audiencesChanges")


# --- catalogs -------------------------------------------------------------------------------------


class _Product(_Body):
    name: str


class CatalogActionFilter(_Body):
    attr: str
    op: Literal["EQ", "LT", "LE", "GT", "GE", "IN"]
    value: Any


class _ItemPayload(_Body):
    """The catalog item fields an ADD or PATCH action sets."""

    sku: Annotated[str, Field(min_length=1)]
    price: _Number | None = None
    attributes: dict[str, Any] | None = None
    product: _Product | None = None


class AddItemPayload(_ItemPayload):
    replace_if_exists: bool = Field(default=False, alias="replaceIfExists")


class PatchItemPayload(_ItemPayload):
    create_if_not_exists: bool = Field(default=False, alias="createIfNotExists")


class PatchManyPayload(_Body):
    price: _Number | None = None
    filters: list[CatalogActionFilter] | None = None
    attributes: dict[str, Any] | None = None


class RemoveItemPayload(_Body):
    sku: Annotated[str, Field(min_length=1)]


class RemoveManyPayload(_Body):
    filters: list[CatalogActionFilter] | None = None


class CatalogAction(_Body):
    type: Literal["ADD", "PATCH", "PATCH_MANY", "REMOVE", "REMOVE_MANY", "ADD_PRICE_ADJUSTMENT"]
    payload: dict[str, Any]


class CatalogSyncRequest(_Body):
    actions: Annotated[list[CatalogAction], Field(min_length=1, max_length=MAX_CATALOG_ACTIONS)]
    version: Annotated[int, Field(ge=1)] | None = None


class BestPriorTarget(_Body):
    target_type: Literal["NONE", "AUDIENCE"] = Field(alias="targetType")
    audience_id: int | None = Field(default=None, alias="audienceID")


class BestPriorPriceRequest(_Body):
    """SDK 26.2 sends ``strictEndDate``; newer specifications ``timeframeEndDateType``."""

    skus: Annotated[list[str], Field(min_length=1)]
    timeframe_end_date: AwareDatetime = Field(alias="timeframeEndDate", strict=False)
    timeframe: str
    strict_end_date: bool | None = Field(default=None, alias="strictEndDate")
    timeframe_end_date_type: Literal["strict", "price", "sale"] | None = Field(
        default=None, alias="timeframeEndDateType"
    )
    target: BestPriorTarget | None = None

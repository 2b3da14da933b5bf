"""The campaign file's loyalty declarations: programs, cards, tiers, achievements, and the
loyalty effects of rules (``addLoyaltyPoints``, ``deductLoyaltyPoints``).

A program is profile-based (points on the customer's profile) or card-based (points on loyalty
cards, which customer profiles can be linked to). Its settings say when earned points become
active (at once, after ``pendingDays``, or when ``activateLoyaltyPoints`` is called) and when they
expire (``validityDays``). :mod:`talon_one_emulator.campaigns.file` assembles these into the
:class:`~talon_one_emulator.campaigns.file.CampaignSet`; the format is documented in
``docs/emulator.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BeforeValidator, Field, model_validator

from talon_one_emulator.campaigns.declarations import Spec, one_or_many
from talon_one_emulator.models.loyalty import CARD_IDENTIFIER_PATTERN

__all__ = [
    "CARD_IDENTIFIER_PATTERN",
    "AchievementSpec",
    "AddLoyaltyPoints",
    "AddLoyaltyPointsSpec",
    "DeductLoyaltyPoints",
    "DeductLoyaltyPointsSpec",
    "LoyaltyCardSpec",
    "LoyaltyProgramSpec",
    "TierSpec",
    "check_loyalty_effect",
]

_CardIdentifier = Annotated[
    str, Field(min_length=4, max_length=108, pattern=CARD_IDENTIFIER_PATTERN)
]
_SubledgerId = Annotated[str, Field(max_length=64)]


# A YAML scalar or a list of scalars: ``sku: SKU-1`` or ``sku: [A, B]``.
_Strings = Annotated[
    tuple[Annotated[str, Field(min_length=1)], ...],
    BeforeValidator(one_or_many),
    Field(min_length=1),
]


class TierSpec(Spec):
    """A tier of a program: reached with at least ``minPoints`` active points (main ledger)."""

    name: Annotated[str, Field(min_length=1)]
    min_points: Annotated[float, Field(ge=0)] = Field(alias="minPoints")


class LoyaltyCardSpec(Spec):
    """A loyalty card that exists from the start (no profiles linked)."""

    identifier: _CardIdentifier
    status: Literal["active", "inactive"] = "active"


class LoyaltyProgramSpec(Spec):
    """A loyalty program (``programId`` in effects).

    Attributes:
        card_based: points go to the loyalty card the session or event carries.
        users_per_card_limit: how many profiles a card can be linked to (0: unlimited).
        subledgers: subledger IDs besides the main ledger (``""``).
        tiers: in ascending ``minPoints``; the tier is the highest one the active points of the
            main ledger reach.
        pending_days: earned points become active this many days after they were earned.
        activate_on_action: earned points stay pending until ``activateLoyaltyPoints``.
        validity_days: points expire this many days after they become active.
        allow_negative_balance: deductions and rollbacks may take more points than are active.
        rollback_active_points_on_reopen: reopening a session also takes back the points it
            earned that are active by now (pending points are always taken back).
        cards: cards of a card-based program that exist from the start.
    """

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1)]
    title: Annotated[str, Field(min_length=1)]
    description: str = ""
    card_based: bool = Field(default=False, alias="cardBased")
    users_per_card_limit: Annotated[int, Field(ge=0)] = Field(default=1, alias="usersPerCardLimit")
    subledgers: tuple[Annotated[_SubledgerId, Field(min_length=1)], ...] = ()
    tiers: tuple[TierSpec, ...] = ()
    pending_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="pendingDays")
    activate_on_action: bool = Field(default=False, alias="activateOnAction")
    validity_days: Annotated[int, Field(ge=1)] | None = Field(default=None, alias="validityDays")
    allow_negative_balance: bool = Field(default=False, alias="allowNegativeBalance")
    rollback_active_points_on_reopen: bool = Field(
        default=True, alias="rollbackActivePointsOnReopen"
    )
    cards: tuple[LoyaltyCardSpec, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.pending_days is not None and self.activate_on_action:
            raise ValueError(
                f"program {self.id}: pendingDays and activateOnAction exclude each other"
            )
        if len(set(self.subledgers)) != len(self.subledgers):
            raise ValueError(f"program {self.id}: duplicate subledger")
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"program {self.id}: duplicate tier name")
        thresholds = [tier.min_points for tier in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError(f"program {self.id}: tiers must have ascending minPoints")
        if self.cards and not self.card_based:
            raise ValueError(f"program {self.id}: cards need cardBased: true")
        identifiers = [card.identifier for card in self.cards]
        if len(set(identifiers)) != len(identifiers):
            raise ValueError(f"program {self.id}: duplicate card identifier")
        return self

    def has_subledger(self, subledger_id: str) -> bool:
        return subledger_id == "" or subledger_id in self.subledgers

    def tier_id(self, index: int) -> int:
        """The internal ID of the tier at ``index`` (stable per program)."""
        return self.id * 100 + index + 1

    def tier_index(self, points: float) -> int | None:
        """The index of the tier ``points`` active points reach (``None``: below every tier)."""
        found = None
        for index, tier in enumerate(self.tiers):
            if points >= tier.min_points:
                found = index
        return found

    @property
    def pending_at_earning(self) -> bool:
        """Whether earned points start pending."""
        return self.pending_days is not None or self.activate_on_action


class AchievementSpec(Spec):
    """An achievement of a campaign (listed by getCustomerAchievements)."""

    id: Annotated[int, Field(ge=1)]
    name: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[A-Za-z]")]
    title: Annotated[str, Field(min_length=1)]
    description: str = ""
    campaign_id: Annotated[int, Field(ge=1)] = Field(alias="campaignId")
    target: Annotated[float, Field(gt=0)]
    period: str | None = None
    recurrence_policy: Literal["no_recurrence", "on_expiration", "on_completion"] = Field(
        default="no_recurrence", alias="recurrencePolicy"
    )
    activation_policy: Literal["user_action", "fixed_schedule"] = Field(
        default="user_action", alias="activationPolicy"
    )
    fixed_start_date: AwareDatetime | None = Field(default=None, alias="fixedStartDate")
    end_date: AwareDatetime | None = Field(default=None, alias="endDate")
    allow_rollback_after_completion: bool = Field(
        default=False, alias="allowRollbackAfterCompletion"
    )


# --- effects ----------------------------------------------------------------------------------


class AddLoyaltyPointsSpec(Spec):
    """Fixed ``points``, or ``pointsPerCurrencyUnit`` times the cart subtotal.

    With ``perItem`` one addition per matching cart item (``cartItemPosition``; per unit, with
    ``cartItemSubPosition``, when cart items are flattened): ``points`` per unit, or
    ``pointsPerCurrencyUnit`` times the item's price. Returning the item takes its points back.
    """

    program_id: int = Field(alias="programId")
    name: str | None = None
    sub_ledger_id: _SubledgerId = Field(default="", alias="subLedgerId")
    points: Annotated[float, Field(gt=0)] | None = None
    points_per_currency_unit: Annotated[float, Field(gt=0)] | None = Field(
        default=None, alias="pointsPerCurrencyUnit"
    )
    per_item: bool = Field(default=False, alias="perItem")
    skus: _Strings | None = Field(default=None, alias="sku")
    categories: _Strings | None = Field(default=None, alias="category")

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.points is None) == (self.points_per_currency_unit is None):
            raise ValueError("give exactly one of points or pointsPerCurrencyUnit")
        if not self.per_item and (self.skus is not None or self.categories is not None):
            raise ValueError("sku and category filters need perItem: true")
        return self


class DeductLoyaltyPointsSpec(Spec):
    """Spend ``points`` of the customer's (or the card's) active points.

    The rule only fires when they are there (unless the program allows a negative balance), so
    a discount in the same rule is only given when the points pay for it.
    """

    program_id: int = Field(alias="programId")
    sub_ledger_id: _SubledgerId = Field(default="", alias="subLedgerId")
    points: Annotated[float, Field(gt=0)]
    name: Annotated[str, Field(min_length=1)] | None = None
    """Default: the program's name."""


class AddLoyaltyPoints(Spec):
    spec: AddLoyaltyPointsSpec = Field(alias="addLoyaltyPoints")


class DeductLoyaltyPoints(Spec):
    spec: DeductLoyaltyPointsSpec = Field(alias="deductLoyaltyPoints")


def check_loyalty_effect(
    effect: object, where: str, programs: Mapping[int, LoyaltyProgramSpec]
) -> None:
    """Check that a loyalty effect names a declared program and subledger.

    Raises:
        ValueError: it does not.
    """
    if not isinstance(effect, AddLoyaltyPoints | DeductLoyaltyPoints):
        return
    spec = effect.spec
    program = programs.get(spec.program_id)
    if program is None:
        raise ValueError(f"{where}: unknown loyalty program {spec.program_id}")
    if not program.has_subledger(spec.sub_ledger_id):
        raise ValueError(
            f"{where}: loyalty program {spec.program_id} has no subledger {spec.sub_ledger_id!r}"
        )

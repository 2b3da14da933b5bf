"""Loading and validating campaign files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from talon_one_emulator.campaigns.file import load_campaigns, parse_campaigns
from talon_one_emulator.campaigns.loyalty import AddLoyaltyPoints
from talon_one_emulator.campaigns.rules import CouponValid, SetDiscount
from talon_one_emulator.errors import CampaignFileError


def campaign(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 1,
        "name": "c",
        "rulesetId": 1,
        "rules": [{"name": "r", "effects": [{"setDiscount": {"name": "d", "amount": 1}}]}],
    }
    body.update(overrides)
    return body


def with_rule(
    effects: list[Any] | None = None, conditions: list[Any] | None = None
) -> dict[str, Any]:
    """A campaign file of one campaign with one rule (default effect: a setDiscount)."""
    body: dict[str, Any] = {"name": "r"}
    if conditions is not None:
        body["conditions"] = conditions
    body["effects"] = effects or [{"setDiscount": {"name": "d", "amount": 1}}]
    return {"campaigns": [campaign(rules=[body])]}


def test_default_campaigns_declare_the_demo_attributes() -> None:
    campaigns = load_campaigns()

    declared = campaigns.attributes
    assert declared.customer_session["channel"] == "string"
    assert declared.cart_item["color"] == "string"
    assert declared.customer_profile["Name"] == "string"
    assert declared.customer_profile["tier"] == "string"
    assert declared.customer_profile["newsletter"] == "boolean"
    assert campaigns.event_types["review_submitted"].attributes == {"rating": "number"}


def test_default_campaigns_include_the_tutorial_campaign() -> None:
    tutorial = load_campaigns().campaigns[0]

    assert "xmas20" in [coupon.code for coupon in tutorial.coupons]
    rule = tutorial.rules[0]
    assert isinstance(rule.conditions[0], CouponValid)
    assert isinstance(rule.effects[0], SetDiscount)
    assert rule.effects[0].spec.percentage == 20


def test_campaign_file_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(
        """
loyaltyPrograms: [{id: 7, name: p, title: P}]
campaigns:
  - id: 9
    name: Points
    rulesetId: 90
    rules:
      - name: points
        conditions: [{sessionState: [open, closed]}]
        effects: [{addLoyaltyPoints: {programId: 7, points: 5}}]
""",
        encoding="utf-8",
    )

    campaigns = load_campaigns(path)

    effect = campaigns.campaigns[0].rules[0].effects[0]
    assert isinstance(effect, AddLoyaltyPoints)
    assert effect.spec.points == 5


def test_scalar_or_list_conditions() -> None:
    campaigns = parse_campaigns(
        with_rule(
            [{"setDiscount": {"name": "d", "percentage": 5}}],
            conditions=[{"itemSkuPresent": "A"}, {"itemCategoryPresent": ["B", "C"]}],
        )
    )

    first, second = campaigns.campaigns[0].rules[0].conditions
    assert first.skus == ("A",)  # type: ignore[union-attr]
    assert second.categories == ("B", "C")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"campaigns": [campaign(id=1), campaign(id=1)]}, "duplicate campaign id"),
        (
            {
                "campaigns": [
                    campaign(coupons=[{"code": "SAME1"}]),
                    campaign(id=2, coupons=[{"code": "same1"}]),
                ]
            },
            "duplicate coupon code",
        ),
        ({"campaigns": [campaign(coupons=[{"code": "abc"}])]}, "at least 4"),
        (with_rule(conditions=[{"nope": 1}]), "nope"),
        (with_rule(conditions=[{"firstSession": True, "couponValid": True}]), "exactly one key"),
        (with_rule(conditions=[{"couponValid": True}]), "campaign without coupons"),
        (
            with_rule([{"setDiscount": {"name": "d", "amount": 1, "percentage": 5}}]),
            "exactly one of percentage or amount",
        ),
        (
            with_rule([{"addLoyaltyPoints": {"programId": 3, "points": 1}}]),
            "unknown loyalty program",
        ),
        (with_rule(conditions=[{"eventType": "made_up"}]), "unknown event type"),
        (
            with_rule([{"updateAttribute": {"path": "Profile.Attributes.x", "value": 1}}]),
            "undeclared attribute",
        ),
        ({"eventTypes": {"talon_custom": {}}}, "reserved prefix"),
        ({"attributes": {"CustomerSession": {"x": "colour"}}}, "CustomerSession"),
        ({"campaigns": [campaign(extra=1)]}, "extra"),
    ],
)
def test_invalid_documents_are_rejected(document: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaigns(document)

    assert fragment in str(caught.value)


def test_unreadable_or_malformed_files_are_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    broken = tmp_path / "broken.yaml"
    broken.write_text("campaigns: [\n", encoding="utf-8")

    with pytest.raises(CampaignFileError, match="cannot read"):
        load_campaigns(missing)
    with pytest.raises(CampaignFileError, match="not valid YAML") as caught:
        load_campaigns(broken)
    assert caught.value.path == broken


def test_empty_file_is_an_application_without_campaigns(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")

    assert load_campaigns(path).campaigns == ()

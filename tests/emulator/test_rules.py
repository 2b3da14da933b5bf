"""Campaign evaluation of the default campaigns, without HTTP or stored state."""

from __future__ import annotations

from typing import Any

import pytest

from talon_one_emulator.campaigns.file import load_campaigns, parse_campaigns
from talon_one_emulator.money import json_number, round_money
from talon_one_emulator.rules.engine import CartLine, CouponInfo, Facts, RuleEngine, SessionFacts

ENGINE = RuleEngine(load_campaigns())

BLOUSE = CartLine(0, "rsb002", 49, 1, "Blouses")
TROUSERS = CartLine(1, "dtr003", 74, 1, "Trousers")


def session(
    *lines: CartLine,
    coupons: tuple[str, ...] = (),
    first: bool = False,
    state: str = "open",
    additional_costs: float = 0.0,
) -> SessionFacts:
    cart_total = sum(line.total for line in lines)
    return SessionFacts(
        "s-1", state, lines, coupons, first, cart_total, cart_total + additional_costs
    )


def facts(
    sess: SessionFacts | None = None,
    *,
    event_type: str = "talon_session_updated",
    profile_id: str | None = "cust-1",
    attributes: dict[str, Any] | None = None,
) -> Facts:
    return Facts(event_type, profile_id, attributes or {}, sess, "key")


def of_type(effects: list[dict[str, Any]], effect_type: str) -> list[dict[str, Any]]:
    return [effect for effect in effects if effect["effectType"] == effect_type]


def test_tutorial_coupon_gives_20_percent_of_the_session_total() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS, coupons=("xmas20",))))

    accepted = of_type(outcome.effects, "acceptCoupon")
    discounts = of_type(outcome.effects, "setDiscount")
    assert [effect["props"] for effect in accepted] == [{"value": "xmas20"}]
    assert len(discounts) == 1
    assert discounts[0]["props"]["value"] == 24.6
    assert discounts[0]["campaignId"] == 1
    assert discounts[0]["rulesetId"] == 101
    assert discounts[0]["ruleIndex"] == 0
    assert discounts[0]["ruleName"]
    assert accepted[0]["triggeredByCoupon"] == discounts[0]["triggeredByCoupon"]
    assert outcome.effects.index(accepted[0]) < outcome.effects.index(discounts[0])
    assert 1 in outcome.triggered_campaign_ids


def test_effect_envelope_has_every_required_field() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS, coupons=("xmas20", "nope"))))

    for effect in outcome.effects:
        for key in ("campaignId", "rulesetId", "ruleIndex", "ruleName", "effectType", "props"):
            assert key in effect
        assert isinstance(effect["campaignId"], int)
        assert isinstance(effect["rulesetId"], int)
        assert isinstance(effect["ruleIndex"], int)


def test_unknown_coupon_is_rejected_as_not_found() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, coupons=("NOPE-123",))))

    rejected = of_type(outcome.effects, "rejectCoupon")
    assert rejected == [
        {
            "campaignId": 0,
            "rulesetId": 0,
            "ruleIndex": 0,
            "ruleName": "",
            "effectType": "rejectCoupon",
            "props": {"value": "NOPE-123", "rejectionReason": "CouponNotFound"},
        }
    ]
    assert of_type(outcome.effects, "setDiscount") == []


def test_coupon_codes_match_case_insensitively_and_echo_the_sent_value() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS, coupons=("XMAS20",))))

    assert of_type(outcome.effects, "acceptCoupon")[0]["props"] == {"value": "XMAS20"}


def test_coupon_whose_other_conditions_fail_is_rejected_by_condition() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, coupons=("SHOES15",))))

    rejected = of_type(outcome.effects, "rejectCoupon")
    assert len(rejected) == 1
    assert rejected[0]["campaignId"] == 3
    assert rejected[0]["props"]["rejectionReason"] == "CouponRejectedByCondition"
    assert rejected[0]["props"]["conditionIndex"] == 1
    assert of_type(outcome.effects, "setDiscountPerItem") == []


def test_exhausted_coupon_is_rejected_with_limit_reached() -> None:
    def exhausted(_coupon: CouponInfo) -> bool:
        return False

    outcome = ENGINE.evaluate(facts(session(BLOUSE, coupons=("ONCE-20",))), exhausted)

    rejected = of_type(outcome.effects, "rejectCoupon")
    assert [effect["props"]["rejectionReason"] for effect in rejected] == ["CouponLimitReached"]
    assert of_type(outcome.effects, "acceptCoupon") == []


def test_only_one_coupon_per_campaign_is_accepted() -> None:
    outcome = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS, coupons=("xmas20", "SPRING20"))))

    assert [e["props"]["value"] for e in of_type(outcome.effects, "acceptCoupon")] == ["xmas20"]
    rejected = of_type(outcome.effects, "rejectCoupon")
    assert [e["props"]["value"] for e in rejected] == ["SPRING20"]
    assert len(of_type(outcome.effects, "setDiscount")) == 1


def test_fixed_discount_for_big_baskets() -> None:
    big = CartLine(0, "coat", 160, 1, "Coats")

    outcome = ENGINE.evaluate(facts(session(big)))

    discounts = of_type(outcome.effects, "setDiscount")
    assert [(d["campaignId"], d["props"]["value"]) for d in discounts] == [(2, 10)]


def test_discounts_never_exceed_the_session_total() -> None:
    campaigns = parse_campaigns(
        {
            "campaigns": [
                {
                    "id": 1,
                    "name": "Too generous",
                    "rulesetId": 1,
                    "rules": [
                        {
                            "name": "fixed",
                            "conditions": [{"cartSubtotalAtLeast": 1}],
                            "effects": [
                                {"setDiscount": {"name": "a", "amount": 30}},
                                {"setDiscount": {"name": "b", "amount": 30}},
                                {"setDiscount": {"name": "c", "amount": 30}},
                            ],
                        }
                    ],
                }
            ]
        }
    )
    cheap = CartLine(0, "sock", 25, 2, None)

    outcome = RuleEngine(campaigns).evaluate(facts(session(cheap)))

    assert [e["props"]["value"] for e in outcome.effects] == [30, 20]


def test_per_item_discount_addresses_matching_positions() -> None:
    sneakers = CartLine(1, "snk-1", 80, 2, "Shoes")
    boots = CartLine(2, "bts-1", 120, 1, "Shoes")

    outcome = ENGINE.evaluate(facts(session(BLOUSE, sneakers, boots, coupons=("shoes15",))))

    per_item = of_type(outcome.effects, "setDiscountPerItem")
    assert [(e["props"]["position"], e["props"]["value"]) for e in per_item] == [(1, 24), (2, 18)]
    assert all(e["triggeredByCoupon"] for e in per_item)
    assert len(of_type(outcome.effects, "acceptCoupon")) == 1


def test_welcome_notification_only_on_an_open_first_session() -> None:
    first = ENGINE.evaluate(facts(session(BLOUSE, first=True)))
    later = ENGINE.evaluate(facts(session(BLOUSE, first=False)))
    closing = ENGINE.evaluate(facts(session(BLOUSE, first=True, state="closed")))

    assert [e["campaignId"] for e in of_type(first.effects, "showNotification")] == [4]
    assert of_type(later.effects, "showNotification") == []
    assert of_type(closing.effects, "showNotification") == []


def test_loyalty_points_per_currency_unit_need_a_profile() -> None:
    identified = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS)))
    anonymous = ENGINE.evaluate(facts(session(BLOUSE, TROUSERS), profile_id=None))

    points = of_type(identified.effects, "addLoyaltyPoints")
    assert len(points) == 1
    props = points[0]["props"]
    assert props["value"] == 123
    assert props["programId"] == 1
    assert props["recipientIntegrationId"] == "cust-1"
    assert props["subLedgerId"] == ""
    assert len(props["transactionUUID"]) == 36
    assert of_type(anonymous.effects, "addLoyaltyPoints") == []


def test_custom_event_type_triggers_its_campaign_only() -> None:
    review = ENGINE.evaluate(facts(event_type="review_submitted"))
    profile_update = ENGINE.evaluate(facts(event_type="talon_profile_updated"))

    assert {e["campaignId"] for e in review.effects} == {6}
    assert [e["effectType"] for e in review.effects] == ["showNotification", "addLoyaltyPoints"]
    assert review.effects[1]["props"]["value"] == 50
    assert profile_update.effects == []


def test_profile_attribute_campaign_runs_on_sessions_and_profile_updates() -> None:
    gold = {"tier": "gold"}

    on_session = ENGINE.evaluate(facts(session(BLOUSE), attributes=gold))
    on_profile = ENGINE.evaluate(facts(event_type="talon_profile_updated", attributes=gold))

    for outcome in (on_session, on_profile):
        custom = of_type(outcome.effects, "customEffect")
        assert [e["props"]["name"] for e in custom] == ["free_shipping"]
        assert custom[0]["props"]["payload"] == {"carrier": "standard"}


def test_newsletter_campaign_updates_a_profile_attribute() -> None:
    outcome = ENGINE.evaluate(
        facts(event_type="talon_profile_updated", attributes={"newsletter": True})
    )

    assert outcome.attribute_updates == [("Profile", "memberOfferSent", True)]
    assert [e["effectType"] for e in outcome.effects] == ["showNotification", "updateAttribute"]


def test_boolean_attribute_does_not_equal_the_number_one() -> None:
    outcome = ENGINE.evaluate(
        facts(event_type="talon_profile_updated", attributes={"newsletter": 1})
    )

    assert outcome.effects == []


def test_session_rules_do_not_fire_without_a_session() -> None:
    outcome = ENGINE.evaluate(facts(event_type="talon_session_updated"))

    assert outcome.effects == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(123 * 0.2, 24.6), (0.125, 0.13), (10.0, 10.0), (33.333, 33.33), (2.675, 2.68)],
)
def test_money_rounds_half_up_to_cents(value: float, expected: float) -> None:
    assert round_money(value) == expected


def test_integral_money_is_a_json_integer() -> None:
    assert json_number(49.0) == 49
    assert isinstance(json_number(49.0), int)
    assert json_number(24.6) == 24.6
    assert isinstance(json_number(0), int)

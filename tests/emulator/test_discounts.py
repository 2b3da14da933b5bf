"""Cascading and flattened discounts, additional costs, free items, giveaways, new conditions.

The rule engine alone (RuleEngine with Facts), then the session life cycle through
IntegrationService for what is stored and rolled back.
"""

from __future__ import annotations

from typing import Any

import pytest

from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns, parse_campaigns
from talon_one_emulator.errors import CampaignFileError
from talon_one_emulator.rules.engine import CartLine, Facts, RuleEngine, SessionFacts
from talon_one_emulator.store.state import EmulatorState


def campaign(campaign_id: int, *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": campaign_id,
        "name": f"campaign {campaign_id}",
        "rulesetId": campaign_id * 10,
        "rules": list(rules),
        **extra,
    }


def rule(name: str, *effects: dict[str, Any], conditions: list[Any] | None = None) -> Any:
    return {"name": name, "conditions": conditions or [], "effects": list(effects)}


def engine(*campaigns: dict[str, Any], **document: Any) -> RuleEngine:
    return RuleEngine(parse_campaigns({"campaigns": list(campaigns), **document}))


def session(
    *lines: CartLine,
    costs: tuple[tuple[str, float], ...] = (),
    state: str = "open",
    **extra: Any,
) -> SessionFacts:
    cart_total = sum(line.total for line in lines)
    total = cart_total + sum(price for _, price in costs)
    return SessionFacts(
        "s-1", state, lines, (), False, cart_total, total, additional_costs=costs, **extra
    )


def facts(sess: SessionFacts | None = None, **extra: Any) -> Facts:
    extra.setdefault("event_type", "talon_session_updated")
    return Facts(profile_id="cust-1", profile_attributes={}, session=sess, key="k", **extra)


def values(effects: list[dict[str, Any]], effect_type: str) -> list[Any]:
    return [e["props"]["value"] for e in effects if e["effectType"] == effect_type]


BLOUSE = CartLine(0, "rsb002", 49, 1, "Blouses")
TROUSERS = CartLine(1, "dtr003", 74, 1, "Trousers")
SHOES = CartLine(2, "snk001", 30, 3, "Shoes")
TEN_PERCENT = {"setDiscount": {"name": "10%", "percentage": 10}}


# --- cascading -----------------------------------------------------------------------------------


def test_later_percentages_apply_to_what_earlier_discounts_left() -> None:
    rules = engine(campaign(1, rule("a", TEN_PERCENT)), campaign(2, rule("b", TEN_PERCENT)))
    cart = session(CartLine(0, "x", 100, 1))

    outcome = rules.evaluate(facts(cart))

    assert values(outcome.effects, "setDiscount") == [10, 9]
    assert [e["campaignId"] for e in outcome.effects] == [1, 2]


def test_without_cascading_percentages_apply_to_the_original_total() -> None:
    rules = engine(
        campaign(1, rule("a", TEN_PERCENT)),
        campaign(2, rule("b", TEN_PERCENT)),
        application={"cascadingDiscounts": False},
    )

    outcome = rules.evaluate(facts(session(CartLine(0, "x", 100, 1))))

    assert values(outcome.effects, "setDiscount") == [10, 10]


def test_item_discounts_apply_to_the_discounted_item_price_and_stop_at_zero() -> None:
    per_item = {"setDiscountPerItem": {"name": "half", "percentage": 50, "sku": "dtr003"}}
    fixed = {"setDiscountPerItem": {"name": "40 off", "amount": 40, "sku": "dtr003"}}
    session_discount = {"setDiscount": {"name": "100 off", "amount": 100}}
    rules = engine(
        campaign(1, rule("session", {"setDiscount": {"name": "10 off", "amount": 10}})),
        campaign(2, rule("half", per_item)),
        campaign(3, rule("fixed", fixed)),
        campaign(4, rule("rest", session_discount)),
    )

    outcome = rules.evaluate(facts(session(BLOUSE, TROUSERS)))

    # A session discount leaves item prices alone; 50% of 74 = 37; 40 off the 37 left = 37;
    # then only 123 - 10 - 37 - 37 = 39 of the session total is left.
    assert [(e["effectType"], e["props"]["value"]) for e in outcome.effects] == [
        ("setDiscount", 10),
        ("setDiscountPerItem", 37),
        ("setDiscountPerItem", 37),
        ("setDiscount", 39),
    ]


def test_scoped_session_discounts() -> None:
    rules = engine(
        campaign(
            1,
            rule(
                "scoped",
                {"setDiscount": {"name": "items", "percentage": 50, "scope": "cartItems"}},
                {"setDiscount": {"name": "costs", "amount": 100, "scope": "additionalCosts"}},
            ),
        ),
        additionalCosts=[{"id": 1, "name": "shipping"}],
    )

    outcome = rules.evaluate(facts(session(BLOUSE, costs=(("shipping", 6),))))

    assert [e["props"] for e in outcome.effects] == [
        {"name": "items", "value": 24.5, "scope": "cartItems"},
        {"name": "costs", "value": 6, "scope": "additionalCosts"},
    ]


# --- flattening ----------------------------------------------------------------------------------


def test_flattened_items_get_a_discount_per_unit() -> None:
    rules = engine(
        campaign(1, rule("shoes", {"setDiscountPerItem": {"name": "5 off", "amount": 5}})),
        application={"cartItemFlattening": True},
    )

    outcome = rules.evaluate(facts(session(BLOUSE, SHOES)))

    assert [(e["props"]["position"], e["props"].get("subPosition")) for e in outcome.effects] == [
        (0, 0),
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    assert values(outcome.effects, "setDiscountPerItem") == [5, 5, 5, 5]


def test_without_flattening_a_fixed_item_amount_is_per_unit_on_the_line() -> None:
    rules = engine(
        campaign(1, rule("shoes", {"setDiscountPerItem": {"name": "5 off", "amount": 5}}))
    )

    outcome = rules.evaluate(facts(session(SHOES)))

    assert [e["props"] for e in outcome.effects] == [{"name": "5 off", "value": 15, "position": 2}]


# --- additional costs, free items, giveaways -----------------------------------------------------


def test_discount_on_an_additional_cost() -> None:
    rules = engine(
        campaign(
            1,
            rule(
                "free shipping",
                {
                    "setDiscountPerAdditionalCost": {
                        "name": "Free shipping",
                        "additionalCost": "shipping",
                        "percentage": 100,
                    }
                },
            ),
        ),
        additionalCosts=[{"id": 7, "name": "shipping"}],
    )

    with_cost = rules.evaluate(facts(session(BLOUSE, costs=(("shipping", 4.95),))))
    without = rules.evaluate(facts(session(BLOUSE)))

    assert [e["props"] for e in with_cost.effects] == [
        {
            "name": "Free shipping",
            "additionalCostId": 7,
            "additionalCost": "shipping",
            "value": 4.95,
        }
    ]
    assert without.effects == []


def test_free_item_and_giveaway_while_open_and_on_close() -> None:
    rules = engine(
        campaign(
            1,
            rule(
                "gift",
                {"addFreeItem": {"sku": "tote01", "name": "Tote", "desiredQuantity": 2}},
                {"awardGiveaway": {"poolId": 3}},
            ),
        ),
        giveawayPools=[{"id": 3, "name": "Gift cards", "codes": ["G-1"]}],
    )

    opened = rules.evaluate(facts(session(BLOUSE)))
    closed = rules.evaluate(facts(session(BLOUSE, state="closed")))
    anonymous = rules.evaluate(Facts("talon_session_updated", None, {}, session(BLOUSE)))

    assert [(e["effectType"], e["props"]) for e in opened.effects] == [
        ("addFreeItem", {"sku": "tote01", "name": "Tote", "desiredQuantity": 2}),
        (
            "willAwardGiveaway",
            {"poolId": 3, "poolName": "Gift cards", "recipientIntegrationId": "cust-1"},
        ),
    ]
    assert closed.effects[1]["effectType"] == "awardGiveaway"
    assert closed.effects[1]["props"] == {
        "poolId": 3,
        "poolName": "Gift cards",
        "recipientIntegrationId": "cust-1",
        "giveawayId": 1,
        "code": "G-1",
    }
    assert [(a.pool_id, a.code) for a in closed.awarded_giveaways] == [(3, "G-1")]
    assert [e["effectType"] for e in anonymous.effects] == ["addFreeItem"]


# --- conditions ----------------------------------------------------------------------------------


NOTE = {"showNotification": {"title": "t", "body": "b"}}


@pytest.mark.parametrize(
    ("condition", "holds", "fails"),
    [
        (
            {"cartSubtotalBelow": 50},
            facts(session(BLOUSE)),
            facts(session(BLOUSE, TROUSERS)),
        ),
        (
            {"itemQuantityAtLeast": {"quantity": 3, "category": "Shoes"}},
            facts(session(SHOES)),
            facts(session(BLOUSE, CartLine(1, "snk001", 30, 2, "Shoes"))),
        ),
        (
            {"itemQuantityAtLeast": {"quantity": 2, "sku": ["rsb002", "dtr003"]}},
            facts(session(BLOUSE, TROUSERS)),
            facts(session(BLOUSE)),
        ),
        (
            {"sessionAttributeEquals": {"attribute": "channel", "value": "app"}},
            facts(session(BLOUSE, attributes={"channel": "app"})),
            facts(session(BLOUSE, attributes={"channel": "web"})),
        ),
        (
            {"eventAttributeEquals": {"attribute": "rating", "value": 5}},
            facts(event_type="review_submitted", event_attributes={"rating": 5}),
            facts(event_type="review_submitted", event_attributes={"rating": 4}),
        ),
        (
            {"storeIntegrationId": ["store-berlin", "store-paris"]},
            facts(session(BLOUSE, store_integration_id="store-paris")),
            facts(session(BLOUSE)),
        ),
        (
            {"storeIntegrationId": "store-berlin"},
            facts(event_type="review_submitted", store_integration_id="store-berlin"),
            facts(event_type="review_submitted", store_integration_id="store-paris"),
        ),
    ],
)
def test_conditions(condition: dict[str, Any], holds: Facts, fails: Facts) -> None:
    rules = engine(
        campaign(1, rule("r", NOTE, conditions=[condition])),
        attributes={"CustomerSession": {"channel": "string"}},
        eventTypes={"review_submitted": {"attributes": {"rating": "number"}}},
    )

    assert [e["effectType"] for e in rules.evaluate(holds).effects] == ["showNotification"]
    assert rules.evaluate(fails).effects == []


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (
            {"campaigns": [campaign(1, rule("r", NOTE, conditions=[{"referralValid": True}]))]},
            "referralValid in a campaign without referrals",
        ),
        (
            {"campaigns": [campaign(1, rule("r", {"awardGiveaway": {"poolId": 9}}))]},
            "unknown giveaway pool 9",
        ),
        (
            {
                "campaigns": [
                    campaign(
                        1,
                        rule(
                            "r",
                            {
                                "setDiscountPerAdditionalCost": {
                                    "name": "n",
                                    "additionalCost": "gift wrap",
                                    "amount": 1,
                                }
                            },
                        ),
                    )
                ]
            },
            "undeclared additional cost 'gift wrap'",
        ),
        (
            {"campaigns": [campaign(1, rule("r", {"createCoupon": {"recipient": "advocate"}}))]},
            "a coupon for the advocate needs referralValid",
        ),
        (
            {"campaigns": [campaign(1, rule("r", {"createReferral": {}}))]},
            "createReferral needs a referral campaign",
        ),
        (
            {
                "campaigns": [
                    campaign(
                        1,
                        rule("r", NOTE),
                        coupons=[
                            {
                                "code": "DATES",
                                "startDate": "2026-02-01T00:00:00Z",
                                "expiryDate": "2026-01-01T00:00:00Z",
                            }
                        ],
                    )
                ]
            },
            "expiryDate must be after startDate",
        ),
        (
            {
                "campaigns": [
                    campaign(
                        1,
                        rule("r", NOTE),
                        coupons=[{"code": "NAIVE", "expiryDate": "2026-01-01T00:00:00"}],
                    )
                ]
            },
            "timezone",
        ),
        (
            {
                "campaigns": [
                    campaign(
                        1,
                        rule(
                            "r",
                            NOTE,
                            conditions=[
                                {"sessionAttributeEquals": {"attribute": "nope", "value": 1}}
                            ],
                        ),
                    )
                ]
            },
            "undeclared session attribute 'nope'",
        ),
        (
            {"catalogs": [{"id": 1, "name": "c", "items": [{"sku": "a"}, {"sku": "a"}]}]},
            "duplicate sku 'a'",
        ),
        (
            {"giveawayPools": [{"id": 1, "name": "p", "codes": ["X", "X"]}]},
            "duplicate code",
        ),
    ],
)
def test_invalid_promotion_declarations(document: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CampaignFileError) as raised:
        parse_campaigns(document)

    assert fragment in str(raised.value)


# --- the session life cycle ----------------------------------------------------------------------


FLATTENED: CampaignSet = parse_campaigns(
    {
        "application": {"cartItemFlattening": True},
        "additionalCosts": [{"id": 7, "name": "shipping"}],
        "giveawayPools": [{"id": 3, "name": "Gift cards", "codes": ["G-1", "G-2"]}],
        "campaigns": [
            campaign(
                1,
                rule(
                    "5 off each shoe",
                    {"setDiscountPerItem": {"name": "shoes", "amount": 5, "category": "Shoes"}},
                ),
                rule(
                    "shipping",
                    {
                        "setDiscountPerAdditionalCost": {
                            "name": "half shipping",
                            "additionalCost": "shipping",
                            "percentage": 50,
                        }
                    },
                ),
                rule(
                    "gift card",
                    {"awardGiveaway": {"poolId": 3}},
                    {"customEffect": {"effectId": 1, "name": "confetti"}},
                ),
            )
        ],
    }
)
SHOES_JSON = {"sku": "snk001", "quantity": 3, "price": 30, "category": "Shoes"}


@pytest.fixture
def api() -> IntegrationService:
    return IntegrationService(EmulatorState(FLATTENED))


def put(api: IntegrationService, session_id: str, **fields: Any) -> dict[str, Any]:
    body = {"customerSession": fields, "responseContent": ["awardedGiveaways"]}
    return api.update_customer_session(session_id, body)


def of_type(response: dict[str, Any], effect_type: str) -> list[dict[str, Any]]:
    return [effect for effect in response["effects"] if effect["effectType"] == effect_type]


def test_returns_roll_back_per_returned_unit(api: IntegrationService) -> None:
    put(
        api,
        "s-1",
        profileId="ada",
        cartItems=[SHOES_JSON],
        additionalCosts={"shipping": {"price": 6}},
        state="closed",
    )

    returned = api.return_cart_items(
        "s-1", {"return": {"returnedCartItems": [{"position": 0, "quantity": 2}]}}
    )
    cancelled = put(api, "s-1", state="cancelled")

    assert [e["props"] for e in of_type(returned, "rollbackDiscount")] == [
        {"name": "shoes", "value": 5, "cartItemPosition": 0, "cartItemSubPosition": 0},
        {"name": "shoes", "value": 5, "cartItemPosition": 0, "cartItemSubPosition": 1},
    ]
    assert [e["props"] for e in of_type(cancelled, "rollbackDiscount")] == [
        {"name": "shoes", "value": 5, "cartItemPosition": 0, "cartItemSubPosition": 2},
        {"name": "half shipping", "value": 3, "additionalCostId": 7, "additionalCost": "shipping"},
    ]


def test_giveaways_are_awarded_on_close_and_kept_on_reopen(api: IntegrationService) -> None:
    opened = put(api, "s-1", profileId="ada", cartItems=[SHOES_JSON])
    closed = put(api, "s-1", state="closed")
    reopened = api.reopen_customer_session("s-1")
    other = put(api, "s-2", profileId="bob", cartItems=[SHOES_JSON], state="closed")
    last = put(api, "s-3", profileId="cid", cartItems=[SHOES_JSON], state="closed")

    assert of_type(opened, "willAwardGiveaway")
    assert opened["awardedGiveaways"] == []
    [award] = of_type(closed, "awardGiveaway")
    assert award["props"]["code"] == "G-1"
    [giveaway] = closed["awardedGiveaways"]
    assert (giveaway["code"], giveaway["poolId"], giveaway["used"]) == ("G-1", 3, True)
    assert giveaway["profileIntegrationId"] == "ada"
    # Reopening rolls back discounts, never giveaways or custom effects.
    assert {e["effectType"] for e in reopened["effects"]} == {"rollbackDiscount"}
    assert of_type(other, "awardGiveaway")[0]["props"]["code"] == "G-2"
    assert of_type(last, "awardGiveaway") == []  # the pool is empty
    assert of_type(last, "customEffect")


def test_default_campaigns_load_with_their_promotions() -> None:
    campaigns = load_campaigns()

    assert [pool.id for pool in campaigns.giveaway_pools] == [1]
    assert [catalog.id for catalog in campaigns.catalogs] == [1]
    assert [cost.name for cost in campaigns.additional_costs] == ["shipping"]
    referral = next(c for c in campaigns.campaigns if c.referrals is not None)
    assert referral.features == ["coupons", "referrals"]

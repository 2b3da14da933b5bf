"""Effect routing: which topics get which effects, by type pattern."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from talon_stream.core._routing import DEFAULT_EFFECT_ROUTES, EffectRouter


def effect(kind: str, **props: Any) -> dict[str, Any]:
    return {"campaignId": 1, "rulesetId": 2, "ruleIndex": 0, "effectType": kind, "props": props}


def test_the_default_routes_split_pricing_from_notifications_and_send_rollbacks_to_both() -> None:
    router = EffectRouter(DEFAULT_EFFECT_ROUTES)
    effects = [
        effect("acceptCoupon", value="xmas20"),
        effect("setDiscount", name="20%", value=24.6),
        effect("setDiscountPerItem", value=5),
        effect("addLoyaltyPoints", value=10),
        effect("showNotification", title="Hi"),
        effect("rollbackDiscount", value=24.6),
        effect("somethingNew"),
    ]
    routed = router.route(effects)
    kinds = {topic: [e["effectType"] for e in found] for topic, found in routed.items()}
    assert kinds == {
        "talon.effects.pricing": [
            "acceptCoupon",
            "setDiscount",
            "setDiscountPerItem",
            "rollbackDiscount",
        ],
        "talon.effects.notifications": ["addLoyaltyPoints", "showNotification", "rollbackDiscount"],
    }
    assert routed["talon.effects.pricing"][1] is effects[1]  # the effects as Talon.One sent them


def test_topics_without_matching_effects_get_nothing_and_no_routes_mean_no_routing() -> None:
    router = EffectRouter(DEFAULT_EFFECT_ROUTES)
    assert router.route([effect("addLoyaltyPoints")]) == {
        "talon.effects.notifications": [effect("addLoyaltyPoints")]
    }
    assert router.route([]) == {}
    assert EffectRouter({}).route([effect("setDiscount")]) == {}
    assert EffectRouter({"t": []}).topics == ()


def test_odd_effects_are_skipped_not_fatal() -> None:
    router = EffectRouter({"t": ["*"]})
    assert router.route([None, "x", {"effectType": 3}, {"no": "type"}, effect("a")]) == {
        "t": [effect("a")]
    }


@given(
    st.lists(
        st.sampled_from(
            [
                "setDiscount",
                "addFreeItem",
                "couponCreated",
                "rollbackCoupon",
                "customEffect",
                "unknownKind",
            ]
        ),
        max_size=30,
    )
)
def test_every_routed_effect_matches_its_topic_and_order_is_kept(kinds: list[str]) -> None:
    router = EffectRouter(DEFAULT_EFFECT_ROUTES)
    effects = [effect(kind, n=i) for i, kind in enumerate(kinds)]
    routed = router.route(effects)
    for topic, found in routed.items():
        assert found
        assert [e["props"]["n"] for e in found] == sorted(e["props"]["n"] for e in found)
        for e in found:
            assert topic in router.topics_of(e["effectType"])
    for e in effects:
        for topic in router.topics_of(e["effectType"]):
            assert e in routed[topic]
    orjson.dumps(routed)  # plain JSON

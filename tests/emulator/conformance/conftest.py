"""What the SDK conformance tests share: an SDK client of the module's emulator (``api``, for
the ``server`` fixture each module defines), unique IDs, and effects parsed by the SDK's models."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
import talon_one as t

from talon_one_emulator import EmulatorServer

# The SDK's model of the props of each effect type the emulator emits.
PROPS_MODELS: dict[str, Any] = {
    "setDiscount": t.SetDiscountEffectProps,
    "setDiscountPerItem": t.SetDiscountPerItemEffectProps,
    "setDiscountPerAdditionalCost": t.SetDiscountPerAdditionalCostEffectProps,
    "acceptCoupon": t.AcceptCouponEffectProps,
    "rejectCoupon": t.RejectCouponEffectProps,
    "acceptReferral": t.AcceptReferralEffectProps,
    "rejectReferral": t.RejectReferralEffectProps,
    "couponCreated": t.CouponCreatedEffectProps,
    "referralCreated": t.ReferralCreatedEffectProps,
    "addFreeItem": t.AddFreeItemEffectProps,
    "willAwardGiveaway": t.WillAwardGiveawayEffectProps,
    "awardGiveaway": t.AwardGiveawayEffectProps,
    "showNotification": t.ShowNotificationEffectProps,
    "addLoyaltyPoints": t.AddLoyaltyPointsEffectProps,
    "deductLoyaltyPoints": t.DeductLoyaltyPointsEffectProps,
    "changeLoyaltyTierLevel": t.ChangeLoyaltyTierLevelEffectProps,
    "customEffect": t.CustomEffectProps,
    "updateAttribute": t.UpdateAttributeEffectProps,
    "rollbackDiscount": t.RollbackDiscountEffectProps,
    "rollbackCoupon": t.RollbackCouponEffectProps,
    "rollbackReferral": t.RollbackReferralEffectProps,
    "rollbackAddedLoyaltyPoints": t.RollbackAddedLoyaltyPointsEffectProps,
    "rollbackDeductedLoyaltyPoints": t.RollbackDeductedLoyaltyPointsEffectProps,
}


def sdk_api(server: EmulatorServer, key: str | None = None) -> t.IntegrationApi:
    """An SDK client of ``server`` (default key: its first API key)."""
    config = t.Configuration(
        host=server.base_url,
        api_key={"api_key_v1": key or server.config.api_keys[0]},
        api_key_prefix={"api_key_v1": "ApiKey-v1"},
    )
    return t.IntegrationApi(t.ApiClient(config))


@pytest.fixture
def api(server: EmulatorServer) -> t.IntegrationApi:
    return sdk_api(server)


def new_id(prefix: str) -> str:
    """A session or profile ID no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def props(effect: t.Effect) -> Any:
    """The effect's props as the SDK's typed model (raises if the shape is wrong)."""
    parsed = PROPS_MODELS[effect.effect_type].from_dict(effect.props)
    assert parsed is not None
    return parsed


def effects_of(
    effects: list[t.Effect] | None, effect_type: str, program: int | None = None
) -> list[Any]:
    """The typed props of the effects of one type (of one loyalty ``program``); every effect
    must name its rule and parse, not only the ones asked for."""
    assert effects is not None
    found = []
    for effect in effects:
        for key in ("campaign_id", "ruleset_id", "rule_index", "rule_name"):
            assert getattr(effect, key) is not None
        parsed = props(effect)
        if effect.effect_type == effect_type and (program is None or parsed.program_id == program):
            found.append(parsed)
    return found


def free_port() -> int:
    """A loopback port nothing listens on (for a server started in a subprocess)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

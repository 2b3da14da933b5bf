"""Request log, configuration, concurrency gate, rollback arithmetic and the public API."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

import talon_one_emulator
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import ConfigError, ConflictError
from talon_one_emulator.rules.rollback import plan_rollback
from talon_one_emulator.store.concurrency import IntegrationIdGate
from talon_one_emulator.store.requestlog import RequestLog


def log_one(log: RequestLog, path: str = "/v2/events") -> None:
    log.record(
        method="POST",
        path=path,
        operation="trackEventV2",
        session_id=None,
        profile_id="cust-1",
        idempotency_key=None,
        query={"silent": "no"},
        body=b'{"type": "review_submitted"}',
        status=200,
        started=1.0,
        ended=2.0,
    )


def _isort_key(name: str) -> tuple[int, str]:
    # Ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_public_api_is_sorted_and_importable() -> None:
    assert talon_one_emulator.__all__ == sorted(talon_one_emulator.__all__, key=_isort_key)
    for name in talon_one_emulator.__all__:
        assert getattr(talon_one_emulator, name) is not None


def test_request_log_is_bounded_and_keeps_counting() -> None:
    log = RequestLog(maxlen=3)
    for _ in range(5):
        log_one(log)

    assert [entry["seq"] for entry in log.entries()] == [3, 4, 5]
    assert [entry["seq"] for entry in log.entries(since=4)] == [5]
    log.clear()
    assert len(log) == 0
    log_one(log)
    assert [entry["seq"] for entry in log] == [6]


def test_request_log_entry_shape() -> None:
    log = RequestLog()
    log_one(log)

    [entry] = log.entries()
    assert set(entry) == {
        "seq",
        "method",
        "path",
        "operation",
        "sessionId",
        "profileId",
        "idempotencyKey",
        "query",
        "body",
        "status",
        "started",
        "ended",
        "replayed",
        "fault",
    }
    assert entry["body"] == {"type": "review_submitted"}
    assert orjson.loads(log.to_json()) == [entry]


def test_config_normalises_keys_and_hides_them() -> None:
    config = EmulatorConfig(api_keys=["secret-key"])

    assert config.api_keys == ("secret-key",)
    assert "secret-key" not in repr(config)
    assert len(config.campaigns.campaigns) > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_keys": []},
        {"api_keys": "one-string"},
        {"api_keys": ["has space"]},
        {"api_keys": ["k"], "latency_ms": -1},
        {"api_keys": ["k"], "concurrency_limit": 0},
        {"api_keys": ["k"], "request_log_size": 0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EmulatorConfig(**kwargs)


async def test_gate_admits_three_per_id_and_refuses_the_fourth() -> None:
    gate = IntegrationIdGate(3)
    release = asyncio.Event()
    order: list[int] = []

    async def request(number: int) -> None:
        async with gate.hold("session", "s-1"):
            order.append(number)
            await release.wait()

    tasks = [asyncio.create_task(request(number)) for number in range(3)]
    await asyncio.sleep(0)
    assert gate.in_flight("session", "s-1") == 3
    with pytest.raises(ConflictError) as caught:
        async with gate.hold("session", "s-1"):
            pass
    assert caught.value.body() == {
        "message": "Too many requests are updating this session at the same time",
        "StatusCode": 409,
    }
    async with gate.hold("session", "other"):
        pass
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert gate.in_flight("session", "s-1") == 0


def discount(value: float, position: int | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"name": "d", "value": value}
    effect_type = "setDiscount"
    if position is not None:
        props["position"] = position
        effect_type = "setDiscountPerItem"
    return {
        "campaignId": 1,
        "rulesetId": 2,
        "ruleIndex": 0,
        "ruleName": "r",
        "effectType": effect_type,
        "props": props,
    }


def test_rollback_shares_add_up_to_the_original() -> None:
    closing = [discount(10.0), discount(5.0, position=0)]
    rolled: list[float] = []
    total = 0.0
    for share in (1 / 3, 2 / 3):
        effects, rolled = plan_rollback(
            closing, rolled, full=False, session_share=share, item_share={0: share}
        )
        total += sum(effect["props"]["value"] for effect in effects)
    effects, rolled = plan_rollback(closing, rolled, full=True)
    total += sum(effect["props"]["value"] for effect in effects)

    assert round(total, 2) == 15.0
    assert rolled == [10.0, 5.0]
    assert all(effect["effectType"] == "rollbackDiscount" for effect in effects)


def test_full_rollback_includes_coupons_once() -> None:
    coupon = {
        "campaignId": 1,
        "rulesetId": 2,
        "ruleIndex": 0,
        "ruleName": "r",
        "effectType": "acceptCoupon",
        "props": {"value": "xmas20"},
    }

    effects, rolled = plan_rollback([coupon], [], full=True)
    again, _ = plan_rollback([coupon], rolled, full=True)

    assert [effect["effectType"] for effect in effects] == ["rollbackCoupon"]
    assert effects[0]["props"] == {"value": "xmas20"}
    assert again == []

"""The emulator's outbound notifications: what it sends after a catalog sync, a session that
earns loyalty points and a created coupon (bodies the SDK's notification models accept), and
how it delivers them: retried on 5xx, 429 and connection errors, never on another 4xx, given up
after the retry window, sent twice on purpose with ``duplicate_rate``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from talon_one.models.added_deducted_points_notification import AddedDeductedPointsNotification
from talon_one.models.create_coupon_data import CreateCouponData
from talon_one.models.strikethrough_labeling_notification import (
    StrikethroughLabelingNotification,
)

from talon_one_emulator.app import create_app
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.notifications.sender import NotificationSender
from talon_one_emulator.notifications.settings import (
    NotificationSettings,
    NotificationWebhook,
    parse_webhook,
)
from talon_one_emulator.server import serve
from tests.emulator.support import HTTP_KEY

SECRET = {"X-Talon-Stream-Token": "s3cret"}


class Hook:
    """A webhook on loopback answering each request with the next scripted status (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    target = Hook()
    app = web.Application()
    app.router.add_post("/notifications", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/notifications"
    try:
        yield target
    finally:
        await runner.cleanup()


def fast(url: str, **changes: Any) -> NotificationSettings:
    fields: dict[str, Any] = {
        "webhooks": (NotificationWebhook(url=url, headers=SECRET),),
        "initial_backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "retry_for_s": 5.0,
        "timeout_s": 2.0,
        **changes,
    }
    return NotificationSettings(**fields)


async def settled(sender: NotificationSender, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while sender.outstanding:
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.01)


async def send_one(settings: NotificationSettings) -> NotificationSender:
    sender = NotificationSender(settings)
    await sender.start()
    sender.emit("loyalty", {"NotificationType": "LoyaltyPointsAdded"})
    await settled(sender)
    await sender.close()
    return sender


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_5xx_and_429_are_retried_until_delivered(hook: Hook, status: int) -> None:
    hook.statuses = [status, status]
    sender = await send_one(fast(hook.url))
    (delivery,) = sender.deliveries
    assert delivery.attempts == [status, status, 200]
    assert delivery.outcome == "delivered"
    ids = {headers["X-UUID"] for headers, _ in hook.requests}
    assert ids == {delivery.message_id}  # every attempt is the same message
    assert all(headers["X-Talon-Stream-Token"] == "s3cret" for headers, _ in hook.requests)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_other_4xx_end_the_delivery_at_once(hook: Hook, status: int) -> None:
    hook.statuses = [status]
    sender = await send_one(fast(hook.url))
    (delivery,) = sender.deliveries
    assert (delivery.attempts, delivery.outcome) == ([status], "refused")
    assert len(hook.requests) == 1


async def test_no_answer_is_retried_and_the_window_is_bounded(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/notifications"  # nothing listens
    sender = await send_one(fast(url, retry_for_s=0.3))
    (delivery,) = sender.deliveries
    assert delivery.outcome == "gave_up"
    assert len(delivery.attempts) >= 3
    assert set(delivery.attempts) == {0}


async def test_duplicate_rate_sends_a_delivered_notification_again(hook: Hook) -> None:
    sender = await send_one(fast(hook.url, duplicate_rate=1.0))
    (delivery,) = sender.deliveries
    assert delivery.duplicated
    assert delivery.attempts == [200, 200]
    first, second = hook.requests
    assert first == second  # same X-UUID, same body


async def test_the_operations_emit_notifications_the_sdk_models_accept(hook: Hook) -> None:
    config = EmulatorConfig(api_keys=[HTTP_KEY], notifications=fast(hook.url))
    app = create_app(config)
    assert app.notifications is not None
    headers = {"Authorization": f"ApiKey-v1 {HTTP_KEY}"}
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        sync = {
            "actions": [
                {"type": "ADD", "payload": {"sku": f"sku-{n}", "price": 10 + n}} for n in range(3)
            ]
        }
        async with client.put("/v1/catalogs/1/sync", json=sync, headers=headers) as answer:
            assert answer.status == 200
        session = {
            "customerSession": {
                "profileId": "alice",
                "state": "closed",
                "cartItems": [{"sku": "rsb002", "quantity": 1, "price": 40}],
            }
        }
        async with client.put("/v2/customer_sessions/s-1", json=session, headers=headers) as answer:
            assert answer.status == 200
        await settled(app.notifications)
    by_type: dict[str, list[Any]] = {}
    for _headers, body in hook.requests:
        by_type.setdefault(body["NotificationType"], []).append(body)
    (pricing,) = by_type["StrikethroughPrice"]
    # from_dict of SDK 26.2 names an undefined class for ``trigger``: validate directly.
    model = StrikethroughLabelingNotification.model_validate(pricing)
    assert [item.sku for item in model.changed_items] == ["sku-0", "sku-1", "sku-2"]
    assert [item.price for item in model.changed_items] == [10, 11, 12]
    (points,) = by_type["LoyaltyPointsAdded"]
    loyalty = AddedDeductedPointsNotification.model_validate(points)
    assert (loyalty.profile_integration_id, loyalty.amount) == ("alice", 40)
    assert loyalty.session_integration_id == "s-1"


async def test_a_created_coupon_is_a_coupon_created_notification(hook: Hook) -> None:
    sender = NotificationSender(fast(hook.url))
    await sender.start()
    from talon_one_emulator.notifications.payloads import coupons_created

    sender.emit(
        "coupons",
        coupons_created(
            [
                {
                    "id": 1,
                    "created": "2026-01-01T00:00:00Z",
                    "campaignId": 9,
                    "value": "THANKS-1",
                    "usageLimit": 1,
                    "usageCounter": 0,
                }
            ],
            application_id=1,
        ),
    )
    await settled(sender)
    await sender.close()
    ((_headers, body),) = hook.requests
    model = CreateCouponData.model_validate(body)
    assert model.data is not None
    assert [coupon.value for coupon in model.data] == ["THANKS-1"]


@pytest.mark.parametrize(
    ("text", "check"),
    [
        (
            "http://receiver:8080/notifications",
            lambda hook: hook.kinds == ("strikethrough", "loyalty", "coupons"),
        ),
        (
            '{"url": "http://r/n", "headers": {"X-A": "b"}, "kinds": ["loyalty"]}',
            lambda hook: hook.headers == {"X-A": "b"} and hook.kinds == ("loyalty",),
        ),
    ],
)
def test_webhooks_from_the_command_line(text: str, check: Callable[[Any], bool]) -> None:
    assert check(parse_webhook(text))


def test_a_webhook_needs_an_http_url() -> None:
    with pytest.raises(ValueError):
        parse_webhook("ftp://nowhere")

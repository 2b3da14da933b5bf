"""What the emulator's unit and conformance tests share: the specification's responseContent
values, a clock the tests control, a rule builder for campaign documents, and a call through
HTTP.

The value lists are written out here rather than taken from
:mod:`talon_one_emulator.models.integration`: they are what
the official SDK sends, and a test that read them from the emulator would no longer notice a value
the emulator stopped accepting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

__all__ = [
    "HTTP_KEY",
    "PROFILE_CONTENT",
    "RETURN_CONTENT",
    "SESSION_CONTENT",
    "START",
    "UNDECLARED_SESSION_ATTRIBUTE",
    "FakeClock",
    "call",
    "rule",
]

# Every responseContent value of updateCustomerSessionV2, of returnCartItems, and of
# updateCustomerProfileV2 and trackEventV2, in the SDK's order.
SESSION_CONTENT = [
    "customerSession",
    "customerProfile",
    "coupons",
    "triggeredCampaigns",
    "referral",
    "loyalty",
    "event",
    "awardedGiveaways",
    "ruleFailureReasons",
    "previousReturns",
]
RETURN_CONTENT = [c for c in SESSION_CONTENT if c not in ("awardedGiveaways", "ruleFailureReasons")]
PROFILE_CONTENT = [
    "customerProfile",
    "triggeredCampaigns",
    "loyalty",
    "event",
    "awardedGiveaways",
    "ruleFailureReasons",
]

# What Talon.One answers when a session sets the undeclared attribute "MyAttribute".
UNDECLARED_SESSION_ATTRIBUTE = {
    "message": "The submitted data was invalid",
    "errors": [
        {
            "title": "Unknown",
            "details": 'The attribute "MyAttribute" is not defined on CustomerSession entities.',
            "source": {"pointer": "/customerSession/attributes/MyAttribute"},
        }
    ],
}

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Starts at :data:`START` and moves on a millisecond per reading (every stamp differs);
    :meth:`advance` jumps ahead."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def rule(name: str, effects: list[Any], conditions: list[Any] | None = None) -> dict[str, Any]:
    """A campaign rule; without ``conditions`` it fires for any cart worth something."""
    return {
        "name": name,
        "conditions": conditions or [{"cartSubtotalAtLeast": 1}],
        "effects": effects,
    }


# The API key of the emulators the unit tests serve over HTTP.
HTTP_KEY = "unit-test-key"


async def call(
    client: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    params: Any = None,
) -> tuple[int, Any]:
    """One authorised request: the status and the JSON body (``None`` when there is none)."""
    headers = {"Authorization": f"ApiKey-v1 {HTTP_KEY}"}
    async with client.request(method, path, json=body, headers=headers, params=params) as answer:
        text = await answer.text()
        return answer.status, (await answer.json()) if text else None

"""Where the emulator sends notifications, and how it retries: one frozen object."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["NotificationKind", "NotificationSettings", "NotificationWebhook", "parse_webhook"]

#: The notifications the emulator can send: strikethrough pricing updates, added/deducted loyalty
#: points, created coupons.
NotificationKind = Literal["strikethrough", "loyalty", "coupons"]
_ALL_KINDS: tuple[NotificationKind, ...] = ("strikethrough", "loyalty", "coupons")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class NotificationWebhook(_Model):
    """One notification as configured in Talon.One: its URL, its custom headers and the kinds
    of notification it sends (Talon.One has one configuration per type; one webhook here may
    stand for several)."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    kinds: tuple[NotificationKind, ...] = _ALL_KINDS

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a webhook URL starts with http:// or https://")
        return value


class NotificationSettings(_Model):
    """The notification webhooks and how deliveries are retried.

    Attributes:
        webhooks: where notifications go (none: nothing is sent).
        retry_for_s: a delivery answered 5xx or 429, or not answered, is retried for this long
            (Talon.One: about 10 minutes), the waits doubling from ``initial_backoff_s`` up to
            ``max_backoff_s``; any other 4xx ends it.
        timeout_s: how long one attempt may take.
        concurrency: deliveries in flight at once.
        batch_size: changed items per strikethrough notification (Talon.One's default: 1,000).
        duplicate_rate: a fault for tests: the share of delivered notifications sent once more
            with the same ``X-UUID``, as when Talon.One's connection drops before the 2xx
            arrives.
        seed: seeds the draws of ``duplicate_rate`` and the back-off jitter.
    """

    webhooks: tuple[NotificationWebhook, ...] = ()
    retry_for_s: Annotated[float, Field(gt=0)] = 600.0
    initial_backoff_s: Annotated[float, Field(gt=0)] = 1.0
    max_backoff_s: Annotated[float, Field(gt=0)] = 60.0
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    concurrency: Annotated[int, Field(ge=1)] = 4
    batch_size: Annotated[int, Field(ge=1)] = 1000
    duplicate_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    seed: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks)


def parse_webhook(text: str) -> NotificationWebhook:
    """A webhook from the command line: a URL, or a JSON object
    (``{"url": ..., "headers": {...}, "kinds": [...]}``).

    Raises:
        ValueError: neither.
    """
    text = text.strip()
    fields: Any = orjson.loads(text) if text.startswith("{") else {"url": text}
    return NotificationWebhook.model_validate(fields)

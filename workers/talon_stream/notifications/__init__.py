"""Talon.One → Kafka: the receiver of Talon.One's outbound notifications (webhooks).

``talon-stream notifications`` serves the webhooks, publishes each notification to the topic of
its category (pricing, loyalty, coupons, campaigns) keyed by what it concerns, answers 2xx only
once Kafka acknowledged every record, and publishes a notification Talon.One sends again (a
retry) only once. See docs/notifications.md.
"""

from talon_stream.notifications._dedupe import InFlight, SeenIds
from talon_stream.notifications._errors import NotificationError, PayloadError, PublishError
from talon_stream.notifications._metrics import NotificationStats, render_metrics
from talon_stream.notifications._payloads import (
    CATEGORIES,
    Category,
    Notification,
    notification_id,
    parse_notifications,
)
from talon_stream.notifications._receiver import (
    Answer,
    NotificationReceiver,
    ReceiverOptions,
    RecordSender,
)
from talon_stream.notifications._server import ReceiverServer
from talon_stream.notifications._tail import ID_HEADER, PublishedIds

__all__ = [
    "CATEGORIES",
    "ID_HEADER",
    "Answer",
    "Category",
    "InFlight",
    "Notification",
    "NotificationError",
    "NotificationReceiver",
    "NotificationStats",
    "PayloadError",
    "PublishError",
    "PublishedIds",
    "ReceiverOptions",
    "ReceiverServer",
    "RecordSender",
    "SeenIds",
    "notification_id",
    "parse_notifications",
    "render_metrics",
]

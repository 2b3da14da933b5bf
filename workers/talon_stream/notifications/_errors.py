"""The notification receiver's errors, under the package's root::

TalonStreamError
└── NotificationError           the receiver refused or could not publish a request
    ├── PayloadError            a body that is not a notification it knows   → 400
    └── PublishError            Kafka did not acknowledge every record       → 503
"""

from __future__ import annotations

from talon_stream._exceptions import TalonStreamError

__all__ = ["NotificationError", "PayloadError", "PublishError"]


class NotificationError(TalonStreamError):
    """Root of the receiver's errors."""


class PayloadError(NotificationError):
    """The body is not JSON, not notification objects, of an unknown type, or lacks the field
    its records are keyed by; the message says which."""


class PublishError(NotificationError):
    """Kafka did not acknowledge every record of a request. ``topic`` names the first topic
    that failed, when known."""

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic

"""What the receiver does with one webhook request, apart from HTTP: check the secret, split the
body into notifications, drop the ones already published, publish the rest and wait until
Kafka acknowledged every record.

::

    request ─▶ secret? (401) ─▶ ready? (503) ─▶ notifications? (400)
               ─▶ each: seen? ─yes─▶ duplicate          in flight here? ─▶ wait for its outcome
               ─▶ the rest, one batch ─▶ Kafka acks all? ─no─▶ 503 (Talon.One retries)
                                                         └yes─▶ 200, ids remembered
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from talon_stream._exceptions import BrokerError
from talon_stream.core._records import OutputRecord
from talon_stream.notifications._dedupe import InFlight, SeenIds
from talon_stream.notifications._errors import PayloadError, PublishError
from talon_stream.notifications._metrics import NotificationStats
from talon_stream.notifications._payloads import Category, Notification, parse_notifications
from talon_stream.notifications._tail import ID_HEADER

__all__ = ["Answer", "NotificationReceiver", "ReceiverOptions", "RecordSender"]

log = logging.getLogger(__name__)

TYPE_HEADER = "talon-stream.notification.type"
MESSAGE_HEADER = "talon-stream.notification.message"
#: Talon.One's message id (the OpenAPI description of its notifications: ``X-UUID``).
MESSAGE_ID_HEADER = "X-UUID"


class RecordSender(Protocol):
    """What publishing needs of :class:`~talon_stream.kafka.AsyncProducer`."""

    async def send_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    """How requests are checked and where notifications go."""

    auth_header: str
    auth_secret: str
    topics: Mapping[Category, str]


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer to one request."""

    status: int
    body: dict[str, object]


class NotificationReceiver:
    """Turns webhook requests into acknowledged Kafka records, each notification once."""

    def __init__(
        self,
        options: ReceiverOptions,
        sender: RecordSender,
        seen: SeenIds,
        stats: NotificationStats,
        *,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._options = options
        self._sender = sender
        self._seen = seen
        self._stats = stats
        self._ready = ready
        self._in_flight = InFlight()
        self._secret = options.auth_secret.encode()

    def authorized(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries the configured secret in the configured header."""
        given = headers.get(self._options.auth_header)
        return given is not None and hmac.compare_digest(given.encode(), self._secret)

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """Check, split, deduplicate and publish one request; the answer to give."""
        answer = await self._receive(headers, body)
        self._stats.requests[answer.status] += 1
        return answer

    async def _receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        stats = self._stats
        if not self.authorized(headers):
            stats.auth_refused += 1
            return Answer(401, {"message": f"missing or wrong {self._options.auth_header}"})
        if not self._ready():
            stats.failures["not_ready"] += 1
            return Answer(503, {"message": "not ready: retry later"})
        try:
            notifications = parse_notifications(body, headers.get(MESSAGE_ID_HEADER))
        except PayloadError as exc:
            stats.failures["payload"] += 1
            log.warning("refused a notification request: %s", exc)
            return Answer(400, {"message": str(exc)})
        for notification in notifications:
            stats.received[notification.notification_type] += 1
        try:
            published, duplicates = await self._publish_new(notifications, headers)
        except PublishError as exc:
            stats.failures["kafka"] += 1
            log.warning("answering 503, Talon.One will retry: %s", exc)
            return Answer(503, {"message": "Kafka did not acknowledge every notification"})
        return Answer(200, {"published": published, "duplicates": duplicates})

    async def _publish_new(
        self, notifications: list[Notification], headers: Mapping[str, str]
    ) -> tuple[int, int]:
        """Publish the notifications not seen yet; ``(published, duplicates)``.

        Raises:
            PublishError: a record was not acknowledged (none of this request's ids is
                remembered then: they are published again on the retry, or recognised from
                the output topics if they did reach it).
        """
        # Copies of these notifications being published by other requests here: wait for their
        # outcome first, holding no claim meanwhile (two requests never wait for each other).
        while waits := [
            future
            for notification in notifications
            if (future := self._in_flight.waiting_for(notification.id)) is not None
        ]:
            await asyncio.wait([asyncio.shield(future) for future in waits])
        fresh: list[Notification] = []
        claimed: set[str] = set()
        duplicates = 0
        for notification in notifications:  # no await from here to the claims: atomic
            if notification.id in claimed or notification.id in self._seen:
                duplicates += 1
            else:
                fresh.append(notification)
                claimed.add(notification.id)
                self._in_flight.claim(notification.id)
        self._stats.duplicates += duplicates
        ids = [notification.id for notification in fresh]
        try:
            await self._sender.send_all(self._records(fresh, headers.get(MESSAGE_ID_HEADER)))
        except BrokerError as exc:
            self._in_flight.settle(ids, published=False)
            raise PublishError(str(exc)) from exc
        except BaseException:
            self._in_flight.settle(ids, published=False)
            raise
        self._seen.add_all(ids)
        self._in_flight.settle(ids, published=True)
        for notification in fresh:
            self._stats.published[self._options.topics[notification.category]] += 1
        return len(fresh), duplicates

    def _records(
        self, notifications: list[Notification], message_id: str | None
    ) -> list[OutputRecord]:
        topics = self._options.topics
        records: list[OutputRecord] = []
        for notification in notifications:
            headers = [
                (ID_HEADER, notification.id.encode()),
                (TYPE_HEADER, notification.notification_type.encode()),
            ]
            if message_id:
                headers.append((MESSAGE_HEADER, message_id.encode()))
            records.append(
                (
                    topics[notification.category],
                    notification.key.encode(),
                    notification.value,
                    headers,
                )
            )
        return records

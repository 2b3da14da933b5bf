"""Delivering notifications as Talon.One does: asynchronously, each body POSTed to its webhook
with the webhook's custom headers and an ``X-UUID`` message id, retried with growing waits on
5xx, 429 and connection errors for a bounded time, never on another 4xx.

:meth:`NotificationSender.emit` may be called from any code of the emulator (it never waits);
deliveries run on the emulator's event loop once :meth:`NotificationSender.start` was awaited.
Every delivery is recorded in :attr:`NotificationSender.deliveries`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httptools
import orjson

from talon_one_emulator.notifications.settings import (
    NotificationKind,
    NotificationSettings,
    NotificationWebhook,
)

__all__ = ["Delivery", "NotificationSender", "Post", "http_post"]

logger = logging.getLogger("emulator.notifications")

#: POST ``body`` to ``url`` with ``headers`` and return the status, within ``timeout_s``.
Post = Callable[[str, Mapping[str, str], bytes, float], Awaitable[int]]
Outcome = Literal["pending", "delivered", "refused", "gave_up"]


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(slots=True)
class Delivery:
    """One notification on its way to one webhook.

    Attributes:
        message_id: the ``X-UUID`` header, the same on every attempt.
        attempts: each attempt's status, or ``0`` when no answer came (connection refused or
            dropped, timeout).
        duplicated: sent once more after a 2xx (the ``duplicate_rate`` fault).
    """

    message_id: str
    kind: NotificationKind
    url: str
    body: bytes
    attempts: list[int] = field(default_factory=list)
    outcome: Outcome = "pending"
    duplicated: bool = False

    @property
    def payload(self) -> Any:
        return orjson.loads(self.body)


class NotificationSender:
    """Sends the notifications the emulator emits to the configured webhooks."""

    def __init__(
        self,
        settings: NotificationSettings,
        *,
        post: Post | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._post = post or http_post
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random(settings.seed)  # noqa: S311 - fault draws, not secrets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._waiting: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: Every delivery, in the order emitted.
        self.deliveries: list[Delivery] = []

    @property
    def outstanding(self) -> int:
        """Deliveries not finished yet."""
        return sum(1 for delivery in self.deliveries if delivery.outcome == "pending")

    def emit(self, kind: NotificationKind, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` for every webhook that takes ``kind``; returns at once."""
        body = orjson.dumps(payload)
        for webhook in self.settings.webhooks:
            if kind not in webhook.kinds:
                continue
            delivery = Delivery(str(uuid.uuid4()), kind, webhook.url, body)
            self.deliveries.append(delivery)
            loop = self._loop
            if loop is None:
                self._waiting.append(delivery)
            else:
                loop.call_soon_threadsafe(self._spawn, delivery, webhook)

    async def start(self) -> None:
        """Deliver from now on (what was emitted before, first)."""
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        waiting, self._waiting = self._waiting, []
        for delivery in waiting:
            self._spawn(delivery, self._webhook(delivery.url))

    async def close(self, timeout_s: float = 1.0) -> None:
        """Stop: give the deliveries in flight ``timeout_s``, then cancel them."""
        self._loop = None
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _webhook(self, url: str) -> NotificationWebhook:
        return next(webhook for webhook in self.settings.webhooks if webhook.url == url)

    def _spawn(self, delivery: Delivery, webhook: NotificationWebhook) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, webhook))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, webhook: NotificationWebhook) -> None:
        settings = self.settings
        headers = {
            "Content-Type": "application/json",
            **webhook.headers,
            "X-UUID": delivery.message_id,
        }
        deadline = self._clock() + settings.retry_for_s
        backoff = settings.initial_backoff_s
        assert self._slots is not None
        while True:
            async with self._slots:
                status = await self._attempt(webhook.url, headers, delivery.body)
            delivery.attempts.append(status)
            if 200 <= status < 300:
                if delivery.duplicated or self._random.random() >= settings.duplicate_rate:
                    delivery.outcome = "delivered"
                    return
                # The 2xx "got lost": Talon.One would time out, wait and send it again.
                delivery.duplicated = True
                await self._sleep(backoff * (0.5 + self._random.random() / 2))
                continue
            if status and not _retryable(status):
                delivery.outcome = "refused"
                logger.warning("notification %s refused: %d", delivery.message_id, status)
                return
            wait = backoff * (0.5 + self._random.random() / 2)
            if self._clock() + wait > deadline:
                delivery.outcome = "gave_up"
                logger.warning(
                    "notification %s not delivered after %d attempts",
                    delivery.message_id,
                    len(delivery.attempts),
                )
                return
            await self._sleep(wait)
            backoff = min(backoff * 2, settings.max_backoff_s)

    async def _attempt(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        try:
            return await self._post(url, headers, body, self.settings.timeout_s)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            logger.info("notification to %s not answered: %r", url, exc)
            return 0


class _Status:
    """httptools' callbacks: the answer is complete once the message is."""

    def __init__(self) -> None:
        self.complete = False

    def on_message_complete(self) -> None:
        self.complete = True


async def http_post(url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> int:
    """POST over a connection of its own (closed after the answer); the answer's status.

    Raises:
        OSError: no connection, or it closed before a whole answer.
        TimeoutError: no whole answer within ``timeout_s``.
        httptools.HttpParserError: the answer is not HTTP.
    """
    async with asyncio.timeout(timeout_s):
        return await _post(url, headers, body)


async def _post(url: str, headers: Mapping[str, str], body: bytes) -> int:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        state = _Status()
        parser = httptools.HttpResponseParser(state)
        while not state.complete:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionResetError("the connection closed before a whole answer")
            parser.feed_data(chunk)
        return int(parser.get_status_code())
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

"""``talon-stream notifications``: the receiver's HTTP servers, its producer and its life cycle.

Two listeners: the webhook port (``POST /notifications`` and ``POST /notifications/<name>``,
one path for every type: the body names its type) and the health port (``/healthz``,
``/readyz``, ``/metrics``). Ready once the producer has reached Kafka and the ids already on
the output topics are read (:mod:`talon_stream.notifications._tail`); on SIGTERM it stops
being ready, stops listening, lets the requests in flight finish (``drain``), flushes the
producer and exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

import orjson
from aiohttp import web

from talon_stream._exceptions import BrokerError, ConfigurationError
from talon_stream.config._settings import Settings
from talon_stream.kafka._producer import AsyncProducer
from talon_stream.notifications._dedupe import SeenIds
from talon_stream.notifications._metrics import NotificationStats, render_metrics
from talon_stream.notifications._payloads import Category
from talon_stream.notifications._receiver import NotificationReceiver, ReceiverOptions
from talon_stream.notifications._tail import PublishedIds

__all__ = ["ReceiverServer"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _json(status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


class ReceiverServer:
    """One replica of the receiver, built from ``settings``.

    Args:
        settings: the configuration (``notifications_*`` and the Kafka settings).
        producer_factory: builds the producer from its librdkafka settings (tests inject one).
        tail_factory: builds the reader of the output topics' ids.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        producer_factory: Callable[[dict[str, Any]], AsyncProducer] = AsyncProducer,
        tail_factory: Callable[..., PublishedIds] = PublishedIds,
    ) -> None:
        secret = settings.notifications_auth_token.get_secret_value()
        if not secret:
            raise ConfigurationError(
                "no notification secret: set TALON_STREAM_NOTIFICATIONS_AUTH_TOKEN to the value "
                f"of the {settings.notifications_auth_header} header configured on the "
                "notification webhooks in Talon.One"
            )
        self._settings = settings
        self.stats = NotificationStats()
        self.seen = SeenIds(
            settings.notifications_dedupe_capacity, settings.notifications_dedupe_window_s
        )
        self._producer = producer_factory(settings.notifications_producer_config())
        topics = cast(dict[Category, str], settings.notifications_topics())
        self._tail = tail_factory(
            {**settings.kafka_client_config(), "group.id": "talon-stream-notifications"},
            topics.values(),
            settings.notifications_dedupe_window_s,
            self.seen.add_all,
        )
        self.receiver = NotificationReceiver(
            ReceiverOptions(settings.notifications_auth_header, secret, topics),
            self._producer,
            self.seen,
            self.stats,
            ready=self.ready,
        )
        self._connected = False
        self._stopping = asyncio.Event()
        self._webhooks: web.AppRunner | None = None
        self._health: web.AppRunner | None = None
        #: The bound ports (known once started).
        self.port: int | None = None
        self.health_port: int | None = None

    def ready(self) -> bool:
        """Whether notifications are taken: Kafka reached, ids read, not stopping."""
        return self._connected and self._tail.caught_up.is_set() and not self._stopping.is_set()

    def stop(self) -> None:
        """Ask the replica to stop (SIGTERM); :meth:`run` then drains and returns."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve until :meth:`stop`; then drain and close everything.

        Raises:
            OSError: a port cannot be bound.
        """
        settings = self._settings
        try:
            self._health, self.health_port = await self._serve(
                self._health_app(), settings.notifications_health_port, drain_s=1.0
            )
            self._webhooks, self.port = await self._serve(
                self._webhook_app(),
                settings.notifications_port,
                drain_s=settings.notifications_drain_timeout_s,
            )
            log.info(
                "notification receiver on %s:%d (health and metrics on port %d)",
                settings.notifications_host,
                self.port,
                self.health_port,
            )
            self._tail.start()
            await self._connect()
            await self._stopping.wait()
            log.info("stopping: finishing the requests in flight")
        finally:
            self._stopping.set()
            if self._webhooks is not None:
                await self._webhooks.cleanup()  # stops listening, waits for requests in flight
            await self._producer.close(settings.notifications_publish_timeout_s)
            await self._tail.close()
            if self._health is not None:
                await self._health.cleanup()

    async def _connect(self) -> None:
        """Wait until the producer has reached Kafka (not ready before)."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await loop.run_in_executor(None, self._metadata)
            except BrokerError as exc:
                log.warning("Kafka not reachable yet (%s), again in %.1f s", exc, delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except TimeoutError:
                    delay = min(delay * 2, 10.0)
            else:
                self._connected = True
                return

    def _metadata(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self._producer.client.list_topics(timeout=5)
        except KafkaException as exc:
            raise BrokerError(str(exc)) from exc

    async def _serve(self, app: web.Application, port: int, drain_s: float) -> tuple[Any, int]:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=drain_s)
        await runner.setup()
        site = web.TCPSite(runner, self._settings.notifications_host, port)
        await site.start()
        return runner, int(runner.addresses[0][1])

    def _webhook_app(self) -> web.Application:
        app = web.Application(client_max_size=self._settings.notifications_max_body_bytes)
        app.router.add_post("/notifications", self._notification)
        app.router.add_post("/notifications/{name:.+}", self._notification)
        return app

    def _health_app(self) -> web.Application:
        app = web.Application()
        for path in ("/healthz", "/health"):
            app.router.add_get(path, self._healthz)
        for path in ("/readyz", "/ready"):
            app.router.add_get(path, self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _notification(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.stats.requests[413] += 1
            raise
        answer = await self.receiver.receive(request.headers, body)
        return _json(answer.status, answer.body)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.ready():
            return _json(200, {"status": "ready"})
        if self._stopping.is_set():
            reason = "stopping"
        elif not self._connected:
            reason = "waiting for Kafka"
        else:
            reason = "reading the ids already published"
        return _json(503, {"status": "not ready", "reason": reason})

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = render_metrics(self.stats, lambda: len(self.seen), self.ready)
        response = web.Response(status=200, body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

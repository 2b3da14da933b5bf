"""The worker's health endpoint: ``/healthz`` (is it working?), ``/readyz`` (is it consuming?)
and ``/metrics`` (Prometheus, see :mod:`talon_stream.ops._metrics`).

Both answer JSON; 200 when the answer is yes, 503 with the reason when it is no::

    GET /healthz  {"status": "ok"}
                  {"status": "halted", "reason": "Talon.One refused the API key ...",
                   "haltedForSeconds": 12.3}
    GET /readyz   {"status": "ready", "partitions": 6}
                  {"status": "not ready", "reason": "waiting for partitions"}

A halted worker (:mod:`talon_stream.talon._halt`) is unhealthy: an orchestrator that restarts it
picks up a
corrected key or URL, and one that doesn't keeps it probing until Talon.One answers again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web

from talon_stream.ops._metrics import CONTENT_TYPE, HaltState

__all__ = ["HealthServer", "WorkerStatus"]


@dataclass(slots=True)
class WorkerStatus:
    """What the endpoint reports, read on each request."""

    halt: HaltState
    partitions: Callable[[], int]
    stopping: Callable[[], bool]
    #: The Prometheus exposition, rendered on each scrape.
    metrics: Callable[[], Awaitable[bytes]] | None = None


def _answer(status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


class HealthServer:
    """Serves the endpoint on ``host:port`` (port 0: a free one, see :attr:`port`)."""

    def __init__(self, status: WorkerStatus, host: str, port: int) -> None:
        self._status = status
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        halt = self._status.halt
        if halt.reason is not None:
            since = halt.since if halt.since is not None else time.monotonic()
            return _answer(
                503,
                {
                    "status": "halted",
                    "reason": halt.reason,
                    "haltedForSeconds": round(time.monotonic() - since, 1),
                },
            )
        return _answer(200, {"status": "ok"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self._status.metrics is None:
            raise web.HTTPNotFound
        body = await self._status.metrics()
        response = web.Response(status=200, body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def _readyz(self, _request: web.Request) -> web.Response:
        status = self._status
        reason = None
        if status.stopping():
            reason = "stopping"
        elif status.halt.reason is not None:
            reason = f"halted: {status.halt.reason}"
        elif status.partitions() == 0:
            reason = "waiting for partitions"
        if reason is not None:
            return _answer(503, {"status": "not ready", "reason": reason})
        return _answer(200, {"status": "ready", "partitions": status.partitions()})

"""Running the emulator: in a background thread (tests, benchmarks) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from talon_one_emulator.app import EmulatorApp, create_app
from talon_one_emulator.campaigns.file import load_campaigns
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import EmulatorError
from talon_one_emulator.http.faults import FaultInjector, FaultSettings
from talon_one_emulator.http.idempotency import IdempotencyStore
from talon_one_emulator.http.protocol import HttpServer
from talon_one_emulator.notifications.sender import NotificationSender
from talon_one_emulator.notifications.settings import NotificationSettings
from talon_one_emulator.store.state import DEFAULT_MAX_PROFILES, DEFAULT_MAX_SESSIONS, EmulatorState

__all__ = ["EmulatorServer", "run_forever", "serve"]

logger = logging.getLogger("emulator")

_START_TIMEOUT = 10.0
_GC_THRESHOLDS = (50_000, 50, 100)


class EmulatorServer:
    """The emulator on a loopback port, served by its own event loop in a daemon thread.

    Use it as a context manager::

        with EmulatorServer(EmulatorConfig(api_keys=["test-key"])) as server:
            ...  # talk to server.base_url
            server.state.request_log.entries()

    Args:
        config: the emulator configuration.
        host: the interface to bind (default loopback).
        port: the port; 0 picks a free one.
    """

    def __init__(self, config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._app = create_app(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def state(self) -> EmulatorState:
        """The live store: sessions, profiles and ``request_log``."""
        return self._app.state

    @property
    def faults(self) -> FaultInjector:
        """The live fault injector: ``apply(FaultSettings(...))``, ``start_outage()``, ..."""
        return self._app.faults

    @property
    def notifications(self) -> NotificationSender | None:
        """The sender of outbound notifications (None: no webhook configured); its
        ``deliveries`` record every attempt."""
        return self._app.notifications

    @property
    def idempotency(self) -> IdempotencyStore:
        """The stored Idempotency-Key answers."""
        return self._app.idempotency

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("the emulator server is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` without a trailing slash, as the SDK's ``host`` wants it."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start serving; returns once the socket is listening.

        Raises:
            EmulatorError: the server is already running or did not start.
        """
        if self._thread is not None:
            raise EmulatorError("the emulator server is already running")
        self._ready.clear()
        self._failure = None
        self._app.faults.reset()  # outage windows of the configuration count from now
        self._thread = threading.Thread(target=self._main, name="talon-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise EmulatorError("the emulator server did not start in time")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise EmulatorError(f"the emulator server failed to start: {self._failure}") from (
                self._failure
            )
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; does nothing when not running."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(_START_TIMEOUT)
        self._thread = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._failure = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._app, self.host, self._requested_port) as port:
            self._port = port
            self._ready.set()
            await self._stopping.wait()


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@asynccontextmanager
async def serve(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve ``app`` on the running event loop while the block runs; yields the port (``port``
    0 picks a free one).

    Raises:
        OSError: the address cannot be bound.
    """
    server = HttpServer(app.router)
    sock = _listening_socket(host, port)
    await server.start(sock)
    if app.notifications is not None:
        await app.notifications.start()
    try:
        yield sock.getsockname()[1]
    finally:
        await server.close()
        if app.notifications is not None:
            await app.notifications.close()


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (about twice the throughput), else asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")  # optional: not a dependency
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_forever(
    host: str,
    port: int,
    api_keys: Sequence[str],
    campaigns_path: Path | None = None,
    latency_ms: float = 0,
    *,
    faults: FaultSettings | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    max_profiles: int = DEFAULT_MAX_PROFILES,
    notifications: NotificationSettings | None = None,
) -> None:
    """Serve the emulator in the foreground until SIGINT or SIGTERM.

    Uses uvloop if it is installed. ``faults`` are applied from start-up (outage windows count
    from then); ``latency_ms`` is a shorthand for a fixed latency. At most ``max_sessions``
    sessions and ``max_profiles`` profiles are kept (the oldest-created go first).
    ``notifications`` names the outbound notification webhooks.

    Raises:
        CampaignFileError: the campaign file cannot be loaded.
        ConfigError: the keys, the latency, the faults or the caps are invalid.
        OSError: the address cannot be bound.
    """
    campaigns = load_campaigns(campaigns_path)
    config = EmulatorConfig(
        api_keys=api_keys,
        campaigns=campaigns,
        latency_ms=latency_ms,
        faults=faults or FaultSettings(),
        max_sessions=max_sessions,
        max_profiles=max_profiles,
        notifications=notifications or NotificationSettings(),
    )
    app = create_app(config)
    loop = _event_loop()

    async def main() -> None:
        stopping = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        async with serve(app, host, port) as bound:
            # Everything built so far lives as long as the server: keep it out of the
            # collector's scans. The store then grows by a few dicts per request, all of them
            # long-lived (until the session or profile caps forget them, and they are freed by
            # reference counting), so collecting the young generation every 700 allocations
            # (the default) mostly rescans live objects: with these thresholds a session update
            # costs about a fifth less CPU.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*_GC_THRESHOLDS)
            settings = config.fault_settings
            logger.info(
                "Talon.One emulator listening on http://%s:%d (%d campaigns from %s, "
                "%d API key(s), latency %s, error rates %s, %d outage window(s), %s event loop)",
                host,
                bound,
                len(campaigns.campaigns),
                campaigns_path or "the default campaign file",
                len(config.api_keys),
                settings.latency.model_dump(by_alias=True),
                settings.error_rates or "none",
                len(settings.outages),
                type(loop).__module__.split(".")[0],
            )
            await stopping.wait()
        logger.info("Talon.One emulator stopped")

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()

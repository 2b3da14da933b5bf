"""One Talon.One call to its answer: retries, the worker-wide halt, the rate cap and the
adaptive in-flight limit, and the accounting of every attempt.

Transient failures (no answer, 408, 409, 429, 5xx) are retried with full-jitter exponential
back-off, never sooner than ``Retry-After`` asks, for as long as it takes: losing an event is
never the answer to an outage. A refused API key (401/403) or a Talon.One that cannot be reached
for ``unreachable_halt_after_s`` halts the whole worker (:mod:`talon_stream.talon._halt`); calls
are then probed one at a time until one succeeds. A permanent status (400, 404, 422, …) is raised
for the record to be dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

from talon_stream._exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
    TalonStatusError,
    TalonTransportError,
)
from talon_stream.core._attributes import attribute_name, retry_key, without_attributes
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.ops._stats import WorkerStats
from talon_stream.talon._halt import Halt
from talon_stream.talon._keys import ApiKeyFile
from talon_stream.talon._limits import AdaptiveConcurrency, RateLimiter

__all__ = ["Hold", "TalonCaller", "TalonSender"]

log = logging.getLogger(__name__)


#: Told ``True`` when a call starts waiting for a halted Talon.One, ``False`` when it goes on.
Hold = Callable[[bool], None]


class TalonSender(Protocol):
    """What sends one call: :class:`~talon_stream.talon.TalonClient`, or a test's script."""

    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse: ...


class _RetryWait:
    """Full-jitter exponential back-off that never retries sooner than ``Retry-After`` asks."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s)
        self._max_s = max_s

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TalonFatalError):
            return 0.0  # the halt spaces the probes
        delay = float(self._backoff(state))
        if isinstance(error, TalonStatusError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


class TalonCaller:
    """Calls Talon.One for every record of one worker; shared by all partitions. ``halt``,
    ``rate`` and ``concurrency`` are the worker's (the dispatcher reads the same objects)."""

    def __init__(
        self,
        talon: TalonSender,
        *,
        stats: WorkerStats,
        halt: Halt | None = None,
        rate: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 30.0,
        unreachable_halt_after_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        application: str | None = None,
        skip_unknown_attributes: bool = False,
    ) -> None:
        """``skip_unknown_attributes``: a call Talon.One refuses for attributes it does not
        know is sent again without them (``talon_stream.core._attributes``)."""
        self._talon = talon
        self.skip_unknown_attributes = skip_unknown_attributes
        #: The Application it calls, when the worker has several (calls are counted by it).
        self.application = application
        self._stats = stats
        self.halt = halt or Halt()
        self._rate = rate
        self._concurrency = concurrency
        self._wait = _RetryWait(retry_initial_s, retry_max_s)
        self._unreachable_after = unreachable_halt_after_s
        self._sleep = sleep
        self._clock = clock
        self._unreachable_since: float | None = None
        self._halted_unreachable = False

    async def call(
        self,
        call: TalonCall,
        key: str,
        extra: Mapping[str, str] | None = None,
        hold: Hold | None = None,
    ) -> tuple[TalonResponse, int]:
        """Talon.One's answer to ``call`` sent with ``Idempotency-Key: key`` (and ``extra``
        headers such as trace context), and the number of attempts it took. ``hold(True)`` is
        called when the call starts waiting for the halt to let it through, ``hold(False)``
        when it is through: the dispatcher gives its call slot to others meanwhile.

        With ``skip_unknown_attributes``, a 400 naming attributes the Application does not
        declare makes the call again without them (under a key derived from ``key``); the
        answer's ``dropped`` lists their pointers, and the attempts count every request.

        Raises:
            TalonPermanentError: a status that will not change on retry.
        """
        if not self.skip_unknown_attributes or call.body is None:
            return await self._call(call, key, extra, hold)
        dropped: list[str] = []
        attempts = 0
        first_key = key
        while True:
            try:
                response, tries = await self._call(call, key, extra, hold)
            except TalonPermanentError as exc:
                assert call.body is not None
                stripped = (
                    without_attributes(call.operation, call.body, exc.unknown_attributes)
                    if exc.status == 400 and exc.unknown_attributes
                    else None
                )
                if stripped is None:
                    raise
                body, removed = stripped
                attempts += 1
                dropped.extend(removed)
                self._count_dropped(call.operation, removed)
                call = replace(call, body=body)
                key = retry_key(first_key, dropped)
                continue
            attempts += tries
            if dropped:
                response = replace(response, dropped=tuple(dropped))
            return response, attempts

    def _count_dropped(self, operation: Operation, pointers: list[str]) -> None:
        names = set()
        for pointer in pointers:
            found = attribute_name(operation, pointer)
            if found is not None:
                names.add(found)
        for entity, name in sorted(names):
            self._stats.attribute_dropped(entity, name)

    async def _call(
        self,
        call: TalonCall,
        key: str,
        extra: Mapping[str, str] | None = None,
        hold: Hold | None = None,
    ) -> tuple[TalonResponse, int]:
        try:
            return await self._attempt(call, key, extra, hold), 1
        except (TalonRetryableError, TalonTransportError, TalonFatalError) as exc:
            return await self._retry(call, key, exc, extra, hold)

    async def _attempt(
        self,
        call: TalonCall,
        key: str,
        extra: Mapping[str, str] | None = None,
        hold: Hold | None = None,
    ) -> TalonResponse:
        """One try of a call, through the halt while it is on; what the answer says about the
        credentials and reachability of Talon.One updates the halt."""
        halt = self.halt
        try:
            if halt.reason is None:
                response = await self._send(call, key, extra)
            else:
                if hold is not None:
                    hold(True)
                try:
                    async with halt.turn():
                        response = await self._send(call, key, extra)
                finally:
                    if hold is not None:
                        hold(False)
        except TalonFatalError as exc:
            self._stats.retry_reasons[str(exc.status)] += 1
            self._halted_unreachable = False
            halt.trip(_fatal_reason(exc, self.application, getattr(self._talon, "api_key", None)))
            raise
        except TalonTransportError as exc:
            self._stats.retry_reasons["transport"] += 1
            self._unreachable(exc)
            raise
        except TalonRetryableError as exc:
            self._stats.retry_reasons[str(exc.status)] += 1
            # An answer, so reachable; but a 5xx says nothing of a key that was refused.
            self._unreachable_since = None
            if self._halted_unreachable:
                self._resume()
            raise
        except TalonPermanentError:
            self._reachable()  # a 4xx other than 401/403: the key was accepted
            raise
        self._reachable()
        return response

    def _unreachable(self, error: TalonTransportError) -> None:
        now = self._clock()
        if self._unreachable_since is None:
            self._unreachable_since = now
        elapsed = now - self._unreachable_since
        if elapsed >= self._unreachable_after and (
            self.halt.reason is None or self._halted_unreachable
        ):
            self._halted_unreachable = True
            self.halt.trip(
                f"Talon.One cannot be reached for {self._unreachable_after:.0f} s or more "
                f"({error.args[0]}): check TALON_STREAM_TALON_BASE_URL, DNS, proxies and "
                "firewalls"
            )

    def _reachable(self) -> None:
        self._unreachable_since = None
        if self.halt.reason is not None:
            self._resume()

    def _resume(self) -> None:
        self._halted_unreachable = False
        self.halt.clear()

    async def _send(
        self, call: TalonCall, key: str, extra: Mapping[str, str] | None = None
    ) -> TalonResponse:
        if self._rate is not None:
            await self._rate.acquire()
        operation = call.operation.value
        self._stats.calls[operation] += 1
        if self.application is not None:
            self._stats.calls_by_application[self.application] += 1
        limit = self._concurrency
        if limit is not None:
            limit.started()
        started = time.perf_counter()
        try:
            if extra is None:
                response = await self._talon.send(call, idempotency_key=key)
            else:
                response = await self._talon.send(call, idempotency_key=key, headers=extra)
        except TalonStatusError as exc:
            elapsed = time.perf_counter() - started
            self._answered(operation, exc.status, elapsed)
            if limit is not None:
                if exc.status == 429:
                    limit.overloaded()
                else:
                    limit.succeeded(elapsed)
            raise
        except BaseException as exc:
            if isinstance(exc, TalonTransportError):
                self._stats.answers[(operation, 0)] += 1
            if limit is not None:
                limit.failed()
            raise
        self._answered(operation, response.status, response.elapsed_s)
        if limit is not None:
            limit.succeeded(response.elapsed_s)
        return response

    def _answered(self, operation: str, status: int, elapsed_s: float) -> None:
        stats = self._stats
        stats.statuses[status] += 1
        stats.answers[(operation, status)] += 1
        stats.latency.observe(elapsed_s)

    async def _retry(
        self,
        call: TalonCall,
        key: str,
        first_error: Exception,
        extra: Mapping[str, str] | None = None,
        hold: Hold | None = None,
    ) -> tuple[TalonResponse, int]:
        log.info(
            "retrying %s after %s",
            call.describe(),
            first_error,
            extra={
                "envelopeId": key,
                "operation": call.operation.value,
                "profileId": call.loggable_profile_id,
                "sessionId": call.session_id,
                "errorClass": type(first_error).__name__,
                "status": getattr(first_error, "status", None),
            },
        )
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(
                (TalonRetryableError, TalonTransportError, TalonFatalError)
            ),
            wait=self._wait,
            stop=stop_never,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                if number == 1:  # the first attempt already failed before we got here
                    raise first_error
                self._stats.retries += 1
                return await self._attempt(call, key, extra, hold), number
        raise AssertionError("unreachable: tenacity either returns or raises")


def _fatal_reason(error: TalonFatalError, application: str | None, source: object = None) -> str:
    """What the operator must fix, from a 401 or 403 (of ``application``, when there are
    several; ``source`` is where the client's key comes from)."""
    if application is None or application == "default":
        key, url = "TALON_STREAM_TALON_API_KEY", "TALON_STREAM_TALON_BASE_URL"
    else:
        key = f"TALON_STREAM_APPLICATIONS ({application}.api_key)"
        url = f"TALON_STREAM_APPLICATIONS ({application}.base_url)"
    if isinstance(source, ApiKeyFile):
        key = f"the key in {source.setting} ({source.path}; re-read on every refusal)"
    if error.status == 401:
        fix = f"check {key} (an Integration API key of this application)"
    else:
        fix = (
            f"check that the API key belongs to the application and {url} is this deployment's URL"
        )
    return f"Talon.One refused the API key (HTTP {error.status}: {error.args[0]}): {fix}"

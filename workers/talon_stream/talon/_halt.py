"""The worker-wide halt: Talon.One refuses our credentials, or cannot be reached at all.

Sending every record of a backlog into the DLQ because the API key was rotated, or retrying
hundreds of calls against an address that does not answer, helps nobody. While halted:

* consumption is paused on every partition (the dispatchers ask :attr:`Halt.active`);
* calls wait their turn: one at a time, the *probe*, spaced by exponential back-off
  (``probe_initial_s`` doubling up to ``probe_max_s``). Each probe is a real call of a waiting
  record, harmless to repeat because it carries the record's Idempotency-Key;
* the health endpoint reports the reason, which says what to fix.

The first call that succeeds clears the halt: the calls that were waiting go on and consumption
resumes. Nothing is dead-lettered and nothing is committed past a record without an outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

__all__ = ["Halt"]

log = logging.getLogger(__name__)


class Halt:
    """Whether the worker is halted, why, and whose turn it is to probe.

    Args:
        probe_initial_s: the wait before the first probe.
        probe_max_s: the longest wait between two probes.
        clock: monotonic seconds (injectable for tests).
        sleep: awaited with the wait before a probe (injectable for tests).
    """

    def __init__(
        self,
        *,
        probe_initial_s: float = 1.0,
        probe_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._initial = probe_initial_s
        self._max = probe_max_s
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._delay = probe_initial_s
        self._next_probe_at = 0.0
        self.reason: str | None = None
        self.since: float | None = None
        #: How many times the worker was halted, and probes sent while halted.
        self.halts = 0
        self.probes = 0

    @property
    def active(self) -> bool:
        """Whether calls and consumption are held back."""
        return self.reason is not None

    def trip(self, reason: str) -> None:
        """Halt (or keep halting) for ``reason``; logged when it starts or the reason changes."""
        if self.reason == reason:
            return
        if self.reason is None:
            self.halts += 1
            self.since = self._clock()
            self._delay = self._initial
            self._next_probe_at = self.since + self._initial
        self.reason = reason
        log.error("halted, consumption paused: %s", reason)

    def clear(self) -> None:
        """A call succeeded: resume."""
        if self.reason is None:
            return
        halted_for = self._clock() - (self.since or self._clock())
        log.warning("resumed after %.1f s halted (%s)", halted_for, self.reason)
        self.reason = None
        self.since = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wrap one call: while halted, wait until the halt clears or until it is this call's
        turn to probe (the probe runs inside the block, holding the turn, so one probe at a
        time). Enters at once when not halted."""
        if self.reason is None:
            yield
            return
        await self._lock.acquire()
        probing = False
        try:
            if self.reason is not None:
                wait = self._next_probe_at - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                probing = self.reason is not None
            if probing:
                self._delay = min(self._delay * 2, self._max)
                self._next_probe_at = self._clock() + self._delay
                self.probes += 1
        finally:
            if not probing:
                self._lock.release()
        if not probing:
            yield  # cleared while waiting: no need to hold the others back
            return
        try:
            yield
        finally:
            self._lock.release()

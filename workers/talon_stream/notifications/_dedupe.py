"""Which notifications were published already: a bounded memory of ids, and the requests in
flight on this replica.

Talon.One retries a request it got no 2xx for, so the same notification can arrive twice: on
this replica or another one, before or after a restart. :class:`SeenIds` remembers the id of
every notification this replica published *or read back from the output topics* (every
replica writes the id into a record header, and every replica reads the headers back:
:mod:`talon_stream.notifications._tail`), for ``window_s`` and at most ``capacity`` ids.
:class:`InFlight` makes a second copy arriving while the first is still being published wait
for the first's outcome instead of publishing again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

__all__ = ["InFlight", "SeenIds"]


class SeenIds:
    """Ids seen within the last ``window_s`` seconds, the oldest forgotten first beyond
    ``capacity``."""

    def __init__(
        self, capacity: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or window_s <= 0:
            raise ValueError("capacity must be >= 1 and window_s > 0")
        self._capacity = capacity
        self._window = window_s
        self._clock = clock
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, ident: object) -> bool:
        if not isinstance(ident, str):
            return False
        seen = self._ids.get(ident)
        if seen is None:
            return False
        if self._clock() - seen > self._window:
            del self._ids[ident]
            return False
        return True

    def add(self, ident: str) -> None:
        """Remember ``ident`` from now on (again, if it was known)."""
        now = self._clock()
        self._ids[ident] = now
        self._ids.move_to_end(ident)
        self._expire(now)

    def add_all(self, idents: Iterable[str]) -> None:
        for ident in idents:
            self.add(ident)

    def _expire(self, now: float) -> None:
        ids = self._ids
        while len(ids) > self._capacity:
            ids.popitem(last=False)
        while ids:
            oldest, seen = next(iter(ids.items()))
            if now - seen <= self._window:
                break
            del ids[oldest]


class InFlight:
    """The notifications this replica is publishing now, each with the future of its outcome
    (``True``: acknowledged by Kafka)."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[bool]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def waiting_for(self, ident: str) -> asyncio.Future[bool] | None:
        """The outcome of ``ident`` if it is being published now."""
        return self._futures.get(ident)

    def claim(self, ident: str) -> None:
        """Mark ``ident`` as being published by the caller."""
        self._futures[ident] = asyncio.get_running_loop().create_future()

    def settle(self, idents: Iterable[str], published: bool) -> None:
        """The publication of ``idents`` ended: wake whoever waits for them."""
        for ident in idents:
            future = self._futures.pop(ident, None)
            if future is not None and not future.done():
                future.set_result(published)

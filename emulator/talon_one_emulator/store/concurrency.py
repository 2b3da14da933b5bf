"""Talon.One's per-integration-ID concurrency rule.

For each customer session or profile integration ID, Talon.One processes one request and queues
at most two more; a further request gets 409 "Too many requests are updating this session|profile
at the same time". It applies to update session, update profile and track event (v2, and v3,
whose specification declares the same 409) only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from talon_one_emulator.errors import ConflictError

__all__ = ["DEFAULT_CONCURRENCY_LIMIT", "Entity", "IntegrationIdGate"]

DEFAULT_CONCURRENCY_LIMIT = 3

Entity = Literal["session", "profile"]


class _Slot:
    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.count = 0
        self.lock = asyncio.Lock()


class IntegrationIdGate:
    """Admits at most ``limit`` requests per integration ID and runs them one at a time."""

    def __init__(self, limit: int = DEFAULT_CONCURRENCY_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._slots: dict[tuple[Entity, str], _Slot] = {}

    def in_flight(self, entity: Entity, integration_id: str) -> int:
        slot = self._slots.get((entity, integration_id))
        return 0 if slot is None else slot.count

    @asynccontextmanager
    async def hold(self, entity: Entity, integration_id: str) -> AsyncIterator[None]:
        """Wait for this ID's turn.

        Raises:
            ConflictError: ``limit`` requests for this ID are already running or queued.
        """
        key = (entity, integration_id)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        if slot.count >= self.limit:
            raise ConflictError(entity)
        slot.count += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.count -= 1
            if slot.count == 0:
                # Nobody holds or waits for this slot any more: keep the table small.
                del self._slots[key]

"""The diff records on ``--diff-topic``: :class:`DiffPublisher`.

One JSON record per evaluated event (:meth:`~talon_stream.whatif.EventDiff.to_record`), keyed
as its source record, so a customer's records stay in one partition in the order their calls
were answered. They are sent in batches, one batch after the other; :meth:`DiffPublisher.flush`
returns once the broker has acknowledged them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from talon_stream.core._records import OutputRecord, RecordSink

__all__ = ["DiffPublisher"]


class DiffPublisher:
    """Publishes diff records to ``topic`` through ``sink`` (the producer), ``batch`` at a time."""

    def __init__(self, sink: RecordSink, topic: str, *, batch: int = 500) -> None:
        self._sink = sink
        self.topic = topic
        self._size = batch
        self._batch: list[OutputRecord] = []
        self._sending: asyncio.Future[None] | None = None
        #: Records the broker acknowledged.
        self.published = 0

    def add(self, key: bytes | None, record: dict[str, Any]) -> None:
        self._batch.append((self.topic, key, orjson.dumps(record), None))
        if len(self._batch) >= self._size:
            self._send_batch()

    async def flush(self) -> None:
        """Send what is left and wait for every acknowledgement.

        Raises:
            BrokerError: the broker refused a record.
        """
        if self._batch:
            self._send_batch()
        if self._sending is not None:
            await self._sending

    async def close(self) -> None:
        """Stop waiting for what is being sent (after a failure elsewhere)."""
        if self._sending is not None and not self._sending.done():
            self._sending.cancel()
        if self._sending is not None:
            with contextlib.suppress(BaseException):
                await self._sending

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        self._sending = asyncio.ensure_future(self._send(self._sending, batch))

    async def _send(self, previous: asyncio.Future[None] | None, batch: list[OutputRecord]) -> None:
        if previous is not None:
            await previous  # in order; a refusal stops the batches after it
        await self._sink.send_all(batch)
        self.published += len(batch)

"""Product events to catalog sync calls: :class:`CatalogSync` batches them.

Each product record waits in its catalog's :class:`~talon_stream.core._catalog.PendingActions`
until the next sync call takes it; one sync call per catalog is in flight at a time, so a SKU's
next action always goes in a later call than its last one. A call of one action type leaves at
once when 1,000 actions of that type wait; or once the oldest of them has waited ``linger_s``,
unless the worker is reading a backlog (:attr:`CatalogSync.draining`: its fetches come back
full), when it waits for fuller calls up to four times ``linger_s``. So a backlog goes in full
calls and a trickle within ``linger_s``. Every record gets its own outcome: the call's answer,
or the reason Talon.One refused its action.

When Talon.One refuses a call (400), the actions its errors point at (``/actions/<i>/…``) are the
refused ones: their records get the error, and the others go again in the next call. An error
that points at no action splits the call in halves until it does. A ``REMOVE`` refused is taken
as done: the item is not in the catalog, which is what the event asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._catalog import MAX_ACTIONS, ActionType, CatalogAction, PendingActions
from talon_stream.core._envelopes import coalesced_key
from talon_stream.core._records import InputRecord
from talon_stream.processing._bulk import BatchOutcome, send_batch
from talon_stream.talon._caller import TalonCaller

__all__ = ["CatalogSync"]

#: A type whose oldest action has waited this many lingers goes next, however few wait.
_STARVED = 4
#: How often a sender waiting out a backlog looks whether it has been read.
_DRAINING_CHECK_S = 0.05


@dataclass(slots=True)
class _Ticket:
    record: InputRecord
    done: asyncio.Future[BatchOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Catalog:
    """One catalog's waiting actions and the task that sends them."""

    def __init__(self, catalog_id: str, caller: TalonCaller) -> None:
        self.id = catalog_id
        self.caller = caller
        self.pending: PendingActions[_Ticket] = PendingActions()
        #: Per action type, since when (loop time) its oldest waiting action waits.
        self.since: dict[ActionType, float] = {}
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class CatalogSync:
    """Batches the product records of one worker into sync calls, per catalog."""

    def __init__(self, *, linger_s: float = 0.5, max_actions: int = MAX_ACTIONS) -> None:
        self._linger_s = linger_s
        self._max_actions = max_actions
        self._catalogs: dict[tuple[str, str], _Catalog] = {}
        #: Set by the worker while it reads a backlog: calls wait to fill (up to a bound).
        self.draining = False

    async def sync(
        self,
        catalog_id: str,
        action: CatalogAction,
        record: InputRecord,
        caller: TalonCaller,
        *,
        application: str = "default",
    ) -> BatchOutcome:
        """Wait for the sync call (made with ``caller``: the catalog's Application's) that
        carries ``action`` and return what the record got."""
        catalog = self._catalogs.get((application, catalog_id))
        if catalog is None:
            catalog = _Catalog(catalog_id, caller)
            self._catalogs[(application, catalog_id)] = catalog
        if catalog.task is None or catalog.task.done():
            catalog.task = asyncio.get_running_loop().create_task(
                self._run(catalog), name=f"catalog-{catalog_id}"
            )
        ticket = _Ticket(record)
        kind = catalog.pending.add(action, ticket)
        if kind not in catalog.since:
            catalog.since[kind] = asyncio.get_running_loop().time()
            catalog.wakeup.set()
        elif catalog.pending.counts[kind] >= self._max_actions:
            catalog.wakeup.set()
        return await asyncio.shield(ticket.done)

    async def close(self) -> None:
        """Stop the senders (records still waiting are read again by the next owner)."""
        tasks = [c.task for c in self._catalogs.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, catalog: _Catalog) -> None:
        loop = asyncio.get_running_loop()
        while True:
            kind, wait_s = self._next(catalog, loop.time())
            if kind is None:
                catalog.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(catalog.wakeup.wait(), wait_s)
                continue
            batch = catalog.pending.take(self._max_actions, kind)
            if not catalog.pending.counts[kind]:
                del catalog.since[kind]
            try:
                await self._send(catalog, batch)
            except Exception as exc:  # noqa: BLE001 - a fatal error belongs to every record
                for _, tickets in batch:
                    for ticket in tickets:
                        if not ticket.done.done():
                            ticket.done.set_exception(exc)

    def _next(self, catalog: _Catalog, now: float) -> tuple[ActionType | None, float | None]:
        """The type of the next call, if one is due; else how long until one is (``None``:
        nothing waits)."""
        counts = catalog.pending.counts
        for kind in [kind for kind in catalog.since if not counts[kind]]:
            del catalog.since[kind]  # its actions merged into others of another type
        for kind, count in counts.items():
            if count and kind not in catalog.since:  # a REMOVE whose ADD was just taken
                catalog.since[kind] = now
        if not catalog.since:
            return None, None
        full = [kind for kind in catalog.since if counts[kind] >= self._max_actions]
        if full:
            return full[0], None
        kind, since = min(catalog.since.items(), key=lambda entry: entry[1])
        starved = since + _STARVED * self._linger_s
        if starved <= now:
            return kind, None
        if self.draining:  # a backlog: more of every type is coming
            return None, min(starved - now, _DRAINING_CHECK_S)
        due = [kind for kind, since in catalog.since.items() if since + self._linger_s <= now]
        if due:  # the fullest call first: the others fill meanwhile
            return max(due, key=lambda kind: counts[kind]), None
        return None, since + self._linger_s - now

    async def _send(
        self, catalog: _Catalog, batch: Sequence[tuple[CatalogAction, list[_Ticket]]]
    ) -> None:
        """Make the call for ``batch``; settle each ticket (refused actions by their errors)."""
        await send_batch(_SyncCalls(catalog.id), batch, catalog.caller)


_Entry = tuple[CatalogAction, list[_Ticket]]


@dataclass(frozen=True, slots=True)
class _SyncCalls:
    """One catalog's sync calls, for :func:`~talon_stream.processing._bulk.send_batch`."""

    catalog_id: str
    field = "actions"

    def call_for(self, entries: Sequence[_Entry]) -> tuple[TalonCall, str]:
        body = {"actions": [action.as_json() for action, _ in entries]}
        records = [ticket.record for _, tickets in entries for ticket in tickets]
        return TalonCall(Operation.SYNC_CATALOG, self.catalog_id, body), coalesced_key(records)

    def refused(
        self, entry: _Entry, reason: str, call: TalonCall, error: TalonPermanentError
    ) -> None:
        action = entry[0]
        if action.type == "REMOVE":  # not in the catalog: as the event wants
            gone = TalonResponse(status=error.status, body={}, elapsed_s=0.0)
            _settle([entry], BatchOutcome(gone, 1))
            return
        refusal = TalonPermanentError(
            f"{action.type} of sku {action.sku!r} refused: {reason}",
            call=call,
            status=error.status,
            body=error.body,
        )
        _settle([entry], BatchOutcome(error=refusal))

    def failed(self, entries: Sequence[_Entry], error: TalonPermanentError) -> None:
        _settle(entries, BatchOutcome(error=error))

    def answered(self, entries: Sequence[_Entry], response: TalonResponse, attempts: int) -> None:
        _settle(entries, BatchOutcome(response, attempts))


def _settle(entries: Sequence[tuple[CatalogAction, list[_Ticket]]], outcome: BatchOutcome) -> None:
    for _, tickets in entries:
        for ticket in tickets:
            if not ticket.done.done():
                ticket.done.set_result(outcome)

"""Profile updates without rules to bulk calls: :class:`ProfileBulk` gathers them.

Each such ``customer.updated`` record waits in its Application's
:class:`~talon_stream.core._profiles.PendingProfiles` until the next *update multiple customer
profiles* call takes it. A call leaves at once when 1,000 profiles wait; or once the oldest has
waited ``linger_s``, unless the worker is reading a backlog (:attr:`ProfileBulk.draining`), when
it waits for a fuller call up to four times ``linger_s``. One call per Application is in flight
at a time.

Order. The keyed dispatcher runs such a record like any other: it waits for its customer's
earlier records, and holds the customer's keys from the moment it joins the call until its
outcome is published, so a customer's later records (a cart update, another profile update)
wait for the bulk call's answer. A profile update that comes while its customer's update still
waits for the call, with nothing of the customer between them, joins that update's entry
(:meth:`ProfileBulk.join`): merged in order, the later value of an attribute winning.

Outcomes. Every record gets its own: the call's answer (204, no effects: the bulk call runs no
rules), or — when Talon.One refuses the call (400) — the errors that point at its entry
(``/customerProfiles/<i>/…``); the other entries go again in the next call. An error that points
at no entry splits the call in halves until it does. Other failures are retried like any call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._envelopes import coalesced_key
from talon_stream.core._profiles import (
    MAX_PROFILES,
    PendingProfiles,
    ProfileEntry,
)
from talon_stream.core._records import PartitionKey
from talon_stream.processing._bulk import BatchOutcome, send_batch
from talon_stream.processing._prepared import Prepared
from talon_stream.talon._caller import TalonCaller

__all__ = ["ProfileBulk"]

#: The oldest entry goes after this many lingers, however few wait.
_STARVED = 4
#: The most records that join one record's update (:meth:`ProfileBulk.join`).
_MAX_RIDERS = 1000
#: How often a sender waiting out a backlog looks whether it has been read.
_DRAINING_CHECK_S = 0.05


@dataclass(slots=True, eq=False)
class _Ticket:
    prepared: Prepared
    done: asyncio.Future[BatchOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    #: The records that joined this one's entry while it waited (:meth:`ProfileBulk.join`).
    riders: list[_Ticket] = field(default_factory=list)


class _Sender:
    """One Application's waiting entries and the task that sends them."""

    def __init__(self, caller: TalonCaller) -> None:
        self.caller = caller
        self.pending: PendingProfiles[_Ticket] = PendingProfiles()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


def _entry_of(prepared: Prepared) -> tuple[str, dict[str, Any] | None]:
    call = prepared.call
    assert call is not None
    assert call.body is not None
    [entry] = call.body["customerProfiles"]
    return entry["integrationId"], entry.get("attributes")


class ProfileBulk:
    """Gathers the profile updates of one worker into bulk calls, per Application."""

    def __init__(self, *, linger_s: float = 0.5, max_profiles: int = MAX_PROFILES) -> None:
        self._linger_s = linger_s
        self._max_profiles = max_profiles
        self._senders: dict[str, _Sender] = {}
        #: Records waiting for their call, per partition (they weigh on its buffer bound).
        self._waiting: Counter[PartitionKey] = Counter()
        #: The records waiting in :meth:`update`, by their ``Prepared`` (its id).
        self._leads: dict[int, _Ticket] = {}
        #: Set by the worker while it reads a backlog: calls wait to fill (up to a bound).
        self.draining = False
        #: Told of each record that starts waiting in :meth:`update`: records that may
        #: :meth:`join` it can now (the keyed dispatcher's).
        self.on_waiting: Callable[[Prepared], None] | None = None

    def waiting_in(self, partition: PartitionKey) -> int:
        """How many of the partition's records wait for a bulk call's answer."""
        return self._waiting.get(partition, 0)

    async def update(
        self, prepared: Prepared, caller: TalonCaller
    ) -> list[tuple[Prepared, BatchOutcome]]:
        """Wait for the bulk call (made with ``caller``: the record's Application's) that
        carries the record's entry, and for those of the records that joined it; return what
        each got, in order."""
        sender = self._senders.get(prepared.application)
        if sender is None:
            sender = self._senders[prepared.application] = _Sender(caller)
        if sender.task is None or sender.task.done():
            sender.task = asyncio.get_running_loop().create_task(
                self._run(sender), name=f"profiles-{prepared.application}"
            )
        ticket = _Ticket(prepared)
        self._enqueue(sender, ticket)
        self._leads[id(prepared)] = ticket
        if self.on_waiting is not None:
            self.on_waiting(prepared)
        try:
            await asyncio.shield(ticket.done)
            index = 0
            while index < len(ticket.riders):  # riders may join while earlier ones wait
                await asyncio.shield(ticket.riders[index].done)
                index += 1
        finally:
            del self._leads[id(prepared)]
        return [(t.prepared, t.done.result()) for t in (ticket, *ticket.riders)]

    def join(self, leader: Prepared, rider: Prepared) -> bool:
        """Let ``rider`` — the next profile update of ``leader``'s customer, nothing of theirs
        between them — go with ``leader`` while it (or a record that joined it) waits for its
        call; whether it did. Its update is merged into the profile's waiting entry, if there
        is one, or waits for the next call: calls leave one at a time, so it is applied after
        ``leader``'s. ``rider`` gets its outcome with ``leader``'s (:meth:`update`)."""
        sender = self._senders.get(leader.application)
        if sender is None or rider.application != leader.application:
            return False
        head = self._leads.get(id(leader))
        if (
            head is None
            or head.prepared is not leader
            or len(head.riders) >= _MAX_RIDERS
            or _entry_of(rider)[0] != _entry_of(leader)[0]
            or (head.done.done() and all(t.done.done() for t in head.riders))
        ):
            return False
        ticket = _Ticket(rider)
        self._enqueue(sender, ticket)
        head.riders.append(ticket)
        return True

    def _enqueue(self, sender: _Sender, ticket: _Ticket) -> None:
        integration_id, attributes = _entry_of(ticket.prepared)
        loop = asyncio.get_running_loop()
        first = not sender.pending
        entry = sender.pending.add(integration_id, attributes, ticket, loop.time())
        self._waiting[ticket.prepared.record.partition_key] += 1
        ticket.done.add_done_callback(lambda _: self._finished(ticket))
        if first or (len(entry.tokens) == 1 and len(sender.pending) >= self._max_profiles):
            sender.wakeup.set()

    def _finished(self, ticket: _Ticket) -> None:
        key = ticket.prepared.record.partition_key
        self._waiting[key] -= 1
        if self._waiting[key] <= 0:
            del self._waiting[key]

    async def close(self) -> None:
        """Stop the senders (records still waiting are read again by the next owner)."""
        tasks = [s.task for s in self._senders.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _due(self, sender: _Sender, now: float) -> float | None:
        """``0`` when a call is due now; else how long until one is (``None``: nothing
        waits)."""
        oldest = sender.pending.oldest()
        if oldest is None:
            return None
        if len(sender.pending) >= self._max_profiles:
            return 0.0
        starved = oldest + _STARVED * self._linger_s
        if starved <= now:
            return 0.0
        if self.draining:  # a backlog: more is coming
            return min(starved - now, _DRAINING_CHECK_S)
        return max(0.0, oldest + self._linger_s - now)

    async def _run(self, sender: _Sender) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait_s = self._due(sender, loop.time())
            if wait_s is None or wait_s > 0:
                sender.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sender.wakeup.wait(), wait_s)
                continue
            batch = sender.pending.take(self._max_profiles)
            try:
                await self._send(sender, batch)
            except Exception as exc:  # noqa: BLE001 - a fatal error belongs to every record
                for entry in batch:
                    for ticket in entry.tokens:
                        if not ticket.done.done():
                            ticket.done.set_exception(exc)

    async def _send(self, sender: _Sender, batch: Sequence[ProfileEntry[_Ticket]]) -> None:
        """Make the call for ``batch``; settle each ticket (refused entries by their errors)."""
        await send_batch(_BULK_CALLS, batch, sender.caller)


class _BulkCalls:
    """Update multiple customer profiles calls, for
    :func:`~talon_stream.processing._bulk.send_batch`."""

    field = "customerProfiles"

    def call_for(self, entries: Sequence[ProfileEntry[_Ticket]]) -> tuple[TalonCall, str]:
        call = TalonCall(
            Operation.UPDATE_CUSTOMER_PROFILES,
            "",
            {"customerProfiles": [entry.as_json() for entry in entries]},
            {"silent": "yes"},
        )
        records = [ticket.prepared.record for entry in entries for ticket in entry.tokens]
        return call, coalesced_key(records)

    def refused(
        self,
        entry: ProfileEntry[_Ticket],
        reason: str,
        call: TalonCall,
        error: TalonPermanentError,
    ) -> None:
        refusal = TalonPermanentError(
            f"profile {entry.integration_id!r} refused: {reason}",
            call=call,
            status=error.status,
            body=error.body,
        )
        _settle([entry], BatchOutcome(error=refusal))

    def failed(self, entries: Sequence[ProfileEntry[_Ticket]], error: TalonPermanentError) -> None:
        _settle(entries, BatchOutcome(error=error))

    def answered(
        self, entries: Sequence[ProfileEntry[_Ticket]], response: TalonResponse, attempts: int
    ) -> None:
        for index, entry in enumerate(entries):
            _answer(entry, index, response, attempts)


_BULK_CALLS = _BulkCalls()


def _answer(
    entry: ProfileEntry[_Ticket], index: int, response: TalonResponse, attempts: int
) -> None:
    """Settle the entry's records with the call's answer; each is told which of its own
    attributes were left out (``TalonResponse.dropped``)."""
    prefix = f"/customerProfiles/{index}/attributes/"
    dropped = {
        pointer.removeprefix(prefix) for pointer in response.dropped if pointer.startswith(prefix)
    }
    for ticket in entry.tokens:
        if ticket.done.done():
            continue
        mine: tuple[str, ...] = ()
        if dropped:
            _, attributes = _entry_of(ticket.prepared)
            mine = tuple(
                f"/customerProfiles/0/attributes/{_escape(name)}"
                for name in (attributes or {})
                if _escape(name) in dropped
            )
        own = TalonResponse(response.status, {}, response.elapsed_s, dropped=mine)
        ticket.done.set_result(BatchOutcome(own, attempts))


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _settle(entries: Sequence[ProfileEntry[_Ticket]], outcome: BatchOutcome) -> None:
    for entry in entries:
        for ticket in entry.tokens:
            if not ticket.done.done():
                ticket.done.set_result(outcome)

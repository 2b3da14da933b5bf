"""Making the dry calls: :class:`DryOnlySender`, the guard every call passes on its way to
Talon.One, and :class:`DryRunEvaluator`, which runs them in per-customer order.

The guard raises :class:`~talon_stream.whatif.NonDryCallError` for a call without ``dry=true``
instead of sending it — retries included, since it sits under the caller's retry loop.

The evaluator schedules each call by its customer's lock keys (profile and session ID, as the
worker does, :class:`~talon_stream.scheduling.KeyedScheduler`): a customer's calls go one at a
time in the order submitted, ``max_in_flight`` customers' at once. The
:class:`~talon_stream.talon.TalonCaller` under it spaces the calls with the rate limiter and
retries 408, 409, 429 (after ``Retry-After``), 5xx and lost connections as the worker does. A
refused API key, or a Talon.One unreachable for the caller's ``unreachable_halt_after_s``,
trips the caller's halt: the run stops there (:class:`~talon_stream.whatif.WhatIfHaltedError`)
rather than probing forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.core._events import Event
from talon_stream.core._records import InputRecord
from talon_stream.scheduling._scheduler import Item, KeyedScheduler
from talon_stream.talon._caller import TalonCaller, TalonSender
from talon_stream.whatif._model import NonDryCallError, WhatIfHaltedError

__all__ = ["DryJob", "DryOnlySender", "DryRunEvaluator", "lock_keys"]

#: How often a waiting evaluator looks at the caller's halt.
_CHECK_S = 0.2


class DryOnlySender:
    """A :class:`~talon_stream.talon.TalonSender` that sends only dry calls. ``sent`` counts
    the calls it let through."""

    def __init__(self, talon: TalonSender) -> None:
        self._talon = talon
        self.sent = 0

    async def send(
        self,
        call: TalonCall,
        *,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TalonResponse:
        """Send ``call`` through the wrapped sender.

        Raises:
            NonDryCallError: the call has no ``dry=true``; nothing was sent.
        """
        if call.query.get("dry") != "true":
            raise NonDryCallError(call)
        self.sent += 1
        return await self._talon.send(call, idempotency_key=idempotency_key, headers=headers)


@dataclass(frozen=True, slots=True)
class DryJob:
    """One dry call to make for one record; ``request_id`` is its Idempotency-Key."""

    record: InputRecord
    event: Event
    call: TalonCall
    request_id: str


def lock_keys(job: DryJob) -> tuple[str, ...]:
    """The customer's ids the call touches (as the worker locks them), or the record's key."""
    keys = []
    if job.call.profile_id:
        keys.append("p:" + job.call.profile_id)
    if job.call.session_id:
        keys.append("s:" + job.call.session_id)
    if not keys:
        keys.append("k:" + (job.record.key or b"").decode(errors="replace"))
    return tuple(keys)


#: Called with each job and its answer, or the refusal (a permanent HTTP status).
AnswerHandler = Callable[[DryJob, TalonResponse | TalonPermanentError], None]


class DryRunEvaluator:
    """Runs dry calls in per-customer order, ``max_in_flight`` at once; at most ``max_waiting``
    wait to start (:meth:`submit` waits for room)."""

    def __init__(
        self,
        caller: TalonCaller,
        on_answer: AnswerHandler,
        *,
        max_in_flight: int,
        max_waiting: int = 10_000,
    ) -> None:
        self._caller = caller
        self._on_answer = on_answer
        self._scheduler: KeyedScheduler[DryJob] = KeyedScheduler(max_in_flight)
        self._max_waiting = max_waiting
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Event()
        self._failure: BaseException | None = None

    @property
    def in_flight(self) -> int:
        return self._scheduler.in_flight

    @property
    def waiting(self) -> int:
        return self._scheduler.waiting

    async def submit(self, job: DryJob) -> None:
        """Queue ``job`` behind its customer's earlier calls.

        Raises:
            WhatIfHaltedError: Talon.One refused the key or cannot be reached.
            NonDryCallError: a call was not dry (a bug: nothing was sent).
        """
        while self._scheduler.waiting >= self._max_waiting:
            await self._wait()
        self._raise_if_failed()
        record = job.record
        self._scheduler.submit(Item(record.partition_key, record.offset, lock_keys(job), job))
        self._start()

    async def drain(self) -> None:
        """Wait until every submitted call is answered.

        Raises:
            WhatIfHaltedError, NonDryCallError: as :meth:`submit`.
        """
        while self._scheduler.waiting or self._scheduler.in_flight:
            await self._wait()
        self._raise_if_failed()

    async def close(self) -> None:
        """Cancel the calls still in flight (after a failure)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _wait(self) -> None:
        self._raise_if_failed()
        self._progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._progress.wait(), _CHECK_S)
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        reason = self._caller.halt.reason
        if reason is not None:
            self._failure = WhatIfHaltedError(reason)
            raise self._failure

    def _start(self) -> None:
        for item in self._scheduler.take_ready():
            task = asyncio.get_running_loop().create_task(self._run(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, item: Item[DryJob]) -> None:
        job = item.payload
        try:
            response, _attempts = await self._caller.call(job.call, job.request_id)
            self._on_answer(job, response)
        except TalonPermanentError as exc:
            self._on_answer(job, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - NonDryCallError or a bug: submit/drain raise it
            if self._failure is None:
                self._failure = exc
        finally:
            self._scheduler.complete(item)
            self._progress.set()
            if self._failure is None:
                self._start()

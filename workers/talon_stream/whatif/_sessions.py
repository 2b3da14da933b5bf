"""Sessions as the live updates left them, kept client-side: :class:`SessionBook`. Pure, no I/O.

A live session update is cumulative (a field it omits keeps what Talon.One holds); a dry one is
evaluated as a *standalone full session* — only what it sends counts. So the book folds each
session's updates the way Talon.One does (:func:`~talon_stream.core.coalesce_session_updates`:
each field as the latest update that sets it, ``attributes`` merged key by key) and every dry
call carries the whole accumulated session, ``evaluableCampaignIds`` added.

What each event becomes (:meth:`SessionBook.step`):

* ``cart.updated``, ``order.placed``: a dry session update with the accumulated session
  (``open``; ``closed`` for the order) — skipped when the book holds the session closed,
  cancelled or returned (live, the worker supersedes such a cart or Talon.One refuses it);
* ``order.cancelled``, ``order.items_returned``, ``order.reopened``: not evaluated (Talon.One
  answers them with rollbacks, no rule runs); the session's state moves;
* ``customer.updated``: a dry profile update (skipped when its rule engine is off: nothing is
  evaluated live either);
* ``customer.event``: a dry track event, v2 whatever the worker uses (a dry run needs no
  advanced event id);
* ``customer.erased``: not evaluated (deleting data has no dry mode).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from talon_stream.core import _events as events
from talon_stream.core._calls import Operation, TalonCall
from talon_stream.core._translate import (
    TranslationOptions,
    coalesce_session_updates,
    translate,
)

__all__ = [
    "NOT_EVALUATED",
    "RULE_ENGINE_OFF",
    "SESSION_NOT_OPEN",
    "SessionBook",
    "Step",
    "with_campaigns",
]

#: Why an event is not evaluated: the keys of the report's skipped counts.
SESSION_NOT_OPEN = "session not open"
NOT_EVALUATED = "no rule evaluation (cancel, return, reopen, erasure)"
RULE_ENGINE_OFF = "profile update without rule engine"

_OPEN = "open"


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with one event: the dry ``call`` to make, or why not (``skipped``)."""

    call: TalonCall | None = None
    skipped: str | None = None


@dataclass(slots=True)
class _Session:
    #: The accumulated update, without evaluableCampaignIds (``None``: none seen yet).
    update: TalonCall | None
    state: str


def with_campaigns(call: TalonCall, campaigns: Sequence[int]) -> TalonCall:
    """``call`` with ``evaluableCampaignIds``: in ``customerSession`` for a session update, at
    the top of the body for a profile update or a custom event.

    Raises:
        ValueError: the call is not a dry run (Talon.One ignores the list then).
    """
    if call.query.get("dry") != "true" or call.body is None:
        raise ValueError(f"{call.describe()} is not a dry call with a body")
    body = dict(call.body)
    if call.operation is Operation.UPDATE_CUSTOMER_SESSION:
        body["customerSession"] = {
            **body["customerSession"],
            "evaluableCampaignIds": list(campaigns),
        }
    else:
        body["evaluableCampaignIds"] = list(campaigns)
    return replace(call, body=body)


class SessionBook:
    """The accumulated state of the sessions seen, the least recently used forgotten beyond
    ``max_sessions``, and the dry call each event becomes (see the module).

    Raises:
        ValueError: ``options`` are not dry.
    """

    def __init__(
        self,
        campaigns: Sequence[int],
        options: TranslationOptions,
        *,
        max_sessions: int = 200_000,
    ) -> None:
        if not options.dry:
            raise ValueError("a what-if translates with dry=True")
        self.campaigns = tuple(campaigns)
        self._options = replace(options, custom_events="v2")
        self._max = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        #: Sessions forgotten to keep within ``max_sessions``.
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def state(self, session_id: str) -> str | None:
        """The session's state as the book holds it (``None``: unknown)."""
        known = self._sessions.get(session_id)
        return None if known is None else known.state

    def accumulated(self, session_id: str) -> dict[str, object] | None:
        """The session's accumulated ``customerSession`` (``None``: no update seen)."""
        known = self._sessions.get(session_id)
        if known is None or known.update is None or known.update.body is None:
            return None
        return dict(known.update.body["customerSession"])

    def step(self, event: events.Event) -> Step:
        """Apply ``event`` to the book and say what to evaluate.

        Raises:
            TranslationError: the event cannot become a call (as in the worker).
        """
        match event:
            case events.CartUpdated() | events.OrderPlaced():
                return self._update(event)
            case events.OrderCancelled():
                self._move(event.session_id, "cancelled")
            case events.OrderItemsReturned():
                self._move(event.session_id, "partially_returned")
            case events.OrderReopened():
                self._move(event.session_id, _OPEN)
            case events.CustomerUpdated() | events.CustomerEvent():
                call = translate(event, self._options)
                if call.query.get("dry") != "true":
                    return Step(skipped=RULE_ENGINE_OFF)
                return Step(with_campaigns(call, self.campaigns))
        return Step(skipped=NOT_EVALUATED)

    def _update(self, event: events.CartUpdated | events.OrderPlaced) -> Step:
        session_id = event.session_id or ""
        known = self._get(session_id)
        if known is not None and known.state != _OPEN:
            return Step(skipped=SESSION_NOT_OPEN)
        call = translate(event, self._options)
        if known is not None and known.update is not None:
            call = coalesce_session_updates([known.update, call])
        state = "closed" if isinstance(event, events.OrderPlaced) else _OPEN
        self._put(session_id, _Session(call, state))
        return Step(with_campaigns(call, self.campaigns))

    def _move(self, session_id: str | None, state: str) -> None:
        if not session_id:
            return
        known = self._get(session_id)
        self._put(session_id, _Session(None if known is None else known.update, state))

    def _get(self, session_id: str) -> _Session | None:
        known = self._sessions.get(session_id)
        if known is not None:
            self._sessions.move_to_end(session_id)
        return known

    def _put(self, session_id: str, session: _Session) -> None:
        self._sessions[session_id] = session
        self._sessions.move_to_end(session_id)
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
            self.forgotten += 1

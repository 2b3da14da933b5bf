"""One call made for many records (a catalog sync, a bulk profile update), and what happens when
Talon.One refuses some of its entries.

A 400 whose errors all point into the call's list (``/actions/3/sku``,
``/customerProfiles/0/attributes/x``) names the refused entries: they get their error and the
others go again in the next call. An error that points at no entry refuses the call as a whole,
so the call is split in halves until the refused entry is alone. Any other refusal (the key, the
catalog, the deployment) belongs to every entry alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from talon_stream._exceptions import RecordError, TalonPermanentError
from talon_stream.core._calls import TalonCall, TalonResponse
from talon_stream.talon._caller import TalonCaller

__all__ = ["Batch", "BatchOutcome", "refused_entries", "send_batch"]

E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)


@dataclass(slots=True)
class BatchOutcome:
    """What one record of a batched call got: the call's answer and its attempts, or the
    error."""

    response: TalonResponse | None = None
    attempts: int = 0
    error: TalonPermanentError | RecordError | None = None


class Batch(Protocol[E_contra]):
    """What :func:`send_batch` needs to know of a kind of batched call."""

    @property
    def field(self) -> str:
        """The call's list in its body, which the error pointers name (``actions``)."""
        ...

    def call_for(self, entries: Sequence[E_contra]) -> tuple[TalonCall, str]:
        """The call for ``entries`` and its Idempotency-Key."""
        ...

    def refused(
        self, entry: E_contra, reason: str, call: TalonCall, error: TalonPermanentError
    ) -> None:
        """``entry`` was refused, for ``reason`` (what the errors pointing at it say)."""
        ...

    def failed(self, entries: Sequence[E_contra], error: TalonPermanentError) -> None:
        """The call was refused for all of ``entries`` alike."""
        ...

    def answered(self, entries: Sequence[E_contra], response: TalonResponse, attempts: int) -> None:
        """The call for ``entries`` succeeded."""
        ...


async def send_batch(batch: Batch[E], entries: Sequence[E], caller: TalonCaller) -> None:
    """Call Talon.One for ``entries`` (with ``caller``'s retries) until every entry has been
    answered, refused or failed (told to ``batch``).

    Raises:
        whatever ``caller`` raises besides :class:`~talon_stream.TalonPermanentError`.
    """
    todo = list(entries)
    while todo:
        call, key = batch.call_for(todo)
        try:
            response, attempts = await caller.call(call, key)
        except TalonPermanentError as exc:
            if exc.status != 400:
                batch.failed(todo, exc)
                return
            refused = refused_entries(exc.problems, len(todo), batch.field)
            if refused is None:
                if len(todo) == 1:
                    batch.failed(todo, exc)
                    return
                half = len(todo) // 2  # the errors name no entry: find it by halves
                await send_batch(batch, todo[:half], caller)
                todo = todo[half:]
                continue
            for index, entry in enumerate(todo):
                if index in refused:
                    batch.refused(entry, refused[index], call, exc)
            todo = [entry for index, entry in enumerate(todo) if index not in refused]
            continue
        batch.answered(todo, response, attempts)
        return


def refused_entries(
    problems: Iterable[tuple[str | None, str]], size: int, field: str
) -> dict[int, str] | None:
    """What a 400's errors (pointer, detail) say of each entry of the list ``field`` they point
    at (``/<field>/<i>/…``), by index; ``None`` when an error points at no entry of the ``size``
    sent (or there is no error): the call as a whole was refused."""
    pointer_re = _POINTERS.get(field)
    if pointer_re is None:
        pointer_re = _POINTERS[field] = re.compile(rf"^/{re.escape(field)}/(\d+)(?:/|$)")
    found: dict[int, str] = {}
    for pointer, detail in problems:
        match = pointer_re.match(pointer or "")
        if match is None or int(match.group(1)) >= size:
            return None
        index = int(match.group(1))
        found[index] = f"{found[index]}; {detail}" if index in found else detail
    return found or None


_POINTERS: dict[str, re.Pattern[str]] = {}

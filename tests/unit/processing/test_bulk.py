"""One call for many records: refused entries told apart by Talon.One's error pointers, an
error naming no entry found by halves (talon_stream.processing._bulk)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.processing._bulk import refused_entries, send_batch


@pytest.mark.parametrize("field", ["actions", "customerProfiles"])
def test_refused_entries_by_pointer(field: str) -> None:
    problems = [
        (f"/{field}/2/attributes/pet", "unknown pet"),
        (f"/{field}/2/attributes/age", "age is not a number"),
        (f"/{field}/0", "too long"),
    ]
    assert refused_entries(problems, 3, field) == {
        2: "unknown pet; age is not a number",
        0: "too long",
    }
    assert refused_entries([(f"/{field}", "too many")], 3, field) is None
    assert refused_entries([(f"/{field}/5/x", "?")], 3, field) is None
    assert refused_entries([(f"/{field}x/1/x", "?")], 3, field) is None
    assert refused_entries([("/other/1/x", "?")], 3, field) is None
    assert refused_entries([(None, "?")], 3, field) is None
    assert refused_entries([], 3, field) is None


class _Talon:
    """Refuses a call holding a bad entry: with a pointer at each (``"bad"``), or without any
    (``"vague"``: the call as a whole), or with a status that is not 400 (``"forbidden"``)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def call(self, call: TalonCall, key: str) -> tuple[TalonResponse, int]:
        entries: list[str] = call.body["items"] if call.body else []
        self.calls.append(entries)

        def refuse(status: int, problems: tuple[tuple[str | None, str], ...]) -> None:
            raise TalonPermanentError("no", call=call, status=status, body="", problems=problems)

        if "forbidden" in entries:
            refuse(403, ())
        if "vague" in entries:
            refuse(400, ((None, "something is wrong"),))
        bad = [(f"/items/{i}/name", f"{e} is bad") for i, e in enumerate(entries) if e == "bad"]
        if bad:
            refuse(400, tuple(bad))
        return TalonResponse(status=200, body={}, elapsed_s=0.0), 1


class _Items:
    field = "items"

    def __init__(self) -> None:
        self.outcomes: dict[int, str] = {}

    def call_for(self, entries: Sequence[tuple[int, str]]) -> tuple[TalonCall, str]:
        body: dict[str, Any] = {"items": [name for _, name in entries]}
        return TalonCall(Operation.SYNC_CATALOG, "1", body), "key"

    def refused(
        self, entry: tuple[int, str], reason: str, call: TalonCall, error: TalonPermanentError
    ) -> None:
        self._settle([entry], f"refused: {reason}")

    def failed(self, entries: Sequence[tuple[int, str]], error: TalonPermanentError) -> None:
        self._settle(entries, f"failed: {error.status}")

    def answered(
        self, entries: Sequence[tuple[int, str]], response: TalonResponse, attempts: int
    ) -> None:
        self._settle(entries, "done")

    def _settle(self, entries: Sequence[tuple[int, str]], outcome: str) -> None:
        for index, _ in entries:
            assert index not in self.outcomes, "an entry settled twice"
            self.outcomes[index] = outcome


@given(st.lists(st.sampled_from(["ok", "ok", "ok", "bad", "vague"]), min_size=1, max_size=40))
async def test_every_entry_gets_its_own_outcome(names: list[str]) -> None:
    talon, items = _Talon(), _Items()
    await send_batch(items, list(enumerate(names)), talon)  # type: ignore[arg-type]
    expected = {
        "ok": "done",
        "bad": "refused: bad is bad",
        "vague": "failed: 400",
    }
    assert items.outcomes == {index: expected[name] for index, name in enumerate(names)}
    # Halving finds each vague entry alone: never more calls than a split down to each entry.
    assert len(talon.calls) <= 2 * len(names)


async def test_a_refusal_of_the_call_itself_fails_every_entry() -> None:
    talon, items = _Talon(), _Items()
    await send_batch(items, list(enumerate(["ok", "forbidden", "bad"])), talon)  # type: ignore[arg-type]
    assert items.outcomes == {0: "failed: 403", 1: "failed: 403", 2: "failed: 403"}
    assert len(talon.calls) == 1

"""TalonCaller with unknown attributes skipped: a call refused for attributes the Application
does not declare goes again without them, under a key of its own; anything else stands."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.ops import WorkerStats
from talon_stream.talon import TalonCaller
from talon_stream.talon._client import decode_answer

CALL = TalonCall(
    Operation.UPDATE_CUSTOMER_SESSION,
    "s-1",
    {
        "customerSession": {
            "attributes": {"channel": "web", "shoe": "boot"},
            "cartItems": [{"sku": "A", "quantity": 1, "attributes": {"fabric": "silk"}}],
        }
    },
)


def refusal(call: TalonCall, *errors: tuple[str, str]) -> TalonPermanentError:
    body = {
        "message": "The submitted data was invalid",
        "errors": [
            {"title": title, "details": f"{title} {pointer}", "source": {"pointer": pointer}}
            for title, pointer in errors
        ],
    }
    with pytest.raises(TalonPermanentError) as refused:
        decode_answer(call, 400, orjson.dumps(body), None, 0.0)
    return refused.value


class Talon:
    """Refuses every attribute not in ``declared`` as Talon.One does."""

    def __init__(self, declared: set[str], *, also: tuple[str, str] | None = None) -> None:
        self.declared = declared
        self.also = also
        self.sent: list[tuple[dict[str, Any], str | None]] = []

    async def send(
        self, call: TalonCall, *, idempotency_key: str | None = None, **_: Any
    ) -> TalonResponse:
        assert call.body is not None
        self.sent.append((call.body, idempotency_key))
        session = call.body["customerSession"]
        errors = [
            ("Unknown", f"/customerSession/attributes/{name}")
            for name in session.get("attributes", {})
            if name not in self.declared
        ]
        errors += [
            ("Unknown", f"/customerSession/cartItems/{i}/attributes/{name}")
            for i, line in enumerate(session.get("cartItems", []))
            for name in line.get("attributes", {})
            if name not in self.declared
        ]
        if self.also is not None:
            errors.append(self.also)
        if errors:
            raise refusal(call, *errors)
        return TalonResponse(200, {"effects": []}, 0.0)


async def test_the_call_goes_again_without_the_unknown_attributes() -> None:
    stats = WorkerStats()
    talon = Talon({"channel"})
    caller = TalonCaller(talon, stats=stats, skip_unknown_attributes=True)
    response, attempts = await caller.call(CALL, "key-1")
    assert attempts == 2
    assert response.dropped == (
        "/customerSession/attributes/shoe",
        "/customerSession/cartItems/0/attributes/fabric",
    )
    (_, first_key), (body, second_key) = talon.sent
    assert first_key == "key-1"
    assert second_key not in (None, "key-1")
    assert body == {
        "customerSession": {
            "attributes": {"channel": "web"},
            "cartItems": [{"sku": "A", "quantity": 1, "attributes": {}}],
        }
    }
    assert stats.dropped_attributes == {("CustomerSession", "shoe"): 1, ("CartItem", "fabric"): 1}


async def test_off_or_another_problem_the_refusal_stands() -> None:
    with pytest.raises(TalonPermanentError):
        await TalonCaller(Talon({"channel"}), stats=WorkerStats()).call(CALL, "k")
    # The unknown attributes are left out, and the error that remains is the record's.
    talon = Talon({"channel"}, also=("Invalid type", "/customerSession/attributes/channel"))
    caller = TalonCaller(talon, stats=WorkerStats(), skip_unknown_attributes=True)
    with pytest.raises(TalonPermanentError) as refused:
        await caller.call(CALL, "k")
    assert refused.value.unknown_attributes == ()
    assert len(talon.sent) == 2


def test_the_metric_names_are_bounded() -> None:
    stats = WorkerStats()
    for n in range(150):
        stats.attribute_dropped("CustomerProfile", f"a{n}")
    stats.attribute_dropped("CustomerProfile", "a3")
    assert len(stats.dropped_attributes) == 101
    assert stats.dropped_attributes[("CustomerProfile", "_other")] == 50
    assert stats.dropped_attributes[("CustomerProfile", "a3")] == 2

"""CatalogSync, against a scripted Talon.One: calls carry up to 1,000 actions of one type, one
call per catalog at a time, and every record gets its own outcome — refused actions their error,
the others a call of their own."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._catalog import CatalogAction
from talon_stream.core._records import InputRecord
from talon_stream.ops import WorkerStats
from talon_stream.processing._catalog import CatalogSync
from talon_stream.talon import TalonCaller
from talon_stream.talon._client import decode_answer

CALL = TalonCall(Operation.SYNC_CATALOG, "1", None)


def record(offset: int) -> InputRecord:
    return InputRecord("shop.products", 0, offset, b"k", b"{}", [], None)


class Catalog:
    """Answers sync calls as scripted (a body or an error), else with an empty catalog."""

    def __init__(self, *script: Exception) -> None:
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, call: TalonCall, **_: Any) -> TalonResponse:
        assert call.body is not None
        self.bodies.append(call.body)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        if self.script:
            raise self.script.pop(0)
        return TalonResponse(200, {"id": 1, "version": len(self.bodies)}, 0.01)


class Sync:
    """A CatalogSync whose calls go to ``talon``."""

    def __init__(self, talon: Catalog, **options: Any) -> None:
        self.caller = TalonCaller(talon, stats=WorkerStats())
        self.catalogs = CatalogSync(linger_s=0.02, **options)

    async def sync(self, catalog_id: str, action: CatalogAction, record: InputRecord) -> Any:
        return await self.catalogs.sync(catalog_id, action, record, self.caller)

    async def close(self) -> None:
        await self.catalogs.close()


def sync(talon: Catalog, **options: Any) -> Sync:
    return Sync(talon, **options)


def decode_error(call: TalonCall, status: int, body: str) -> TalonPermanentError:
    try:
        decode_answer(call, status, body.encode(), None, 0.0)
    except TalonPermanentError as exc:
        return exc
    raise AssertionError("not refused")


def refusal(*pointers: str, status: int = 400) -> TalonPermanentError:
    errors = [
        {"title": "Invalid", "details": f"bad {p}", "source": {"pointer": p}} for p in pointers
    ]
    body = orjson.dumps({"message": "The submitted data was invalid", "errors": errors}).decode()
    return decode_error(CALL, status, body)  # as the client reads it: the errors whole


async def test_actions_share_calls_of_at_most_the_limit_one_call_at_a_time() -> None:
    talon = Catalog()
    catalogs = sync(talon, max_actions=10)
    actions = [CatalogAction("ADD", f"sku-{i % 25}", {"price": float(i)}) for i in range(60)]
    outcomes = await asyncio.gather(
        *(catalogs.sync("1", action, record(i)) for i, action in enumerate(actions))
    )
    assert all(outcome.response is not None for outcome in outcomes)
    assert talon.most_in_flight == 1
    for body in talon.bodies:
        skus = [action["payload"]["sku"] for action in body["actions"]]
        assert 1 <= len(skus) <= 10
        assert len(set(skus)) == len(skus)
    # 25 SKUs waiting at once: their 60 events merged into 25 actions, 10 per call.
    assert sum(len(body["actions"]) for body in talon.bodies) == 25
    assert len(talon.bodies) == 3
    await catalogs.close()


async def test_refused_actions_get_their_error_and_the_others_are_sent_again() -> None:
    talon = Catalog(refusal("/actions/1/payload/attributes", "/actions/2/payload/sku"))
    catalogs = sync(talon)
    actions = [
        CatalogAction("ADD", "a", {"price": 1.0}),
        CatalogAction("ADD", "b", {"attributes": {"unknown": 1}}),
        CatalogAction("ADD", "c", {"price": 3.0}),
    ]
    a, b, c = await asyncio.gather(
        *(catalogs.sync("1", action, record(i)) for i, action in enumerate(actions))
    )
    assert a.response is not None
    assert b.error is not None
    assert "ADD of sku 'b' refused: bad /actions/1/payload/attributes" in str(b.error)
    assert c.error is not None
    assert [len(body["actions"]) for body in talon.bodies] == [3, 1]
    await catalogs.close()


async def test_a_remove_of_an_item_not_in_the_catalog_is_done() -> None:
    talon = Catalog(refusal("/actions/0/payload/sku"))
    catalogs = sync(talon)
    outcome = await catalogs.sync("1", CatalogAction("REMOVE", "gone"), record(0))
    assert outcome.error is None
    assert outcome.response is not None
    assert len(talon.bodies) == 1
    await catalogs.close()


async def test_an_error_about_the_whole_call_is_found_by_halves_or_given_to_all() -> None:
    whole = TalonPermanentError("nope", call=CALL, status=400, body="{}")
    talon = Catalog(whole, whole, whole)  # the first call, its first half, and "a" alone
    catalogs = sync(talon)
    actions = [CatalogAction("ADD", sku, {"price": 1.0}) for sku in "abcd"]
    outcomes = await asyncio.gather(
        *(catalogs.sync("1", action, record(i)) for i, action in enumerate(actions))
    )
    assert [len(body["actions"]) for body in talon.bodies] == [4, 2, 1, 1, 2]
    assert [o.error is not None for o in outcomes] == [True, False, False, False]
    missing = TalonPermanentError("Catalog 9 not found", call=CALL, status=404, body="{}")
    talon = Catalog(missing)
    catalogs = sync(talon)
    outcomes = await asyncio.gather(
        *(catalogs.sync("9", action, record(i)) for i, action in enumerate(actions))
    )
    assert len(talon.bodies) == 1  # not one call per action
    assert all(o.error is missing for o in outcomes)
    await catalogs.close()

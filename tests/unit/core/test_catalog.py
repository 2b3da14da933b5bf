"""Catalog sync batching, pure: however product events are merged and cut into calls, the
catalog ends as the events one by one would leave it, and no call breaks Talon.One's rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream._exceptions import TranslationError
from talon_stream.core._catalog import CatalogAction, PendingActions, apply, merge
from talon_stream.core._events import decode_event
from talon_stream.core._translate import TranslationOptions, translate

_skus = st.sampled_from(["a", "b", "c", "d"])
_fields = st.fixed_dictionaries(
    {},
    optional={
        "price": st.integers(1, 99).map(float),
        "attributes": st.dictionaries(st.sampled_from(["color", "size"]), st.integers(0, 3)),
        "product": st.sampled_from(["P", "Q"]).map(lambda name: {"name": name}),
    },
)


def _action(kind: str, sku: str, fields: dict[str, Any], price: float) -> CatalogAction:
    if kind == "REMOVE":
        return CatalogAction("REMOVE", sku)
    if kind == "ADD":  # an upsert says the whole item, its price included
        return CatalogAction("ADD", sku, {**fields, "price": price})
    return CatalogAction("PATCH", sku, fields)


_actions = st.builds(
    _action,
    st.sampled_from(["ADD", "PATCH", "REMOVE"]),
    _skus,
    _fields,
    st.integers(1, 99).map(float),
)


@given(
    start=st.dictionaries(_skus, _fields),
    steps=st.lists(st.tuples(_actions, st.integers(0, 3)), max_size=40),
    limit=st.integers(1, 3),
)
def test_batched_calls_leave_the_catalog_as_the_events_one_by_one(
    start: dict[str, dict[str, Any]],
    steps: list[tuple[CatalogAction, int]],
    limit: int,
) -> None:
    one_by_one = {sku: dict(fields) for sku, fields in start.items()}
    batched = {sku: dict(fields) for sku, fields in start.items()}
    pending: PendingActions[int] = PendingActions()
    seen: list[int] = []

    def send(calls: int) -> None:
        for _ in range(calls):
            batch = pending.take(limit)
            if not batch:
                return
            assert len(batch) <= limit
            assert len({action.type for action, _ in batch}) == 1  # one type per call
            assert len({action.sku for action, _ in batch}) == len(batch)  # a SKU once
            for action, tokens in batch:
                apply(batched, action)
                seen.extend(tokens)

    for token, (action, calls) in enumerate(steps):
        apply(one_by_one, action)
        pending.add(action, token)
        send(calls)
    send(len(steps) + 1)
    assert batched == one_by_one
    assert sorted(seen) == list(range(len(steps)))  # every event answered once


def test_only_what_merges_exactly_is_merged() -> None:
    removed = CatalogAction("REMOVE", "a")
    patch = CatalogAction("PATCH", "a", {"attributes": {"color": "red"}})
    assert merge(removed, patch) is None  # the price the REMOVE dropped must stay dropped
    priced = CatalogAction("PATCH", "a", {"price": 5.0})
    assert merge(removed, priced) == CatalogAction("ADD", "a", {"price": 5.0})
    assert merge(patch, removed) is None  # the item may not exist before the PATCH lands
    assert merge(removed, removed) == removed
    added = CatalogAction("ADD", "a", {"price": 1.0, "attributes": {"color": "red"}})
    recolour = CatalogAction("PATCH", "a", {"attributes": {"size": 3}})
    assert merge(added, recolour) == CatalogAction(
        "ADD", "a", {"price": 1.0, "attributes": {"color": "red", "size": 3}}
    )


def test_a_remove_behind_a_waiting_add_goes_in_a_later_call() -> None:
    pending: PendingActions[str] = PendingActions()
    pending.add(CatalogAction("ADD", "new", {"price": 1.0}), "r1")
    pending.add(CatalogAction("REMOVE", "new"), "r2")
    pending.add(CatalogAction("REMOVE", "new"), "r3")
    assert pending.counts == {"ADD": 1, "PATCH": 0, "REMOVE": 0}
    assert [(a.type, tokens) for a, tokens in pending.take()] == [("ADD", ["r1"])]
    assert [(a.type, tokens) for a, tokens in pending.take()] == [("REMOVE", ["r2", "r3"])]
    # An upsert overtakes what waits: it says the whole item.
    pending.add(CatalogAction("PATCH", "x", {"price": 1.0}), "r4")
    pending.add(CatalogAction("REMOVE", "x"), "r5")
    pending.add(CatalogAction("ADD", "x", {"price": 2.0}), "r6")
    assert [(a.type, tokens) for a, tokens in pending.take()] == [("ADD", ["r4", "r5", "r6"])]
    assert len(pending) == 0


def test_take_sends_the_oldest_type_first_and_keeps_the_rest_waiting() -> None:
    pending: PendingActions[str] = PendingActions()
    pending.add(CatalogAction("REMOVE", "x"), "r1")
    pending.add(CatalogAction("ADD", "y", {"price": 1.0}), "r2")
    pending.add(CatalogAction("REMOVE", "z"), "r3")
    pending.add(CatalogAction("ADD", "x", {"price": 2.0}), "r4")  # x: now an ADD
    first = pending.take()
    assert [(a.type, a.sku, tokens) for a, tokens in first] == [
        ("ADD", "x", ["r1", "r4"]),
        ("ADD", "y", ["r2"]),
    ]
    assert [(a.type, a.sku) for a, _ in pending.take()] == [("REMOVE", "z")]
    assert pending.take() == []


def test_product_events_become_single_sync_actions_of_the_configured_catalog() -> None:
    upserted = {
        "eventId": "p-1",
        "type": "product.upserted",
        "occurredAt": "2026-11-22T10:00:00Z",
        "payload": {
            "sku": "rsb002",
            "price": 45,
            "attributes": {"color": "red"},
            "product": {"name": "Red Spring Blouse"},
        },
    }
    call = translate(decode_event(orjson.dumps(upserted)), TranslationOptions(catalog_id=7))
    assert (call.method, call.path) == ("PUT", "/v1/catalogs/7/sync")
    assert call.body == {
        "actions": [
            {
                "type": "ADD",
                "payload": {
                    "sku": "rsb002",
                    "price": 45.0,
                    "attributes": {"color": "red"},
                    "product": {"name": "Red Spring Blouse"},
                    "replaceIfExists": True,
                },
            }
        ]
    }
    deleted = {**upserted, "type": "product.deleted", "payload": {"sku": "rsb002"}}
    call = translate(decode_event(orjson.dumps(deleted)), TranslationOptions(catalog_id=7))
    assert call.body == {"actions": [{"type": "REMOVE", "payload": {"sku": "rsb002"}}]}
    updated = {**upserted, "type": "product.updated", "payload": {"sku": "rsb002", "price": 40}}
    call = translate(decode_event(orjson.dumps(updated)), TranslationOptions(catalog_id=7))
    assert call.body == {
        "actions": [
            {
                "type": "PATCH",
                "payload": {"sku": "rsb002", "price": 40.0, "createIfNotExists": True},
            }
        ]
    }
    with pytest.raises(TranslationError, match="set TALON_STREAM_CATALOG_ID"):
        translate(decode_event(orjson.dumps(deleted)), TranslationOptions())
    with pytest.raises(TranslationError, match="no dry mode"):
        translate(decode_event(orjson.dumps(deleted)), TranslationOptions(catalog_id=7, dry=True))

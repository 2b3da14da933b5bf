"""The Idempotency-Key store: replay, mismatch, in-flight requests, expiry and bounds."""

from __future__ import annotations

import asyncio

import pytest

from talon_one_emulator.errors import InvalidDataError
from talon_one_emulator.http.idempotency import (
    IdempotencyStore,
    StoredResponse,
    check_key,
    fingerprint,
)


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PUT = fingerprint("PUT", "/v2/customer_sessions/s-1", "", {"customerSession": {"state": "open"}})


def test_fingerprint_ignores_json_formatting_but_not_content() -> None:
    base = fingerprint("PUT", "/v2/customer_profiles/p", "runRuleEngine=true", {"a": 1, "b": 2})

    assert base == fingerprint(
        "PUT", "/v2/customer_profiles/p", "runRuleEngine=true", {"b": 2, "a": 1}
    )
    assert base != fingerprint(
        "PUT", "/v2/customer_profiles/p", "runRuleEngine=true", {"a": 2, "b": 2}
    )
    assert base != fingerprint(
        "PUT", "/v2/customer_profiles/q", "runRuleEngine=true", {"a": 1, "b": 2}
    )
    assert base != fingerprint("PUT", "/v2/customer_profiles/p", "", {"a": 1, "b": 2})
    assert base != fingerprint(
        "POST", "/v2/customer_profiles/p", "runRuleEngine=true", {"a": 1, "b": 2}
    )
    assert fingerprint("PUT", "/x", "", None) != fingerprint("PUT", "/x", "", {})


def test_check_key() -> None:
    assert check_key("a" * 255) == "a" * 255
    for bad, title in (("", "minLength"), ("a" * 256, "maxLength")):
        with pytest.raises(InvalidDataError) as caught:
            check_key(bad)
        [error] = caught.value.body()["errors"]
        assert error["title"] == title
        assert error["source"] == {"parameter": "Idempotency-Key"}


async def test_first_request_owns_the_key_and_later_ones_replay() -> None:
    store = IdempotencyStore()

    assert store.lookup("k", PUT) is None
    stored = store.complete("k", 200, b'{"effects":[]}')

    replay = store.lookup("k", PUT)
    assert replay == stored
    assert isinstance(replay, StoredResponse)
    assert (replay.status, replay.body) == (200, b'{"effects":[]}')
    assert len(store) == 1


async def test_a_key_reused_for_another_request_is_a_400() -> None:
    store = IdempotencyStore()
    assert store.lookup("k", PUT) is None
    other = fingerprint("PUT", "/v2/customer_sessions/s-2", "", {"customerSession": {}})

    with pytest.raises(InvalidDataError) as in_flight:
        store.lookup("k", other)
    store.complete("k", 200, b"{}")
    with pytest.raises(InvalidDataError) as stored:
        store.lookup("k", other)

    for caught in (in_flight, stored):
        body = caught.value.body()
        assert caught.value.status == 400
        assert body["message"] == "The submitted data was invalid"
        [error] = body["errors"]
        assert error["source"] == {"parameter": "Idempotency-Key"}
        assert '"k"' in error["details"]


async def test_concurrent_request_waits_for_the_first() -> None:
    store = IdempotencyStore()
    assert store.lookup("k", PUT) is None

    waiter = store.lookup("k", PUT)
    assert isinstance(waiter, asyncio.Future)
    assert not waiter.done()
    store.complete("k", 204, None)
    await asyncio.wait_for(waiter, 1)
    replay = store.lookup("k", PUT)
    assert isinstance(replay, StoredResponse)
    assert (replay.status, replay.body) == (204, None)


async def test_abandoned_key_lets_the_next_request_run() -> None:
    store = IdempotencyStore()
    assert store.lookup("k", PUT) is None
    waiter = store.lookup("k", PUT)
    assert isinstance(waiter, asyncio.Future)

    store.abandon("k")

    assert waiter.done()
    assert store.lookup("k", PUT) is None  # the waiter's turn: it now owns the key
    store.abandon("unknown")  # harmless


async def test_answers_expire_after_the_ttl() -> None:
    clock = MonotonicClock()
    store = IdempotencyStore(ttl=24 * 3600, clock=clock)
    assert store.lookup("k", PUT) is None
    store.complete("k", 200, b"{}")

    clock.now += 24 * 3600 - 1
    assert isinstance(store.lookup("k", PUT), StoredResponse)
    clock.now += 1
    assert store.lookup("k", PUT) is None
    assert len(store) == 0


async def test_memory_is_bounded() -> None:
    store = IdempotencyStore(capacity=3)
    for index in range(5):
        assert store.lookup(f"k{index}", PUT) is None
        store.complete(f"k{index}", 200, b"{}")

    assert len(store) == 3
    assert store.lookup("k0", PUT) is None  # dropped: processed again
    store.abandon("k0")
    assert isinstance(store.lookup("k4", PUT), StoredResponse)
    store.clear()
    assert len(store) == 0


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError, match="ttl"):
        IdempotencyStore(ttl=0)
    with pytest.raises(ValueError, match="capacity"):
        IdempotencyStore(capacity=0)

"""Profile updates without rules through the keyed dispatcher into bulk calls, against a scripted
shop: a customer's records reach Talon.One in order whichever path they take, each profile ends
as its updates one by one, every record gets one outcome; refused entries get their own error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon_stream._exceptions import TalonPermanentError
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._records import InputRecord
from talon_stream.core._translate import TranslationOptions
from talon_stream.processing._dispatch import KeyedDispatcher
from talon_stream.processing._prepared import Prepared
from talon_stream.processing._profiles import ProfileBulk
from talon_stream.scheduling._offsets import CommitPoint
from talon_stream.scheduling._replay import Resume
from talon_stream.talon._client import decode_answer
from tests.fakes import Sink, make_processor

PARTITION = ("shop.customers", 0)
DECLARED = {"x", "y", "z"}


class Shop:
    """Talon.One as far as these calls go: profiles merge attributes (an undeclared one is
    refused, pointed at), a session update notes the profile as it is then."""

    def __init__(self, delay_s: float = 0.002) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}
        self.seen_by_cart: list[tuple[str, int, dict[str, Any]]] = []
        self.bulk_sizes: list[int] = []
        self.busy: set[str] = set()
        self.overlaps = 0
        self._delay_s = delay_s

    async def send(self, call: TalonCall, **_: Any) -> TalonResponse:
        assert call.body is not None
        if call.operation is Operation.UPDATE_CUSTOMER_PROFILES:
            entries = call.body["customerProfiles"]
            errors = [
                {
                    "title": "Unknown",
                    "details": f'The attribute "{name}" is not defined',
                    "source": {"pointer": f"/customerProfiles/{i}/attributes/{name}"},
                }
                for i, entry in enumerate(entries)
                for name in entry.get("attributes", {})
                if name not in DECLARED
            ]
            if errors:
                body = {"message": "The submitted data was invalid", "errors": errors}
                decode_answer(call, 400, orjson.dumps(body), None, 0.0)
            customers = [entry["integrationId"] for entry in entries]
            await self._hold(customers)
            self.bulk_sizes.append(len(entries))
            for entry in entries:
                self.profiles.setdefault(entry["integrationId"], {}).update(
                    entry.get("attributes", {})
                )
            return TalonResponse(204, {}, 0.0)
        customer = call.body["customerSession"]["profileId"]
        await self._hold([customer])
        n = call.body["customerSession"]["attributes"]["n"]
        self.seen_by_cart.append((customer, n, dict(self.profiles.get(customer, {}))))
        return TalonResponse(200, {"effects": []}, 0.0)

    async def _hold(self, customers: list[str]) -> None:
        if self.busy & set(customers):
            self.overlaps += 1
        self.busy |= set(customers)
        await asyncio.sleep(self._delay_s)
        self.busy -= set(customers)


def profile_record(offset: int, customer: str, attributes: dict[str, Any]) -> InputRecord:
    value = {
        "eventId": f"e-{offset}",
        "type": "customer.updated",
        "occurredAt": "2026-11-22T10:00:00Z",
        "profileId": customer,
        "payload": {"attributes": attributes, "runRuleEngine": False},
    }
    return InputRecord(*PARTITION, offset, customer.encode(), orjson.dumps(value), [], None)


def cart_record(offset: int, customer: str, n: int) -> InputRecord:
    value = {
        "eventId": f"e-{offset}",
        "type": "cart.updated",
        "occurredAt": "2026-11-22T10:00:00Z",
        "profileId": customer,
        "sessionId": f"{customer}-s",
        "payload": {"attributes": {"n": n}},
    }
    return InputRecord(*PARTITION, offset, customer.encode(), orjson.dumps(value), [], None)


def keyed(shop: Shop, sink: Sink, *, linger_s: float = 0.005, limit: int = 1000) -> KeyedDispatcher:
    processor = make_processor(
        shop, sink, options=TranslationOptions(response_content=(), bulk_profiles=True)
    )
    processor.profiles = ProfileBulk(linger_s=linger_s, max_profiles=limit)
    dispatcher = KeyedDispatcher(processor, max_in_flight=8, max_buffered_per_partition=1000)
    dispatcher.assign([PARTITION], {PARTITION: Resume(0, log_end=0)})
    return dispatcher


async def until(condition: Any, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.002)


steps = st.lists(
    st.tuples(
        st.sampled_from(["c0", "c1", "c2"]),
        st.none() | st.dictionaries(st.sampled_from(sorted(DECLARED)), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.integers(1, 3))
def test_a_customers_records_keep_their_order_across_bulk_and_single_calls(
    script: list[tuple[str, dict[str, Any] | None]], limit: int
) -> None:
    # A step with attributes is a profile update; one without, a cart update.
    async def run() -> None:
        shop, sink = Shop(), Sink()
        dispatcher = keyed(shop, sink, limit=limit)
        expected_seen = []
        folded: dict[str, dict[str, Any]] = {}
        for offset, (customer, attributes) in enumerate(script):
            if attributes is None:
                expected_seen.append((customer, offset, dict(folded.get(customer, {}))))
                dispatcher.submit(cart_record(offset, customer, offset))
            else:
                folded.setdefault(customer, {}).update(attributes)
                dispatcher.submit(profile_record(offset, customer, attributes))
        await until(lambda: len(sink.records) == len(script))
        for customer in ("c0", "c1", "c2"):  # in order, after the updates before them
            assert [s for s in shop.seen_by_cart if s[0] == customer] == [
                s for s in expected_seen if s[0] == customer
            ]
        assert shop.profiles == folded
        assert shop.overlaps == 0
        assert all(size <= limit for size in shop.bulk_sizes)
        assert dispatcher.committable() == {PARTITION: CommitPoint(len(script))}
        assert {
            orjson.loads(value or b"")["source"]["offset"] for _, _, value, _ in sink.records
        } == set(range(len(script)))
        await dispatcher.close(1)

    asyncio.run(run())


async def test_updates_waiting_together_share_a_call_and_later_ones_join_it() -> None:
    shop, sink = Shop(delay_s=0.05), Sink()
    dispatcher = keyed(shop, sink, linger_s=0.02)
    offset = 0
    for customer in range(30):
        for n in range(3):  # three updates of each profile, merged into one entry
            dispatcher.submit(profile_record(offset, f"p{customer}", {"x": n}))
            offset += 1
    await until(lambda: len(sink.records) == offset)
    assert shop.bulk_sizes == [30]
    assert shop.profiles == {f"p{c}": {"x": 2} for c in range(30)}
    # While a call is in flight, the next updates of its profiles wait for the next call.
    dispatcher.submit(profile_record(offset, "p0", {"y": 1}))
    await asyncio.sleep(0.03)  # its call left and waits for its answer
    dispatcher.submit(profile_record(offset + 1, "p0", {"y": 2}))
    dispatcher.submit(profile_record(offset + 2, "p0", {"z": 3}))
    await until(lambda: len(sink.records) == offset + 3)
    assert shop.bulk_sizes == [30, 1, 1]
    assert shop.profiles["p0"] == {"x": 2, "y": 2, "z": 3}
    await dispatcher.close(1)


async def test_refused_entries_go_to_the_dlq_with_their_own_error_and_the_others_are_applied() -> (
    None
):
    shop, sink = Shop(), Sink()
    dispatcher = keyed(shop, sink, linger_s=0.01)
    dispatcher.submit(profile_record(0, "a", {"x": 1}))
    dispatcher.submit(profile_record(1, "b", {"pet": "cat"}))
    dispatcher.submit(profile_record(2, "c", {"y": 1}))
    await until(lambda: len(sink.records) == 3)
    by_topic = {topic: key for topic, key, _, _ in sink.records if topic == "talon-stream.dlq"}
    assert by_topic == {"talon-stream.dlq": b"b"}
    [dlq_headers] = [h for topic, _, _, h in sink.records if topic == "talon-stream.dlq"]
    error = dict(dlq_headers or [])["talon-stream.error.message"].decode()
    assert "profile 'b' refused" in error
    assert '"pet"' in error
    assert shop.profiles == {"a": {"x": 1}, "c": {"y": 1}}
    assert dispatcher.committable() == {PARTITION: CommitPoint(3)}
    await dispatcher.close(1)


async def test_with_unknown_attributes_skipped_each_record_is_told_its_own() -> None:
    shop, sink = Shop(), Sink()
    dispatcher = keyed(shop, sink, linger_s=0.01)
    caller = dispatcher._processor._callers["default"]
    caller.skip_unknown_attributes = True
    dispatcher.submit(profile_record(0, "a", {"x": 1, "pet": "cat"}))
    dispatcher.submit(profile_record(1, "a", {"y": 1}))
    dispatcher.submit(profile_record(2, "b", {"pet": "dog", "age": 3}))
    await until(lambda: len(sink.records) == 3)
    envelopes = {
        orjson.loads(value or b"")["source"]["offset"]: orjson.loads(value or b"")
        for _, _, value, _ in sink.records
    }
    assert envelopes[0]["droppedAttributes"] == ["CustomerProfile.pet"]
    assert "droppedAttributes" not in envelopes[1]
    assert sorted(envelopes[2]["droppedAttributes"]) == [
        "CustomerProfile.age",
        "CustomerProfile.pet",
    ]
    assert shop.profiles == {"a": {"x": 1, "y": 1}, "b": {}}
    stats = dispatcher._processor.stats
    assert stats.dropped_attributes == {
        ("CustomerProfile", "pet"): 1,
        ("CustomerProfile", "age"): 1,
    }
    await dispatcher.close(1)


def test_a_record_not_sent_never_joins() -> None:
    async def run() -> None:
        bulk = ProfileBulk()
        assert not bulk.join(prepared("a"), prepared("a"))  # nothing waits

    asyncio.run(run())


def prepared(customer: str) -> Prepared:
    call = TalonCall(
        Operation.UPDATE_CUSTOMER_PROFILES,
        customer,
        {"customerProfiles": [{"integrationId": customer}]},
        profile_id=customer,
    )
    return Prepared(profile_record(0, customer, {}), 0.0, datetime.now(tz=UTC), call=call)


def test_a_bulk_refusal_keeps_its_pointers() -> None:
    call = TalonCall(Operation.UPDATE_CUSTOMER_PROFILES, "", {"customerProfiles": []})
    body = {
        "message": "The submitted data was invalid",
        "errors": [
            {
                "title": "Unknown",
                "details": "d",
                "source": {"pointer": "/customerProfiles/1/attributes/q"},
            },
            {
                "title": "Invalid type",
                "details": "t",
                "source": {"pointer": "/customerProfiles/0/attributes/x"},
            },
        ],
    }
    with pytest.raises(TalonPermanentError) as refused:
        decode_answer(call, 400, orjson.dumps(body), None, 0.0)
    assert refused.value.unknown_attributes == ("/customerProfiles/1/attributes/q",)
    assert [p for p, _ in refused.value.problems] == [
        "/customerProfiles/1/attributes/q",
        "/customerProfiles/0/attributes/x",
    ]

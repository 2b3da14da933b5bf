"""The dry-only guard and the evaluator: nothing without dry=true is ever sent, calls of a
customer go one at a time in order while other customers' run alongside, retries as the worker
does, and a refused key stops the run."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest

from talon_stream._exceptions import (
    TalonFatalError,
    TalonPermanentError,
    TalonRetryableError,
)
from talon_stream.core._calls import Operation, TalonCall, TalonResponse
from talon_stream.core._events import decode_event
from talon_stream.core._records import InputRecord
from talon_stream.ops._stats import WorkerStats
from talon_stream.talon._caller import TalonCaller
from talon_stream.whatif import (
    DryJob,
    DryOnlySender,
    DryRunEvaluator,
    NonDryCallError,
    WhatIfHaltedError,
)


def session_call(session: str, profile: str | None = "ada", *, dry: bool = True) -> TalonCall:
    return TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION,
        session,
        {"customerSession": {"state": "open", "evaluableCampaignIds": [12]}},
        query={"dry": "true"} if dry else {},
        profile_id=profile,
        session_id=session,
    )


class Recording:
    """A Talon.One that answers after up to ``delay`` seconds (or raises the next error
    scripted for the session) and notes when each call began and ended."""

    def __init__(
        self, delay: float = 0.0, errors: dict[str, list[Exception]] | None = None, seed: int = 1
    ) -> None:
        self.delay = delay
        self.errors = errors or {}
        self.log: list[tuple[str, str, int]] = []  # (begin|end, session, n)
        self.in_flight = 0
        self.most_in_flight = 0
        self._rng = random.Random(seed)

    async def send(self, call: TalonCall, **_: Any) -> TalonResponse:
        n = int(call.body["customerSession"].get("n", 0)) if call.body else 0
        self.log.append(("begin", call.integration_id, n))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay * self._rng.random())
            scripted = self.errors.get(call.integration_id)
            if scripted:
                raise scripted.pop(0)
            return TalonResponse(200, {"effects": [{"campaignId": 12, "n": n}]}, 0.001)
        finally:
            self.in_flight -= 1
            self.log.append(("end", call.integration_id, n))


def job(session: str, n: int, profile: str | None = None) -> DryJob:
    call = session_call(session, profile)
    assert call.body is not None
    call.body["customerSession"]["n"] = n
    event = decode_event(
        b'{"eventId": "e", "type": "cart.updated", "occurredAt": "2026-12-05T10:00:00Z", '
        b'"sessionId": "' + session.encode() + b'"}'
    )
    record = InputRecord("in", 0, n, session.encode(), b"", [], 0)
    return DryJob(record, event, call, f"req-{n}")


def caller(talon: Any, **kwargs: Any) -> TalonCaller:
    async def no_wait(_s: float) -> None:
        return None

    return TalonCaller(DryOnlySender(talon), stats=WorkerStats(), sleep=no_wait, **kwargs)


async def test_the_guard_refuses_a_call_without_dry_and_sends_nothing() -> None:
    talon = Recording()
    guard = DryOnlySender(talon)
    with pytest.raises(NonDryCallError, match="without dry=true") as raised:
        await guard.send(session_call("s1", dry=False))
    assert raised.value.call.integration_id == "s1"
    assert talon.log == []
    assert guard.sent == 0
    answer = await guard.send(session_call("s1"), idempotency_key="k")
    assert answer.status == 200
    assert guard.sent == 1


async def test_a_call_without_dry_is_not_retried_by_the_caller_either() -> None:
    talon = Recording()
    stats = WorkerStats()
    refusing = TalonCaller(DryOnlySender(talon), stats=stats)
    with pytest.raises(NonDryCallError):
        await refusing.call(session_call("s1", dry=False), "key")
    assert talon.log == []
    assert stats.retries == 0


async def test_a_call_with_dry_false_or_other_values_is_refused() -> None:
    guard = DryOnlySender(Recording())
    for query in ({"dry": "false"}, {"dry": "True"}, {"runRuleEngine": "true"}):
        call = TalonCall(Operation.UPDATE_CUSTOMER_PROFILE, "ada", {}, query=query)
        with pytest.raises(NonDryCallError):
            await guard.send(call)


async def test_customers_calls_keep_their_order_and_never_overlap_while_others_run() -> None:
    talon = Recording(delay=0.004)
    answers: list[tuple[str, int]] = []
    evaluator = DryRunEvaluator(
        caller(talon),
        lambda j, a: answers.append((j.call.integration_id, j.record.offset)),
        max_in_flight=4,
    )
    rng = random.Random(7)
    submitted: dict[str, list[int]] = defaultdict(list)
    for n in range(200):
        session = f"s{rng.randrange(12)}"
        submitted[session].append(n)
        await evaluator.submit(job(session, n))
    await evaluator.drain()
    begun: dict[str, list[int]] = defaultdict(list)
    open_calls: dict[str, int] = defaultdict(int)
    for kind, session, n in talon.log:
        if kind == "begin":
            assert open_calls[session] == 0, f"two calls of {session} overlap"
            open_calls[session] += 1
            begun[session].append(n)
        else:
            open_calls[session] -= 1
    assert begun == submitted  # each customer's calls in the order submitted
    assert len(answers) == 200
    assert 1 < talon.most_in_flight <= 4


async def test_a_profile_orders_calls_across_its_sessions() -> None:
    talon = Recording(delay=0.002)
    evaluator = DryRunEvaluator(caller(talon), lambda j, a: None, max_in_flight=8)
    for n in range(30):
        await evaluator.submit(job(f"s{n % 3}", n, profile="ada"))
    await evaluator.drain()
    assert [n for kind, _s, n in talon.log if kind == "begin"] == list(range(30))
    assert talon.most_in_flight == 1


async def test_transient_failures_are_retried_and_permanent_ones_answered() -> None:
    busy = TalonRetryableError("busy", call=session_call("s1"), status=503, body="")
    bad = TalonPermanentError("bad", call=session_call("s2"), status=400, body="")
    talon = Recording(0.0, {"s1": [busy], "s2": [bad]})
    answers: list[Any] = []
    stats = WorkerStats()

    async def no_wait(_s: float) -> None:
        return None

    evaluator = DryRunEvaluator(
        TalonCaller(DryOnlySender(talon), stats=stats, sleep=no_wait),
        lambda j, a: answers.append(a),
        max_in_flight=1,
    )
    await evaluator.submit(job("s1", 0))
    await evaluator.submit(job("s2", 1))
    await evaluator.drain()
    assert isinstance(answers[0], TalonResponse)
    assert isinstance(answers[1], TalonPermanentError)
    assert answers[1].status == 400
    assert stats.retries == 1


async def test_a_refused_key_stops_the_run() -> None:
    refused = TalonFatalError("no", call=session_call("s1"), status=401, body="")
    talon = Recording(0.0, {"s1": [refused] * 50})
    evaluator = DryRunEvaluator(caller(talon), lambda j, a: None, max_in_flight=2)
    await evaluator.submit(job("s1", 0))
    with pytest.raises(WhatIfHaltedError, match="refused the API key"):
        await evaluator.drain()
    await evaluator.close()


async def test_a_call_without_dry_stops_the_run_and_is_not_sent() -> None:
    talon = Recording()
    evaluator = DryRunEvaluator(caller(talon), lambda j, a: None, max_in_flight=2)
    bad = job("s1", 0)
    bad = DryJob(bad.record, bad.event, session_call("s1", dry=False), "r")
    await evaluator.submit(bad)
    with pytest.raises(NonDryCallError):
        await evaluator.drain()
    assert talon.log == []

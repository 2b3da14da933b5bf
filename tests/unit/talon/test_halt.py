"""The worker-wide halt: one probe at a time with back-off while halted, everyone at once after."""

from __future__ import annotations

import asyncio

import pytest

from talon_stream.talon._halt import Halt


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


def make_halt(time: FakeTime) -> Halt:
    return Halt(probe_initial_s=1.0, probe_max_s=4.0, clock=time.clock, sleep=time.sleep)


async def test_not_halted_calls_go_straight_through() -> None:
    time = FakeTime()
    halt = make_halt(time)
    inside = 0
    most = 0

    async def call() -> None:
        nonlocal inside, most
        async with halt.turn():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(call() for _ in range(5)))
    assert most == 5
    assert time.sleeps == []
    assert not halt.active


async def test_while_halted_one_probe_at_a_time_with_doubling_waits() -> None:
    time = FakeTime()
    halt = make_halt(time)
    halt.trip("Talon.One refused the API key (401)")
    inside = 0
    most = 0
    probes = 0

    async def call() -> None:
        nonlocal inside, most, probes
        async with halt.turn():
            inside += 1
            most = max(most, inside)
            probes += 1
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(call() for _ in range(5)))
    assert most == 1  # never two probes at once
    assert probes == 5
    assert halt.probes == 5
    # 1 s after the halt, then 2, 4 and the cap of 4 s between probes.
    assert time.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert halt.active
    assert halt.reason == "Talon.One refused the API key (401)"


async def test_clearing_releases_every_waiting_call_at_once() -> None:
    time = FakeTime()
    halt = make_halt(time)
    halt.trip("cannot reach Talon.One")
    inside = 0
    most = 0

    async def call(succeeds: bool) -> None:
        nonlocal inside, most
        async with halt.turn():
            inside += 1
            most = max(most, inside)
            if succeeds:
                halt.clear()
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(call(True), *(call(False) for _ in range(4)))
    assert not halt.active
    assert halt.since is None
    assert most == 4  # the four waiting calls ran together once the probe had succeeded
    assert halt.probes == 1
    assert halt.halts == 1


async def test_a_failed_probe_hands_the_turn_on() -> None:
    time = FakeTime()
    halt = make_halt(time)
    halt.trip("401")
    order: list[str] = []

    async def failing() -> None:
        async with halt.turn():
            order.append("fail")
            raise RuntimeError("still 401")

    async def succeeding() -> None:
        async with halt.turn():
            order.append("ok")
            halt.clear()

    results = await asyncio.gather(failing(), succeeding(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert order == ["fail", "ok"]
    assert not halt.active


async def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    halt = Halt(probe_initial_s=0.05, probe_max_s=0.05)
    halt.trip("401")
    entered = asyncio.Event()

    async def stuck() -> None:
        async with halt.turn():
            entered.set()
            await asyncio.sleep(60)

    first = asyncio.create_task(stuck())
    await asyncio.wait_for(entered.wait(), 5)
    second = asyncio.create_task(stuck())
    await asyncio.sleep(0.01)
    first.cancel()  # the probe is cancelled (a revoke, a shutdown)
    with pytest.raises(asyncio.CancelledError):
        await first
    entered.clear()
    await asyncio.wait_for(entered.wait(), 5)  # the next caller got its turn
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second


def test_trip_logs_once_per_reason_and_counts_halts(caplog: pytest.LogCaptureFixture) -> None:
    time = FakeTime()
    halt = make_halt(time)
    caplog.set_level("INFO", logger="talon_stream.talon._halt")
    halt.trip("401: check TALON_STREAM_TALON_API_KEY")
    halt.trip("401: check TALON_STREAM_TALON_API_KEY")
    time.now += 12.5
    halt.clear()
    halt.clear()
    halt.trip("403")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "halted, consumption paused: 401: check TALON_STREAM_TALON_API_KEY",
        "resumed after 12.5 s halted (401: check TALON_STREAM_TALON_API_KEY)",
        "halted, consumption paused: 403",
    ]
    assert halt.halts == 2

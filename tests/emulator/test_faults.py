"""Fault settings, the command-line specs and the injector's decisions (no HTTP)."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from pydantic import ValidationError

from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import ConfigError
from talon_one_emulator.http.faults import (
    Fault,
    FaultInjector,
    FaultSettings,
    FixedLatency,
    LognormalLatency,
    NormalLatency,
    Outage,
    UniformLatency,
    parse_error_rate,
    parse_latency,
    parse_outage,
)


class WallClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_default_settings_inject_nothing() -> None:
    injector = FaultInjector()

    assert injector.idle
    draws = {injector.draw() for _ in range(100)}
    assert len(draws) == 1
    [draw] = draws
    assert draw.delay_s == 0
    assert draw.fault is None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, FixedLatency()),
        ({"ms": 25}, FixedLatency(ms=25)),
        ({"distribution": "uniform", "minMs": 1, "maxMs": 5}, UniformLatency(min_ms=1, max_ms=5)),
        (
            {"distribution": "normal", "meanMs": 20, "stddevMs": 5},
            NormalLatency(mean_ms=20, stddev_ms=5),
        ),
        (
            {"distribution": "lognormal", "medianMs": 10, "sigma": 0.5},
            LognormalLatency(median_ms=10, sigma=0.5),
        ),
    ],
)
def test_latency_documents(document: dict[str, object], expected: object) -> None:
    assert FaultSettings.model_validate({"latency": document}).latency == expected


@pytest.mark.parametrize(
    "document",
    [
        {"latency": {"distribution": "uniform", "minMs": 5, "maxMs": 1}},
        {"latency": {"distribution": "pareto"}},
        {"latency": {"ms": -1}},
        {"errorRates": {"404": 0.1}},
        {"errorRates": {"503": 1.5}},
        {"errorRates": {"500": 0.6, "503": 0.6}},
        {"retryAfterSeconds": -1},
        {"errorPhase": "during"},
        {"outages": [{"seconds": 0}]},
        {"unknown": 1},
    ],
)
def test_invalid_settings_are_rejected(document: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaultSettings.model_validate(document)


def test_settings_round_trip_through_json() -> None:
    settings = FaultSettings.model_validate(
        {
            "latency": {"distribution": "normal", "meanMs": 3, "stddevMs": 1},
            "seed": 4,
            "errorRates": {"429": 0.1, "503": 0.2},
            "retryAfterSeconds": 2,
            "errorPhase": "after",
            "outages": [{"startAfterSeconds": 5, "seconds": 10}],
        }
    )

    assert FaultSettings.model_validate(settings.to_json()) == settings
    assert settings.to_json()["errorRates"] == {"429": 0.1, "503": 0.2}


def test_seeded_draws_are_reproducible() -> None:
    settings = FaultSettings(
        latency=LognormalLatency(median_ms=10, sigma=1), seed=42, error_rates={500: 0.3}
    )
    first, second = FaultInjector(settings), FaultInjector(settings)

    assert [first.draw() for _ in range(50)] == [second.draw() for _ in range(50)]
    first.reset()
    third = FaultInjector(settings)
    assert [first.draw() for _ in range(50)] == [third.draw() for _ in range(50)]


@pytest.mark.parametrize(
    ("latency", "low", "high", "mean"),
    [
        (FixedLatency(ms=7), 0.007, 0.007, 0.007),
        (UniformLatency(min_ms=2, max_ms=4), 0.002, 0.004, 0.003),
        (NormalLatency(mean_ms=10, stddev_ms=2), 0.0, 0.030, 0.010),
        (LognormalLatency(median_ms=10, sigma=0.25), 0.002, 0.060, 0.0103),
    ],
)
def test_latency_distributions(latency: object, low: float, high: float, mean: float) -> None:
    injector = FaultInjector(FaultSettings.model_validate({"latency": latency, "seed": 1}))

    delays = [injector.draw().delay_s for _ in range(4000)]

    assert low <= min(delays)
    assert max(delays) <= high
    assert statistics.fmean(delays) == pytest.approx(mean, rel=0.05)


def test_normal_latency_never_goes_negative() -> None:
    settings = FaultSettings(latency=NormalLatency(mean_ms=1, stddev_ms=5), seed=3)
    injector = FaultInjector(settings)

    assert min(injector.draw().delay_s for _ in range(2000)) == 0


def test_error_rates_per_status() -> None:
    settings = FaultSettings(
        seed=7, error_rates={429: 0.1, 500: 0.05, 502: 0.05, 503: 0.2}, retry_after_s=3
    )
    injector = FaultInjector(settings)

    faults = [injector.draw().fault for _ in range(20_000)]

    counts = Counter(fault.status if fault is not None else None for fault in faults)
    assert counts[429] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[500] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[502] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[503] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert counts[None] / 20_000 == pytest.approx(0.6, abs=0.015)
    too_many = next(fault for fault in faults if fault is not None and fault.status == 429)
    assert too_many.headers() == {"Retry-After": "3"}
    assert too_many.body() == {"message": "Too many requests", "StatusCode": 429}
    assert too_many.label == "error-before"


def test_retry_after_is_optional_and_only_on_429() -> None:
    assert Fault(429, "error", before=True).headers() == {}
    assert Fault(503, "error", before=True, retry_after_s=5).headers() == {}


def test_error_phase_after() -> None:
    injector = FaultInjector(FaultSettings(error_rates={502: 1.0}, error_phase="after"))

    fault = injector.draw().fault

    assert fault is not None
    assert not fault.before
    assert fault.label == "error-after"
    assert fault.body() == {"message": "Bad gateway", "StatusCode": 502}


def test_configured_outage_windows_count_from_when_applied() -> None:
    clock = WallClock()
    settings = FaultSettings(outages=(Outage(start_after_s=10, seconds=5),))
    injector = FaultInjector(settings, clock=clock)

    assert not injector.idle
    assert injector.draw().fault is None
    clock.now += 10
    fault = injector.draw().fault
    assert fault is not None
    assert (fault.status, fault.kind, fault.label) == (503, "outage", "outage")
    assert fault.body() == {"message": "Service unavailable (emulated outage)", "StatusCode": 503}
    assert injector.outage_active()
    clock.now += 5
    assert injector.draw().fault is None
    assert not injector.outage_active()
    assert injector.idle  # the ended window is forgotten
    assert injector.snapshot()["outageWindows"] == []


def test_outage_switch() -> None:
    clock = WallClock()
    injector = FaultInjector(clock=clock)

    injector.start_outage()
    clock.now += 3600
    assert injector.outage_active()
    assert injector.snapshot()["outageWindows"] == [{"start": 1_000_000.0, "end": None}]
    injector.end_outages()
    assert not injector.outage_active()
    assert injector.idle


def test_outage_wins_over_error_rates() -> None:
    injector = FaultInjector(FaultSettings(error_rates={429: 1.0}))
    injector.start_outage(seconds=60)

    fault = injector.draw().fault

    assert fault is not None
    assert fault.status == 503


def test_applying_settings_keeps_or_replaces_outages() -> None:
    clock = WallClock()
    injector = FaultInjector(clock=clock)
    injector.start_outage(seconds=60)

    injector.apply(FaultSettings(error_rates={500: 0.5}), keep_outages=True)
    assert injector.outage_active()
    injector.apply(FaultSettings())
    assert not injector.outage_active()
    assert injector.idle


def test_snapshot() -> None:
    clock = WallClock()
    injector = FaultInjector(FaultSettings(seed=1, error_rates={503: 0.5}), clock=clock)
    injector.start_outage(seconds=2, start_after_s=1)

    snapshot = injector.snapshot()

    assert snapshot["seed"] == 1
    assert snapshot["errorRates"] == {"503": 0.5}
    assert snapshot["outageActive"] is False
    assert snapshot["outageWindows"] == [{"start": 1_000_001.0, "end": 1_000_003.0}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25", FixedLatency(ms=25)),
        ("fixed:3.5", FixedLatency(ms=3.5)),
        ("uniform:1:9", UniformLatency(min_ms=1, max_ms=9)),
        ("normal:20:4", NormalLatency(mean_ms=20, stddev_ms=4)),
        ("lognormal:15:0.6", LognormalLatency(median_ms=15, sigma=0.6)),
    ],
)
def test_parse_latency(text: str, expected: object) -> None:
    assert parse_latency(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "uniform:1", "uniform:9:1", "normal:a:b", "-5"])
def test_parse_latency_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid latency"):
        parse_latency(text)


def test_parse_error_rate_and_outage() -> None:
    assert parse_error_rate("503=0.25") == (503, 0.25)
    assert parse_outage("10:5") == Outage(start_after_s=10, seconds=5)
    assert parse_outage("0:") == Outage(start_after_s=0, seconds=None)
    for bad in ("503", "404=0.1", "503=2", "x=y"):
        with pytest.raises(ValueError, match="invalid error rate"):
            parse_error_rate(bad)
    for bad in ("10", "a:b", "-1:5", "1:0"):
        with pytest.raises(ValueError, match="invalid outage"):
            parse_outage(bad)


def test_config_folds_latency_ms_into_the_fault_settings() -> None:
    config = EmulatorConfig(api_keys=["k"], latency_ms=12)
    assert config.fault_settings.latency == FixedLatency(ms=12)
    faults = FaultSettings(latency=UniformLatency(min_ms=1, max_ms=2), error_rates={500: 0.1})
    config = EmulatorConfig(api_keys=["k"], faults=faults)
    assert config.fault_settings == faults
    with pytest.raises(ConfigError):
        EmulatorConfig(api_keys=["k"], latency_ms=5, faults=faults)
    with pytest.raises(ConfigError):
        EmulatorConfig(api_keys=["k"], idempotency_capacity=0)

"""Fault injection for the Talon.One paths: latency, error rates and outage windows.

A :class:`FaultSettings` says what to inject; a :class:`FaultInjector` holds the current settings,
the random generator and the outage windows, and decides for each Talon.One call (admin paths
are never faulted)::

    draw() ──▶ Injection(delay, fault)
               │        └── None, or a Fault: 503 "outage" while a window is open, else
               │            429/500/502/503 with the configured probabilities
               └── seconds to wait first, from the latency distribution

A fault is answered with Talon.One's ErrorResponseWithStatus body
(``{"message": ..., "StatusCode": ...}``), a 429 with ``Retry-After`` when configured. With
``errorPhase: before`` (the default) the request is not processed; with ``after`` it is processed
(and its Idempotency-Key response stored) but the client gets the error: a lost response.
Outages always answer before processing.

Settings come from :class:`~talon_one_emulator.config.EmulatorConfig` at start-up (the CLI builds
them with
:func:`parse_latency`, :func:`parse_error_rate` and :func:`parse_outage`) and can be replaced at
run time through the admin API (``PUT /__emulator/faults``, ``POST /__emulator/outage``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

__all__ = [
    "ERROR_STATUSES",
    "MAX_LATENCY_MS",
    "ErrorStatus",
    "Fault",
    "FaultInjector",
    "FaultSettings",
    "FixedLatency",
    "Injection",
    "LatencySpec",
    "LognormalLatency",
    "NormalLatency",
    "Outage",
    "UniformLatency",
    "parse_error_rate",
    "parse_latency",
    "parse_outage",
]

ErrorStatus = Literal[429, 500, 502, 503]
ERROR_STATUSES: tuple[ErrorStatus, ...] = (429, 500, 502, 503)
_STATUS_BY_CODE: dict[int, ErrorStatus] = {status: status for status in ERROR_STATUSES}
# A drawn latency never exceeds this: the tails of normal and lognormal are unbounded.
MAX_LATENCY_MS = 60_000.0

_MESSAGES: dict[int, str] = {
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}

Clock = Callable[[], float]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


_Ms = Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)]


class FixedLatency(_Model):
    """The same delay for every call (``ms: 0`` = none)."""

    distribution: Literal["fixed"] = "fixed"
    ms: _Ms = 0.0

    def sample(self, _rng: random.Random) -> float:
        return self.ms


class UniformLatency(_Model):
    """Uniformly between ``minMs`` and ``maxMs``."""

    distribution: Literal["uniform"] = "uniform"
    min_ms: _Ms = Field(alias="minMs")
    max_ms: _Ms = Field(alias="maxMs")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_ms < self.min_ms:
            raise ValueError("maxMs must be at least minMs")
        return self

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.min_ms, self.max_ms)


class NormalLatency(_Model):
    """Normally distributed around ``meanMs``; negative draws count as 0."""

    distribution: Literal["normal"] = "normal"
    mean_ms: _Ms = Field(alias="meanMs")
    stddev_ms: _Ms = Field(alias="stddevMs")

    def sample(self, rng: random.Random) -> float:
        return max(0.0, rng.gauss(self.mean_ms, self.stddev_ms))


class LognormalLatency(_Model):
    """Log-normally distributed: ``medianMs * exp(sigma * N(0, 1))``; a long right tail."""

    distribution: Literal["lognormal"] = "lognormal"
    median_ms: Annotated[float, Field(gt=0, le=MAX_LATENCY_MS)] = Field(alias="medianMs")
    sigma: Annotated[float, Field(ge=0, le=10)]

    def sample(self, rng: random.Random) -> float:
        return self.median_ms * math.exp(self.sigma * rng.gauss(0.0, 1.0))


def _distribution(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return str(value.get("distribution", "fixed"))
    return getattr(value, "distribution", None)


LatencySpec = Annotated[
    Annotated[FixedLatency, Tag("fixed")]
    | Annotated[UniformLatency, Tag("uniform")]
    | Annotated[NormalLatency, Tag("normal")]
    | Annotated[LognormalLatency, Tag("lognormal")],
    Discriminator(_distribution),
]


class Outage(_Model):
    """Every Talon.One call answers 503 from ``startAfterSeconds`` after the settings are applied
    (server start, or the admin call) for ``seconds`` (``null``: until switched off)."""

    start_after_s: Annotated[float, Field(ge=0)] = Field(default=0.0, alias="startAfterSeconds")
    seconds: Annotated[float, Field(gt=0)] | None = None


def _int_keys(value: Any) -> Any:
    # JSON object keys are strings: {"503": 0.1} means status 503.
    if isinstance(value, Mapping):
        return {
            int(key) if isinstance(key, str) and key.isdigit() else key: rate
            for key, rate in value.items()
        }
    return value


_Rate = Annotated[float, Field(ge=0, le=1)]


class FaultSettings(_Model):
    """What to inject into Talon.One calls; the default injects nothing.

    Attributes:
        latency: the delay distribution (``FixedLatency``, ``UniformLatency``, ...).
        seed: seeds the random generator (latency and errors); ``None``: unpredictable.
        error_rates: probability per status (429, 500, 502, 503); they add up to at most 1.
        retry_after_s: ``Retry-After`` seconds on 429 answers (``None``: no header).
        error_phase: ``before`` answers the error without processing the request, ``after``
            processes it and then answers the error.
        outages: windows in which every call answers 503.
    """

    latency: LatencySpec = Field(default_factory=FixedLatency)
    seed: int | None = None
    error_rates: Annotated[dict[ErrorStatus, _Rate], BeforeValidator(_int_keys)] = Field(
        default_factory=dict, alias="errorRates"
    )
    retry_after_s: Annotated[int, Field(ge=0)] | None = Field(
        default=None, alias="retryAfterSeconds"
    )
    error_phase: Literal["before", "after"] = Field(default="before", alias="errorPhase")
    outages: tuple[Outage, ...] = ()

    @model_validator(mode="after")
    def _rates_add_up(self) -> Self:
        if sum(self.error_rates.values()) > 1 + 1e-9:
            raise ValueError("errorRates must add up to at most 1")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected error answer."""

    status: int
    kind: Literal["outage", "error"]
    before: bool
    """Answered instead of processing the request (else after processing it)."""
    retry_after_s: int | None = None

    @property
    def label(self) -> str:
        """How the request log names it: ``outage``, ``error-before`` or ``error-after``."""
        if self.kind == "outage":
            return "outage"
        return "error-before" if self.before else "error-after"

    def body(self) -> dict[str, Any]:
        """Talon.One's ErrorResponseWithStatus."""
        message = _MESSAGES[self.status]
        if self.kind == "outage":
            message += " (emulated outage)"
        return {"message": message, "StatusCode": self.status}

    def headers(self) -> dict[str, str]:
        if self.status == 429 and self.retry_after_s is not None:
            return {"Retry-After": str(self.retry_after_s)}
        return {}

    def payload(self) -> bytes:
        return orjson.dumps(self.body())


@dataclass(frozen=True, slots=True)
class Injection:
    """The decision for one call: wait ``delay_s`` seconds, then answer ``fault`` if any."""

    delay_s: float = 0.0
    fault: Fault | None = None


NO_INJECTION = Injection()


@dataclass(frozen=True, slots=True)
class _Window:
    start: float
    end: float | None

    def contains(self, moment: float) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}


class FaultInjector:
    """Applies :class:`FaultSettings` to Talon.One calls.

    Decisions run on the server's event loop; settings may be replaced from another thread (a
    test's), which swaps whole immutable objects under a lock.

    Args:
        settings: what to inject (default: nothing).
        clock: wall-clock seconds since the epoch (injectable for tests); outage windows and
            the admin API use it.
    """

    def __init__(self, settings: FaultSettings | None = None, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._rng = random.Random()  # noqa: S311 - simulated latency, not cryptography
        self._windows: tuple[_Window, ...] = ()
        self._thresholds: tuple[tuple[float, Fault], ...] = ()
        self._sampled = False
        self.idle = True
        """Nothing to inject: the request path may skip :meth:`draw` entirely."""
        self.apply(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def apply(self, settings: FaultSettings, *, keep_outages: bool = False) -> None:
        """Replace the settings: re-seed, and (unless ``keep_outages``) replace the outage
        windows by the settings' ones, counted from now."""
        now = self._clock()
        windows = tuple(
            _Window(
                now + outage.start_after_s,
                None if outage.seconds is None else now + outage.start_after_s + outage.seconds,
            )
            for outage in settings.outages
        )
        before = settings.error_phase == "before"
        thresholds = []
        cumulative = 0.0
        for status in ERROR_STATUSES:
            rate = settings.error_rates.get(status, 0.0)
            if rate > 0:
                cumulative += rate
                retry = settings.retry_after_s if status == 429 else None
                thresholds.append((cumulative, Fault(status, "error", before, retry)))
        with self._lock:
            self._settings = settings
            self._rng = random.Random(settings.seed)  # noqa: S311 - see __init__
            self._thresholds = tuple(thresholds)
            latency = settings.latency
            self._sampled = not (isinstance(latency, FixedLatency) and latency.ms == 0)
            if not keep_outages:
                self._windows = windows
            self._refresh_idle()

    def reset(self) -> None:
        """Re-apply the current settings (re-seed; outage windows counted from now)."""
        self.apply(self._settings)

    def start_outage(self, seconds: float | None = None, start_after_s: float = 0.0) -> None:
        """Add an outage window starting ``start_after_s`` from now, for ``seconds``
        (``None``: until :meth:`end_outages`)."""
        start = self._clock() + start_after_s
        window = _Window(start, None if seconds is None else start + seconds)
        with self._lock:
            self._windows = (*self._live_windows(), window)
            self._refresh_idle()

    def end_outages(self) -> None:
        """End every outage window, running or scheduled."""
        with self._lock:
            self._windows = ()
            self._refresh_idle()

    def outage_active(self) -> bool:
        now = self._clock()
        return any(window.contains(now) for window in self._windows)

    def draw(self) -> Injection:
        """The decision for one Talon.One call."""
        if self.idle:
            return NO_INJECTION
        settings, rng = self._settings, self._rng
        delay = settings.latency.sample(rng) / 1000 if self._sampled else 0.0
        delay = min(delay, MAX_LATENCY_MS / 1000)
        windows = self._windows
        if windows:
            now = self._clock()
            if any(window.contains(now) for window in windows):
                return Injection(delay, Fault(503, "outage", before=True))
            if all(window.end is not None and window.end <= now for window in windows):
                with self._lock:
                    self._windows = self._live_windows()
                    self._refresh_idle()
        if self._thresholds:
            draw = rng.random()
            for upto, fault in self._thresholds:
                if draw < upto:
                    return Injection(delay, fault)
        return Injection(delay) if delay > 0 else NO_INJECTION

    def snapshot(self) -> dict[str, Any]:
        """The settings plus the current outage windows (epoch seconds), as admin JSON."""
        now = self._clock()
        windows = self._live_windows(now)
        return {
            **self._settings.to_json(),
            "outageActive": any(window.contains(now) for window in windows),
            "outageWindows": [window.json() for window in windows],
        }

    def _live_windows(self, now: float | None = None) -> tuple[_Window, ...]:
        moment = self._clock() if now is None else now
        return tuple(w for w in self._windows if w.end is None or w.end > moment)

    def _refresh_idle(self) -> None:
        self.idle = not (self._sampled or self._thresholds or self._windows)


# --- command-line specs -----------------------------------------------------------------------


def parse_latency(text: str) -> LatencySpec:
    """``25`` or ``fixed:25``, ``uniform:MIN:MAX``, ``normal:MEAN:STDDEV``,
    ``lognormal:MEDIAN:SIGMA`` (milliseconds, sigma unitless).

    Raises:
        ValueError: the spec is malformed or out of range.
    """
    kind, _, rest = text.partition(":")
    try:
        if not rest:
            return FixedLatency(ms=float(kind))
        numbers = [float(part) for part in rest.split(":")]
        match kind, numbers:
            case "fixed", [ms]:
                return FixedLatency(ms=ms)
            case "uniform", [low, high]:
                return UniformLatency(min_ms=low, max_ms=high)
            case "normal", [mean, stddev]:
                return NormalLatency(mean_ms=mean, stddev_ms=stddev)
            case "lognormal", [median, sigma]:
                return LognormalLatency(median_ms=median, sigma=sigma)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        raise ValueError(f"invalid latency {text!r}: {exc}") from exc
    raise ValueError(
        f"invalid latency {text!r}: use MS, fixed:MS, uniform:MIN:MAX, normal:MEAN:STDDEV "
        "or lognormal:MEDIAN:SIGMA"
    )


def parse_error_rate(text: str) -> tuple[ErrorStatus, float]:
    """``503=0.01``: the status and its probability.

    Raises:
        ValueError: malformed, an unsupported status, or a rate outside 0..1.
    """
    status_text, sep, rate_text = text.partition("=")
    try:
        code, rate = int(status_text), float(rate_text)
    except ValueError:
        code, rate = 0, -1.0
    status = _STATUS_BY_CODE.get(code)
    if not sep or status is None or not 0 <= rate <= 1:
        raise ValueError(
            f"invalid error rate {text!r}: use STATUS=RATE with STATUS one of 429, 500, 502, "
            "503 and RATE in 0..1"
        )
    return status, rate


def parse_outage(text: str) -> Outage:
    """``START:SECONDS`` (seconds after start-up, duration) or ``START:`` (until switched off).

    Raises:
        ValueError: malformed or negative.
    """
    start_text, sep, seconds_text = text.partition(":")
    usage = f"invalid outage {text!r}: use START:SECONDS or START: (until switched off)"
    if not sep:
        raise ValueError(usage)
    try:
        seconds = float(seconds_text) if seconds_text else None
        return Outage(start_after_s=float(start_text), seconds=seconds)
    except ValueError as exc:
        raise ValueError(f"{usage}: {exc}") from exc

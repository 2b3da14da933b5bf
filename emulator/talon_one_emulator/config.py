"""The emulator's configuration: one frozen object, built once by the entry point."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from talon_one_emulator.campaigns.file import CampaignSet, load_campaigns
from talon_one_emulator.errors import ConfigError
from talon_one_emulator.http.faults import FaultSettings, FixedLatency
from talon_one_emulator.http.idempotency import (
    DEFAULT_IDEMPOTENCY_CAPACITY,
    DEFAULT_IDEMPOTENCY_TTL,
)
from talon_one_emulator.notifications.settings import NotificationSettings
from talon_one_emulator.store.concurrency import DEFAULT_CONCURRENCY_LIMIT
from talon_one_emulator.store.requestlog import DEFAULT_REQUEST_LOG_SIZE
from talon_one_emulator.store.state import (
    DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_PROFILES,
    DEFAULT_MAX_SESSIONS,
)

__all__ = ["EmulatorConfig"]


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How one emulated Talon.One Application behaves.

    Attributes:
        api_keys: accepted Integration API keys (``Authorization: ApiKey-v1 <key>``); kept out
            of ``repr``. Stored as a tuple.
        campaigns: the parsed campaign file (default: the packaged ``default.yaml``).
        latency_ms: fixed artificial latency added to every Talon.One call (a shorthand for
            ``faults.latency``; give one or the other).
        application_id: reported as ``applicationId``.
        account_id: reported as ``accountId``.
        concurrency_limit: requests in flight per session/profile integration ID before 409
            (Talon.One: 1 running + 2 queued = 3); ``None`` turns the rule off. Only observable
            with ``latency_ms > 0``, since without latency requests never overlap.
        request_log_size: how many request log entries are kept.
        faults: latency distribution, error rates and outage windows injected into Talon.One
            calls (see :mod:`talon_one_emulator.http.faults`); changeable at run time through the
            admin API.
        idempotency_ttl_s: how long an Idempotency-Key answer is replayed (Talon.One: 24 h).
        idempotency_capacity: how many Idempotency-Key answers are kept at most.
        max_sessions: how many customer sessions are kept at most (default 200,000); beyond,
            the oldest-created one is forgotten (real Talon.One keeps them all).
        max_profiles: how many customer profiles are kept at most (default 200,000); beyond,
            the oldest-created one is forgotten with what only it owns (loyalty ledgers,
            per-profile coupon and budget counts, audience memberships, ...).
        max_events: how many advanced events (trackEventV3) are kept at most (default
            200,000); beyond, the oldest one is forgotten and its ID may be used again.
        notifications: the outbound notification webhooks (strikethrough prices after a
            catalog sync, loyalty points added or deducted, coupons created) and how their
            deliveries are retried; none by default.

    Raises:
        ConfigError: a value is out of range.
    """

    api_keys: Sequence[str] = field(repr=False)
    campaigns: CampaignSet = field(default_factory=load_campaigns)
    latency_ms: float = 0.0
    application_id: int = 1
    account_id: int = 1
    concurrency_limit: int | None = DEFAULT_CONCURRENCY_LIMIT
    request_log_size: int = DEFAULT_REQUEST_LOG_SIZE
    faults: FaultSettings = field(default_factory=FaultSettings)
    idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL
    idempotency_capacity: int = DEFAULT_IDEMPOTENCY_CAPACITY
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_profiles: int = DEFAULT_MAX_PROFILES
    max_events: int = DEFAULT_MAX_EVENTS
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    def __post_init__(self) -> None:
        if isinstance(self.api_keys, str):
            raise ConfigError("api_keys must be a sequence of keys, not one string")
        keys = tuple(self.api_keys)
        if not keys:
            raise ConfigError("at least one API key is required")
        if any(not key or key.strip() != key or " " in key for key in keys):
            raise ConfigError("API keys must be non-empty and contain no spaces")
        object.__setattr__(self, "api_keys", keys)
        if self.latency_ms < 0:
            raise ConfigError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.concurrency_limit is not None and self.concurrency_limit < 1:
            raise ConfigError(f"concurrency_limit must be >= 1, got {self.concurrency_limit}")
        if self.request_log_size < 1:
            raise ConfigError(f"request_log_size must be >= 1, got {self.request_log_size}")
        if self.application_id < 1 or self.account_id < 1:
            raise ConfigError("application_id and account_id must be >= 1")
        if self.latency_ms > 0 and self.faults.latency != FixedLatency():
            raise ConfigError("give latency_ms or faults.latency, not both")
        if self.idempotency_ttl_s <= 0 or self.idempotency_capacity < 1:
            raise ConfigError("idempotency_ttl_s must be > 0 and idempotency_capacity >= 1")
        if self.max_sessions < 1 or self.max_profiles < 1:
            raise ConfigError(
                f"max_sessions and max_profiles must be >= 1, got {self.max_sessions} and "
                f"{self.max_profiles}"
            )
        if self.max_events < 1:
            raise ConfigError(f"max_events must be >= 1, got {self.max_events}")

    @property
    def fault_settings(self) -> FaultSettings:
        """``faults`` with ``latency_ms`` folded in as a fixed latency."""
        if self.latency_ms > 0:
            return self.faults.model_copy(update={"latency": FixedLatency(ms=self.latency_ms)})
        return self.faults

"""Typed, frozen configuration, read once at start-up from ``TALON_STREAM_*`` variables.

``docs/configuration.md`` and the README list every setting. The API key is a ``SecretStr``: it
is never printed, logged or written to a record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workers.exceptions import ConfigurationError
from workers.routing import DEFAULT_EFFECT_ROUTES

__all__ = ["DEFAULT_INPUT_TOPICS", "Settings", "load_settings"]

DEFAULT_INPUT_TOPICS = ("shop.carts", "shop.orders", "shop.customers", "shop.events")

ResponseContent = Literal[
    "customerSession",
    "customerProfile",
    "coupons",
    "triggeredCampaigns",
    "referral",
    "loyalty",
    "event",
    "awardedGiveaways",
    "ruleFailureReasons",
    "previousReturns",
]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Everything a worker needs; each field is the variable ``TALON_STREAM_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="TALON_STREAM_", frozen=True, extra="ignore", populate_by_name=True
    )

    # --- Kafka ---------------------------------------------------------------------------------
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("TALON_STREAM_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS is honoured too).",
    )
    group_id: str = Field(default="talon-stream", min_length=1)
    input_topics: Annotated[tuple[str, ...], NoDecode] = DEFAULT_INPUT_TOPICS
    effects_topic: str = Field(default="talon.effects", min_length=1)
    dlq_topic: str = Field(default="talon-stream.dlq", min_length=1)
    #: Topics that get an envelope narrowed to some effect types, besides the whole envelope on
    #: the effects topic (workers.routing; JSON ``{"topic": ["setDiscount*", ...]}``, ``{}``: off).
    effect_routes: dict[str, list[str]] = Field(
        default_factory=lambda: {
            topic: list(types) for topic, types in DEFAULT_EFFECT_ROUTES.items()
        }
    )
    #: Extra librdkafka settings for both clients, e.g. ``{"security.protocol": "SASL_SSL"}``.
    kafka_config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    fetch_wait_max_ms: int = Field(default=100, ge=1)
    commit_interval_s: float = Field(default=1.0, gt=0)
    partition_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] = (
        "cooperative-sticky"
    )

    # --- Talon.One -----------------------------------------------------------------------------
    talon_base_url: str = Field(default="http://127.0.0.1:8900")
    talon_api_key: SecretStr = SecretStr("")
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    #: ``native`` (default: ``workers.http11``, a lean HTTP/1.1 client, the cheapest per call),
    #: ``aiohttp`` or ``httpx``.
    http_client: Literal["native", "aiohttp", "httpx"] = "native"
    response_content: Annotated[tuple[ResponseContent, ...], NoDecode] = (
        "customerSession",
        "customerProfile",
    )
    dry_run: bool = False
    profile_run_rule_engine: bool = True

    # --- Worker --------------------------------------------------------------------------------
    #: ``keyed``: many customers in flight, one call per customer; ``partition``: one call in
    #: flight per partition (the HTTP-sink model, kept as a baseline).
    dispatch: Literal["keyed", "partition"] = "keyed"
    max_in_flight: int = Field(default=256, ge=1)
    max_buffered_per_partition: int = Field(default=1000, ge=1)
    drain_timeout_s: float = Field(default=30.0, ge=0)
    #: Transient failures are retried without limit, the waits growing from the initial
    #: back-off (doubling, with full jitter) to the maximum.
    retry_initial_backoff_s: float = Field(default=0.05, gt=0)
    retry_max_backoff_s: float = Field(default=30.0, gt=0)
    #: After a customer's record goes to the DLQ: ``continue`` with its next records, or
    #: ``park`` them in the DLQ behind it until the failed record comes back by a replay.
    dlq_policy: Literal["continue", "park"] = "continue"
    #: A record value larger than this goes to the DLQ unread (and without its value, which
    #: stays in the source topic: Kafka's default limit would refuse it in the DLQ too).
    max_record_bytes: int = Field(default=512 * 1024, ge=1024)
    #: A cap on Talon.One calls per second for this worker (unset: no cap), and the calls that
    #: may go at once after a quiet spell.
    max_requests_per_s: float | None = Field(default=None, gt=0)
    rate_burst: int = Field(default=10, ge=1)
    #: Adapt the calls in flight (up to ``max_in_flight``): halve on 429 (or on calls slower
    #: than ``adaptive_latency_threshold_ms``, when set), grow back by one per window of calls.
    adaptive_concurrency: bool = True
    adaptive_min_in_flight: int = Field(default=4, ge=1)
    adaptive_latency_threshold_ms: float | None = Field(default=None, gt=0)
    #: Halt (pause consumption, report unhealthy) once Talon.One has not answered for this long.
    unreachable_halt_after_s: float = Field(default=60.0, ge=0)
    #: While halted, the wait before the first probe call, doubling up to the maximum.
    halt_probe_initial_s: float = Field(default=1.0, gt=0)
    halt_probe_max_s: float = Field(default=30.0, gt=0)
    #: ``/healthz`` and ``/readyz`` on this port (0: a free one; unset: no health endpoint).
    health_port: int | None = Field(default=None, ge=0, le=65535)
    health_host: str = "0.0.0.0"  # noqa: S104 - probes come from outside the container
    #: A YAML mapping file (docs/mapping.md): records of the topics it lists are a shop's own
    #: JSON documents, mapped to events; unset: every topic carries canonical events.
    mapping_file: Path | None = None

    _split = field_validator("input_topics", "response_content", mode="before")(_split_csv)

    @field_validator("mapping_file", mode="before")
    @classmethod
    def _no_mapping_when_empty(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("talon_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https:// (e.g. https://mycompany.talon.one)"
            )
        return value.rstrip("/")

    @field_validator("input_topics")
    @classmethod
    def _topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one input topic (comma-separated)")
        return value

    def consumer_config(self) -> dict[str, Any]:
        """librdkafka settings of the worker's consumer. Offsets are committed by the worker,
        only past finished records, so auto-commit is off; a new group starts at the earliest
        offset so no event that was already in the topic is skipped."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self.heartbeat_interval_ms,
            "fetch.wait.max.ms": self.fetch_wait_max_ms,
            "partition.assignment.strategy": self.partition_assignment_strategy,
            "isolation.level": "read_uncommitted",
            "log.connection.close": False,
            **self.kafka_config,
        }

    def producer_config(self) -> dict[str, Any]:
        """librdkafka settings of the producer of effects and DLQ records (idempotent, acks=all)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 30_000,
            "log.connection.close": False,
            **self.kafka_config,
        }

    def require_api_key(self) -> str:
        """The API key, or a ConfigurationError that says how to set it."""
        key = self.talon_api_key.get_secret_value()
        if not key:
            raise ConfigurationError(
                "no Talon.One API key: set TALON_STREAM_TALON_API_KEY to an Integration API key "
                "(Campaign Manager: Settings, Integration API Keys)"
            )
        return key


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus explicit overrides) once; turn validation errors into one
    ConfigurationError that names each variable to fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            name = "TALON_STREAM_" + "_".join(str(p) for p in error["loc"]).upper()
            lines.append(f"  {name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from exc

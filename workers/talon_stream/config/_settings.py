"""Typed, frozen configuration, read once at start-up from ``TALON_STREAM_*`` variables, a
TOML config file, ``KAFKA_*`` variables (librdkafka pass-through) and command-line overrides —
in that order of precedence, see :mod:`talon_stream.config._sources`.

The README lists every setting. The API key is a ``SecretStr`` and so is every secret librdkafka
property (``sasl.password``, ``ssl.key.password``, …): never printed, logged or written to a
record.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from talon_stream._exceptions import ConfigurationError, InvalidSettingsError
from talon_stream.config._sources import (
    SettingsRequest,
    is_sensitive,
    layered_sources,
    origins,
    requested,
    reveal,
)
from talon_stream.core._routing import DEFAULT_EFFECT_ROUTES
from talon_stream.core._translate import ResponseContent

__all__ = [
    "DEFAULT_APPLICATION",
    "DEFAULT_INPUT_TOPICS",
    "ApplicationSettings",
    "Settings",
    "load_settings",
]

DEFAULT_INPUT_TOPICS = ("shop.carts", "shop.orders", "shop.customers", "shop.events")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: The classic protocol's partition assignors.
Assignor = Literal["cooperative-sticky", "range", "roundrobin"]


class ApplicationSettings(BaseModel):
    """One more Talon.One Application (a market, a currency): its deployment, its key (a value,
    or a file re-read when it changes), its catalog and its own cap on calls per second.
    ``base_url`` defaults to the default Application's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    base_url: str | None = None
    catalog_id: int | None = Field(default=None, ge=1)
    max_requests_per_s: float | None = Field(default=None, gt=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return None if value is None else value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("api_key must not be empty")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> ApplicationSettings:
        if (self.api_key is None) == (self.api_key_file is None):
            raise ValueError("give one of api_key and api_key_file (a file holding the key)")
        return self


#: The name of the Application ``talon_base_url`` / ``talon_api_key`` / ``catalog_id`` describe.
DEFAULT_APPLICATION = "default"


class Settings(BaseSettings):
    """Everything a worker needs; each field is the variable ``TALON_STREAM_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="TALON_STREAM_",
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        # A validation error never quotes a value: kafka_config may hold passwords.
        hide_input_in_errors=True,
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
    #: Where erased customers are written (compacted; keyed by a digest of the integration ID,
    #: never the ID): every worker of the group reads it, so a customer's records after a
    #: ``customer.erased`` are refused whoever owns the partition then (docs/events.md).
    erasures_topic: str = Field(default="talon-stream.erasures", min_length=1)
    #: Topics that get an envelope narrowed to some effect types, besides the whole envelope on
    #: the effects topic (talon_stream.core.EffectRouter; JSON
    #: ``{"topic": ["setDiscount*", ...]}``, ``{}``: off).
    effect_routes: dict[str, list[str]] = Field(
        default_factory=lambda: {
            topic: list(types) for topic, types in DEFAULT_EFFECT_ROUTES.items()
        }
    )
    #: Extra librdkafka settings for both clients, e.g. ``{"security.protocol": "SASL_SSL"}``;
    #: the ``KAFKA_<NAME>`` variables add to them. Secret values are held as ``SecretStr``.
    kafka_config: dict[str, str | int | float | bool | SecretStr] = Field(default_factory=dict)
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    fetch_wait_max_ms: int = Field(default=100, ge=1)
    commit_interval_s: float = Field(default=1.0, gt=0)
    #: ``at-least-once``: outcomes are published, then offsets committed (a crash can publish
    #: an outcome twice). ``exactly-once``: outcomes and input offsets are committed in one Kafka
    #: transaction every ``transaction_interval_ms`` (docs/processing.md).
    processing_guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    transaction_interval_ms: int = Field(default=100, ge=10)
    #: A producer's ``transactional.id``; default ``<group id>-<host name>-<process id>``,
    #: stable across restarts of a container (same host name, process id 1).
    transactional_id: str | None = Field(default=None, min_length=1)
    #: How long the broker keeps a transaction of a worker that vanished open (readers with
    #: ``read_committed`` wait behind it) before it aborts it.
    transaction_timeout_ms: int = Field(default=10_000, ge=1000)
    #: Several input topics are read as one stream per partition number, in order of their
    #: records' timestamps (docs/processing.md, "One customer, several topics"): how long (ms) a
    #: record may wait for a caught-up partition of its task (a producer that may lag) before it
    #: goes ahead; a partition with records still to fetch is always waited for. ``-1``: each
    #: topic is read on its own, in offset order only.
    max_idle_ms: int = Field(default=1000, ge=-1)
    #: A ``cart.updated`` that happened before the newest event this worker already applied to
    #: its session is not sent: its envelope says which event superseded it (docs/events.md).
    supersede_late_carts: bool = True
    #: How many sessions' newest applied event the worker remembers for that (the least
    #: recently updated forgotten first; ~450 bytes each).
    session_memory: int = Field(default=50_000, ge=1)
    #: Cart updates of one session waiting behind its call in flight are sent as one call
    #: (keyed dispatch; docs/processing.md), committed before it starts so that a replay makes
    #: the same call. Off by default: downstream consumers then see ``coalescedInto`` envelopes.
    coalesce_cart_updates: bool = False
    #: The classic protocol's assignor; default ``cooperative-sticky`` (no stop-the-world
    #: rebalances), and ``range`` with exactly-once processing — librdkafka refuses the offsets
    #: of a transaction committed while a cooperative rebalance revokes partitions
    #: (ILLEGAL_GENERATION, confluentinc/librdkafka#4059), which an eager assignor's revoke never
    #: does — or with several input topics merged: only ``range`` gives partition *p* of every
    #: topic to the same worker.
    partition_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] | None = (
        None
    )
    #: ``classic`` (JoinGroup/SyncGroup, the client-side assignor above) or ``consumer``, the
    #: consumer group protocol of KIP-848 (Apache Kafka 4.0 and later): the broker assigns,
    #: incrementally; the session and heartbeat are the broker's settings
    #: (``group.consumer.*``), so ``session_timeout_ms``, ``heartbeat_interval_ms`` and the
    #: assignor do not apply.
    group_protocol: Literal["classic", "consumer"] = "classic"

    # --- Talon.One -----------------------------------------------------------------------------
    talon_base_url: str = Field(default="http://127.0.0.1:8900")
    talon_api_key: SecretStr = SecretStr("")
    #: A file holding the API key instead (a mounted Kubernetes Secret): re-read every
    #: ``talon_api_key_poll_s`` and whenever Talon.One refuses the key, so a rotated key is
    #: taken up without a restart (docs/network.md).
    talon_api_key_file: Path | None = None
    talon_api_key_poll_s: float = Field(default=5.0, gt=0)
    #: A PEM bundle of the CAs that sign Talon.One's certificate, in place of the system's.
    talon_ca_file: Path | None = None
    #: A PEM client certificate (and its unencrypted key, unless it is in the same file) for
    #: deployments that require mutual TLS.
    talon_client_cert_file: Path | None = None
    talon_client_key_file: Path | None = None
    #: The proxies of the Talon.One transport (``http://[user:password@]host:port``), by the
    #: scheme of the Talon.One URL, and the hosts reached without one (``NO_PROXY``, as curl
    #: reads it). The usual variables are read; the ``TALON_STREAM_`` ones win over them.
    https_proxy: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TALON_STREAM_HTTPS_PROXY", "HTTPS_PROXY")
    )
    http_proxy: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TALON_STREAM_HTTP_PROXY", "HTTP_PROXY")
    )
    no_proxy: str | None = Field(
        default=None, validation_alias=AliasChoices("TALON_STREAM_NO_PROXY", "NO_PROXY")
    )
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    #: ``native`` (default: ``talon_stream.talon.Http11Client``, a lean HTTP/1.1 client, the
    #: cheapest per call), ``aiohttp`` or ``httpx``: the transport of the Talon.One client.
    http_client: Literal["native", "aiohttp", "httpx"] = "native"
    #: What Talon.One sends back besides the effects. The envelope publishes the session's
    #: summary, so by default only the session is asked for (less to serialise and parse).
    response_content: Annotated[tuple[ResponseContent, ...], NoDecode] = ("customerSession",)
    dry_run: bool = False
    profile_run_rule_engine: bool = True
    #: Applications besides the default one, by name (JSON ``{"de": {"api_key": "...",
    #: "base_url": "...", "catalog_id": 3, "max_requests_per_s": 50}}``): each with its own
    #: key, halt, rate cap and metrics (docs/processing.md, "Several Applications").
    applications: dict[str, ApplicationSettings] = Field(default_factory=dict)
    #: Where a record names its Application: ``header:<name>`` or a path into the event
    #: (``payload.attributes.market``); absent → the default Application, unknown → DLQ.
    application_field: str | None = Field(default=None, min_length=1)
    #: How ``customer.event`` is tracked: ``v2`` (track event) or ``v3`` (track advanced event,
    #: identified by the ``eventId``: Talon.One refuses a replayed one as a duplicate, and the
    #: worker publishes the stored event's effects instead).
    custom_events_api: Literal["v2", "v3"] = "v2"
    #: The cart item catalog product events sync (``product.upserted`` / ``.updated`` /
    #: ``.deleted``; unset: product events go to the DLQ saying so).
    catalog_id: int | None = Field(default=None, ge=1)
    #: How long a product event may wait for others to share its sync call (up to 1,000
    #: actions of its type; a full call leaves at once).
    catalog_linger_ms: int = Field(default=500, ge=0)
    #: ``customer.updated`` records that run no rules (``runRuleEngine`` false) go in bulk
    #: calls (update multiple customer profiles, up to 1,000 profiles each) with keyed
    #: dispatch; off: one update customer profile call per record.
    bulk_profiles: bool = True
    #: How long a profile update may wait for others to share its bulk call (1,000 profiles
    #: leave at once).
    bulk_profiles_linger_ms: int = Field(default=500, ge=0)
    #: A call Talon.One refuses for attributes its Application does not declare is sent again
    #: without them; the envelope's ``droppedAttributes`` and ``attributes_dropped_total`` say
    #: which. Off: such a record goes to the DLQ.
    skip_unknown_attributes: bool = False

    # --- Worker --------------------------------------------------------------------------------
    #: ``keyed``: many customers in flight, one call per customer; ``partition``: one call in
    #: flight per partition (the HTTP-sink model, kept as a baseline).
    dispatch: Literal["keyed", "partition"] = "keyed"
    max_in_flight: int = Field(default=256, ge=1)
    #: Records waiting per partition before it is paused. A waiting record holds its decoded
    #: event and translated call, ~5 kB: 500 per partition over 12 partitions is ~30 MB.
    max_buffered_per_partition: int = Field(default=500, ge=1)
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

    # --- Avro and Schema Registry (docs/events.md) ----------------------------------------------
    #: Record format by topic, JSON ``{"shop.orders": "avro", "talon.effects": "avro"}``; a topic
    #: not listed is ``json``. Avro is the Confluent wire format through the Schema Registry.
    topic_formats: dict[str, Literal["json", "avro"]] = Field(default_factory=dict)
    #: The Schema Registry's URL (required when a topic is Avro).
    schema_registry_url: str | None = None
    #: ``user:password`` for the registry's HTTP basic authentication.
    schema_registry_basic_auth: SecretStr | None = None
    #: Register the output schemas under ``<topic>-value`` at start-up; off: they must be
    #: registered already (the worker looks them up and stops if they are not).
    schema_registry_auto_register: bool = True

    # --- Notification receiver (`talon-stream notifications`, docs/notifications.md) ----------
    #: Where Talon.One's notification webhooks are served (POST /notifications[/<name>]).
    notifications_host: str = "0.0.0.0"  # noqa: S104 - Talon.One calls from outside
    notifications_port: int = Field(default=8080, ge=0, le=65535)
    #: ``/healthz``, ``/readyz`` and ``/metrics`` of the receiver, on a port of their own.
    notifications_health_port: int = Field(default=9090, ge=0, le=65535)
    #: The custom header the webhooks are configured with in Talon.One, and its secret value:
    #: a request without it is refused (401) and nothing is published.
    notifications_auth_header: str = Field(default="X-Talon-Stream-Token", min_length=1)
    notifications_auth_token: SecretStr = SecretStr("")
    #: The topic of each category of notification (keyed by SKU, customer, card, coupon code,
    #: batch or campaign).
    notifications_pricing_topic: str = Field(default="talon.notifications.pricing", min_length=1)
    notifications_loyalty_topic: str = Field(default="talon.notifications.loyalty", min_length=1)
    notifications_coupons_topic: str = Field(default="talon.notifications.coupons", min_length=1)
    notifications_campaigns_topic: str = Field(
        default="talon.notifications.campaigns", min_length=1
    )
    #: How long a notification's id is remembered, so that a retry publishes nothing (Talon.One
    #: retries for about 10 minutes), and how many ids at most.
    notifications_dedupe_window_s: float = Field(default=3600.0, gt=0)
    notifications_dedupe_capacity: int = Field(default=200_000, ge=1)
    #: A larger request body is refused (413).
    notifications_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: How long Kafka may take to acknowledge a request's records before the answer is 503.
    notifications_publish_timeout_s: float = Field(default=10.0, gt=0)
    #: SIGTERM: how long requests in flight may take to finish.
    notifications_drain_timeout_s: float = Field(default=15.0, ge=0)

    _split = field_validator("input_topics", "response_content", mode="before")(_split_csv)

    @field_validator("schema_registry_url", mode="before")
    @classmethod
    def _registry_url(cls, value: Any) -> Any:
        if value in ("", None):
            return None
        if not str(value).startswith(("http://", "https://", "mock://")):
            raise ValueError("must start with http:// or https:// (e.g. http://registry:8081)")
        return str(value).rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments > command line > TALON_STREAM_* > KAFKA_* > config file > defaults (no
        .env file and no secrets directory are configured: those two sources are left out)."""
        return layered_sources(settings_cls, init_settings, env_settings)

    @field_validator("kafka_config")
    @classmethod
    def _hide_kafka_secrets(
        cls, value: dict[str, str | int | float | bool | SecretStr]
    ) -> dict[str, str | int | float | bool | SecretStr]:
        return {
            name: SecretStr(str(item))
            if is_sensitive(name) and not isinstance(item, SecretStr)
            else item
            for name, item in value.items()
        }

    @field_validator(
        "mapping_file",
        "talon_api_key_file",
        "talon_ca_file",
        "talon_client_cert_file",
        "talon_client_key_file",
        "https_proxy",
        "http_proxy",
        "no_proxy",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("https_proxy", "http_proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_proxy_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_way_to_the_key(self) -> Settings:
        if self.talon_api_key.get_secret_value() and self.talon_api_key_file is not None:
            raise ValueError(
                "TALON_STREAM_TALON_API_KEY and TALON_STREAM_TALON_API_KEY_FILE are both set: "
                "give the key one way only (the file, to rotate it without a restart)"
            )
        if self.talon_client_key_file is not None and self.talon_client_cert_file is None:
            raise ValueError(
                "TALON_STREAM_TALON_CLIENT_KEY_FILE is set without "
                "TALON_STREAM_TALON_CLIENT_CERT_FILE: a client key is only used with its "
                "certificate"
            )
        return self

    @field_validator("talon_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "must start with http:// or https:// (e.g. https://mycompany.talon.one)"
            )
        return value.rstrip("/")

    @field_validator("applications")
    @classmethod
    def _application_names(
        cls, value: dict[str, ApplicationSettings]
    ) -> dict[str, ApplicationSettings]:
        if DEFAULT_APPLICATION in value:
            raise ValueError(
                f"{DEFAULT_APPLICATION!r} is the Application of TALON_STREAM_TALON_BASE_URL and "
                "TALON_STREAM_TALON_API_KEY: give the others other names"
            )
        return value

    @model_validator(mode="after")
    def _application_field_given(self) -> Settings:
        if self.applications and self.application_field is None:
            raise ValueError(
                "TALON_STREAM_APPLICATIONS needs TALON_STREAM_APPLICATION_FIELD: where a record "
                "names its Application (header:<name> or a path such as payload.attributes.market)"
            )
        return self

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
            **self._group_config(),
            "fetch.wait.max.ms": self.fetch_wait_max_ms,
            # librdkafka prefetches up to 100,000 records / 64 MB by default: seconds of work at
            # this worker's rate. A smaller prefetch keeps memory flat while a backlog drains.
            "queued.min.messages": 10_000,
            "queued.max.messages.kbytes": 8_192,
            "fetch.max.bytes": 8 * 1024 * 1024,
            # Exactly-once reads only committed input, as its own readers do.
            "isolation.level": "read_committed" if self.exactly_once else "read_uncommitted",
            "log.connection.close": False,
            **reveal(self.kafka_config),
        }

    def reader_config(self) -> dict[str, Any]:
        """librdkafka settings of a consumer that reads whole topics (the erasures topic) by
        assignment: it never joins the group nor commits."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group_id + ".reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "log.connection.close": False,
            **reveal(self.kafka_config),
        }

    def producer_config(self) -> dict[str, Any]:
        """librdkafka settings of the producer of effects and DLQ records (idempotent, acks=all)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            # Keyed: a call's slot is not held while its outcome is published, but the customer's
            # next call waits for the acknowledgement, and readers for the record: the linger is
            # in both latencies (make bench: the produce stage's p50 8.6 ms at 5 ms, 29 ms at 20;
            # 20 saved about 3 % of CPU per event). Partition-serial: each partition waits for
            # every acknowledgement; send at once.
            "linger.ms": 5 if self.dispatch == "keyed" else 0,
            "compression.type": "lz4",
            "message.timeout.ms": 30_000,
            "log.connection.close": False,
            **self._transactional_config(),
            **reveal(self.kafka_config),
        }

    def notifications_producer_config(self) -> dict[str, Any]:
        """librdkafka settings of the notification receiver's producer: idempotent, acks=all,
        never transactional; a record not acknowledged within
        ``notifications_publish_timeout_s`` fails its request (503)."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": int(self.notifications_publish_timeout_s * 1000),
            "log.connection.close": False,
            **reveal(self.kafka_config),
        }

    def notifications_topics(self) -> dict[str, str]:
        """The topic of each category of notification."""
        return {
            "pricing": self.notifications_pricing_topic,
            "loyalty": self.notifications_loyalty_topic,
            "coupons": self.notifications_coupons_topic,
            "campaigns": self.notifications_campaigns_topic,
        }

    def _group_config(self) -> dict[str, Any]:
        if self.group_protocol == "consumer":
            # librdkafka refuses the classic protocol's settings with this one. The broker's
            # range assignor keeps co-partitioned topics together; its default (uniform) not.
            config: dict[str, Any] = {"group.protocol": "consumer"}
            if self.merges_topics:
                config["group.remote.assignor"] = "range"
            return config
        return {
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": self.heartbeat_interval_ms,
            "partition.assignment.strategy": self.assignment_strategy,
        }

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly-once"

    @property
    def merges_topics(self) -> bool:
        """Whether the input topics are merged in event-time order (``max_idle_ms``)."""
        return len(self.input_topics) > 1 and self.max_idle_ms >= 0

    @property
    def assignment_strategy(self) -> str:
        """The assignor in effect (see ``partition_assignment_strategy``)."""
        if self.partition_assignment_strategy is not None:
            return self.partition_assignment_strategy
        return "range" if self.exactly_once or self.merges_topics else "cooperative-sticky"

    @model_validator(mode="after")
    def _co_located_when_merging(self) -> Settings:
        strategy = self.partition_assignment_strategy
        if (
            self.merges_topics
            and self.group_protocol == "classic"
            and strategy not in (None, "range")
        ):
            raise ValueError(
                f"several input topics are merged in event-time order, which needs partition p "
                f"of every topic on the same worker: the range assignor does that, {strategy} "
                "does not; set TALON_STREAM_PARTITION_ASSIGNMENT_STRATEGY=range (the default "
                "then), or TALON_STREAM_MAX_IDLE_MS=-1 to read each topic on its own"
            )
        return self

    @model_validator(mode="after")
    def _eager_with_transactions(self) -> Settings:
        if (
            self.exactly_once
            and self.group_protocol == "classic"
            and self.partition_assignment_strategy == "cooperative-sticky"
        ):
            raise ValueError(
                "processing_guarantee=exactly-once needs an eager assignor: set "
                "TALON_STREAM_PARTITION_ASSIGNMENT_STRATEGY to range (the default with "
                "exactly-once) or roundrobin; with cooperative-sticky, librdkafka cannot commit "
                "a transaction's offsets while a rebalance revokes partitions"
            )
        return self

    def _transactional_config(self) -> dict[str, Any]:
        if not self.exactly_once:
            return {}
        transactional_id = self.transactional_id or (
            f"{self.group_id}-{socket.gethostname()}-{os.getpid()}"
        )
        return {
            "transactional.id": transactional_id,
            "transaction.timeout.ms": self.transaction_timeout_ms,
            # librdkafka requires it: a record may not outlive its transaction.
            "message.timeout.ms": min(30_000, self.transaction_timeout_ms),
        }

    def kafka_client_config(self) -> dict[str, Any]:
        """What every Kafka client of this configuration shares: the bootstrap servers and the
        pass-through settings (security, SASL, TLS), secrets revealed — for librdkafka only."""
        return {"bootstrap.servers": self.bootstrap_servers, **reveal(self.kafka_config)}

    def application_endpoint(self, name: str) -> tuple[str, SecretStr]:
        """The base URL and API key of Application ``name`` (``DEFAULT_APPLICATION``: the
        ``talon_*`` settings; the others' base URL defaults to the default one's); the key is
        empty when it is given as a file (see :meth:`application_key`).

        Raises:
            KeyError: no Application has this name.
        """
        if name == DEFAULT_APPLICATION:
            return self.talon_base_url, self.talon_api_key
        application = self.applications[name]
        return application.base_url or self.talon_base_url, application.api_key or SecretStr("")

    def require_api_key(self) -> str:
        """The API key (read from its file when it is given as one), or a ConfigurationError
        that says how to set it."""
        if self.talon_api_key_file is not None:
            try:
                key = self.talon_api_key_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"TALON_STREAM_TALON_API_KEY_FILE ({self.talon_api_key_file}) cannot be "
                    f"read: {getattr(exc, 'strerror', None) or exc}"
                ) from exc
            if not key:
                raise ConfigurationError(
                    f"TALON_STREAM_TALON_API_KEY_FILE ({self.talon_api_key_file}) is empty: it "
                    "must hold a Talon.One Integration API key"
                )
            return key
        key = self.talon_api_key.get_secret_value()
        if not key:
            raise ConfigurationError(
                "no Talon.One API key: set TALON_STREAM_TALON_API_KEY to an Integration API key "
                "(Campaign Manager: Settings, Integration API Keys), or "
                "TALON_STREAM_TALON_API_KEY_FILE to a file holding it"
            )
        return key

    def application_key(self, name: str) -> tuple[SecretStr | None, Path | None, str, str]:
        """Application ``name``'s key as given — the value, the file — and the settings that
        give each (for messages).

        Raises:
            KeyError: no Application has this name.
        """
        if name == DEFAULT_APPLICATION:
            return (
                self.talon_api_key if self.talon_api_key.get_secret_value() else None,
                self.talon_api_key_file,
                "TALON_STREAM_TALON_API_KEY",
                "TALON_STREAM_TALON_API_KEY_FILE",
            )
        application = self.applications[name]
        where = f"TALON_STREAM_APPLICATIONS ({name}."
        return (
            application.api_key,
            application.api_key_file,
            where + "api_key)",
            where + "api_key_file)",
        )

    def proxies(self) -> dict[str, str | None]:
        """The proxy settings revealed, as ``talon_stream.talon.proxy_for`` takes them."""
        return {
            "https_proxy": self.https_proxy.get_secret_value() if self.https_proxy else None,
            "http_proxy": self.http_proxy.get_secret_value() if self.http_proxy else None,
            "no_proxy": self.no_proxy,
        }


def _check_proxy_url(url: str) -> None:
    """A proxy URL the transports can use; the message never quotes it (it may hold a
    password)."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else "http://" + text)
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"a proxy URL must start with http:// ({parts.scheme}:// proxies are not supported)"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the proxy URL's port is not a number from 0 to 65535") from exc
    if not parts.hostname or port == 0:
        raise ValueError("a proxy URL needs a host (http://host:port)")


def load_settings(
    *,
    config_file: Path | str | None = None,
    cli: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the configuration once: ``overrides`` (from code), the command-line ``cli`` values
    (``--set NAME=VALUE``, by field name, read like environment values), the environment, and
    the TOML ``config_file`` (default: ``TALON_STREAM_CONFIG_FILE``).

    Raises:
        InvalidSettingsError: values that fail validation, each named where it was set.
        ConfigurationError: the config file cannot be read or names an unknown setting, or a
            ``--set`` names an unknown setting.
    """
    request = SettingsRequest(
        config_file=Path(config_file) if config_file else None, cli=dict(cli or {})
    )
    try:
        with requested(request):
            return Settings(**overrides)
    except ValidationError as exc:
        where = origins(Settings, request, overrides=overrides)
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            # A check of several settings together (a model validator) has no location.
            loc = [str(part) for part in error["loc"]] or ["configuration"]
            field, *inner = loc
            default = f"TALON_STREAM_{field.upper()}" if error["loc"] else field
            place = where.get(field, default)
            if field == "kafka_config" and inner:
                place = where.get(f"kafka_config.{inner[0]}", place) + f" ({inner[0]})"
            # A union of types fails once per member: the first message says what is expected.
            problems.setdefault(place, error["msg"].removeprefix("Value error, "))
        raise InvalidSettingsError(list(problems.items())) from exc
    except SettingsError as exc:
        raise InvalidSettingsError([_undecodable(exc)]) from exc


def _undecodable(exc: SettingsError) -> tuple[str, str]:
    """Where and what of a value pydantic-settings could not decode (the JSON of a dict field
    in a variable or a ``--set``); the message names the field and the source."""
    found = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
    if found is None:
        return "configuration", str(exc)
    field, source = found.groups()
    place = f"--set {field}" if source == "CliOverridesSource" else f"TALON_STREAM_{field.upper()}"
    # json's messages say where the syntax breaks and never quote the text.
    cause = exc.__cause__
    reason = f" ({cause})" if isinstance(cause, json.JSONDecodeError) else ""
    return place, f"not valid JSON{reason}"

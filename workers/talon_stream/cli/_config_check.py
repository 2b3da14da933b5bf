"""``talon-stream config check``: is this configuration ready to run a worker?

In order, each check one line of the :class:`Report`:

* **configuration** — the settings load (environment, config file, ``--set``); a value that
  fails validation is named where it was set, with what is expected;
* **kafka** — the effective client settings (bootstrap servers, ``KAFKA_*`` and
  ``TALON_STREAM_KAFKA_CONFIG``) fetch the cluster's metadata within the timeout;
* **topics** — the input, effects, DLQ and effect-route topics exist (a missing one comes with
  the command that creates it), and the input topics' partitions bound the useful workers;
* **co-partitioning** — with several input topics merged in event-time order, every one has
  as many partitions as the others (a topic that has not is named, with the fix);
* **talon.one network** — when a CA bundle, a client certificate or a proxy is set: the files
  load, and which proxy (if any) the Talon.One URL goes through;
* **talon.one** — the API key (or the key file) is accepted: ``GET /v2/customer_sessions/<random
  id>`` answers 404 (no such session, but the key was good); 401/403 means it is refused;
* **mapping file** — when one is set, it loads.

Nothing is created or changed: the Kafka check lists every topic (asking for one topic by name
would make a broker with ``auto.create.topics.enable`` create it) and the Talon.One call reads.
No secret is ever part of the report: values are never quoted, and every text is scrubbed of
the API key and the secret librdkafka properties before it is stored.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from talon_stream._exceptions import ConfigurationError, InvalidSettingsError
from talon_stream.config._settings import Settings, load_settings
from talon_stream.config._sources import (
    SettingsRequest,
    config_file_path,
    kafka_properties_from_env,
    origins,
)
from talon_stream.formats.mapping._mappings import load_mappings
from talon_stream.scheduling._merge import co_partitioned_groups
from talon_stream.talon._keys import api_key_source
from talon_stream.talon._proxy import Proxy, proxy_for
from talon_stream.talon._tls import client_ssl_context

__all__ = [
    "CheckOptions",
    "CheckResult",
    "ClusterView",
    "HttpAnswer",
    "KafkaFailure",
    "Report",
    "Unreachable",
    "fetch_cluster",
    "get_unknown_session",
    "run_check",
]

Status = Literal["pass", "fail", "warn", "skip"]
_SYMBOLS: dict[Status, str] = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}

#: librdkafka's own log lines would bury the report; the reasons come from its error callback.
LIBRDKAFKA_LOG = logging.getLogger("talon_stream.cli._config_check.librdkafka")
LIBRDKAFKA_LOG.propagate = False
LIBRDKAFKA_LOG.addHandler(logging.NullHandler())

#: Partitions suggested for a missing topic when no input topic exists to copy from.
DEFAULT_PARTITIONS = 6
#: Secrets shorter than this are not scrubbed from free text: replacing every "ab" would
#: garble the report, and no real password or key is that short.
_MIN_SCRUBBED = 4


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report: what was checked, the outcome, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Report:
    """Every check, in order, and the effective settings (secrets masked) when they loaded."""

    checks: tuple[CheckResult, ...]
    config_file: Path | None = None
    settings: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """No check failed (warnings and skipped checks do not fail the report)."""
        return all(check.status != "fail" for check in self.checks)

    @property
    def configuration_ok(self) -> bool:
        return self.settings is not None

    def lines(self) -> list[str]:
        """The readable report: one line per check, a ``fix:`` line under each failure."""
        width = max(len(check.name) for check in self.checks)
        lines = []
        for check in self.checks:
            first, *more = check.detail.split("\n")
            lines.append(f"{_SYMBOLS[check.status]} {check.name:<{width}}  {first}")
            lines.extend(f"  {' ' * width}    {line}" for line in more)
            if check.fix:
                lines.extend(f"  {' ' * width}  fix: {part}" for part in check.fix.split("\n"))
        failed = sum(check.status == "fail" for check in self.checks)
        lines.append(
            "all checks passed" if failed == 0 else f"{failed} of {len(self.checks)} checks failed"
        )
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable report (``--json``)."""
        return {
            "ok": self.ok,
            "config_file": None if self.config_file is None else str(self.config_file),
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}
                for c in self.checks
            ],
            "settings": self.settings,
        }


@dataclass(frozen=True)
class CheckOptions:
    """What ``config check`` was asked: the config file, the ``--set`` values (by field
    name), and the time each remote check may take."""

    config_file: Path | None = None
    cli: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0


# --- the Kafka adapter ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the cluster's metadata says: its id, its brokers, each topic's partitions."""

    cluster_id: str | None
    brokers: int
    partitions: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class KafkaFailure:
    """No metadata. ``kind``: ``config`` (librdkafka refuses a setting, ``prop``),
    ``auth`` (SASL), ``tls``, ``unreachable`` (DNS, connection, timeout)."""

    kind: Literal["config", "auth", "tls", "unreachable"]
    reason: str
    prop: str | None = None


KafkaProbe = Callable[[dict[str, Any], float], ClusterView | KafkaFailure]


def fetch_cluster(config: dict[str, Any], timeout_s: float) -> ClusterView | KafkaFailure:
    """The metadata of every topic, fetched with the librdkafka ``config`` within
    ``timeout_s``; a :class:`KafkaFailure` with librdkafka's own reason otherwise."""
    errors: list[KafkaError] = []
    try:
        client_config: dict[str, Any] = {
            **config,
            "error_cb": errors.append,
            "logger": LIBRDKAFKA_LOG,
        }
        admin = AdminClient(client_config)
    except KafkaException as exc:
        message = exc.args[0].str() if exc.args else str(exc)
        named = re.search(r'property:? "([^"]+)"', message)
        return KafkaFailure("config", message, named.group(1) if named else None)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        admin.poll(0.2)  # serves the error callbacks: they hold the reason
        return _failure(errors, timeout_s)
    return ClusterView(
        cluster_id=metadata.cluster_id,
        brokers=len(metadata.brokers),
        partitions={
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None and not name.startswith("__")
        },
    )


def _failure(errors: list[KafkaError], timeout_s: float) -> KafkaFailure:
    reasons = [error for error in errors if error.code() != KafkaError._ALL_BROKERS_DOWN]
    if not reasons:
        return KafkaFailure("unreachable", f"no metadata within {timeout_s:g} s")
    first = reasons[0]
    text = first.str()
    if first.code() == KafkaError._AUTHENTICATION:
        return KafkaFailure("auth", text)
    if first.code() == KafkaError._SSL or "SSL" in text:
        return KafkaFailure("tls", text)
    return KafkaFailure("unreachable", text)


# --- the Talon.One adapter ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: str
    elapsed_s: float
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Unreachable:
    reason: str


def get_unknown_session(
    base_url: str,
    api_key: str,
    timeout_s: float,
    *,
    transport: httpx.BaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
    proxy: Proxy | None = None,
) -> tuple[str, HttpAnswer | Unreachable]:
    """``GET /v2/customer_sessions/<random id>``: harmless, and authenticated; TLS verified with
    ``ssl_context`` (default: the system's CAs), through ``proxy`` when given. Returns the path
    asked and the answer, or why there was none."""
    path = f"/v2/customer_sessions/talon-stream-config-check-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"ApiKey-v1 {api_key}", "Accept": "application/json"}
    started = time.perf_counter()
    auth = (proxy.username, proxy.password or "") if proxy and proxy.username is not None else None
    try:
        with httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            verify=ssl_context if ssl_context is not None else True,
            proxy=httpx.Proxy(proxy.url, auth=auth) if proxy is not None else None,
            trust_env=False,  # the worker's own proxy and CA settings, as the worker uses them
        ) as client:
            response = client.get(path, headers=headers)
    except httpx.TimeoutException:
        return path, Unreachable(f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return path, Unreachable(str(exc) or type(exc).__name__)
    return path, HttpAnswer(
        status=response.status_code,
        body=response.text[:500],
        elapsed_s=time.perf_counter() - started,
        location=response.headers.get("Location"),
    )


# --- the checks -----------------------------------------------------------------------------------


def run_check(
    options: CheckOptions,
    *,
    kafka_probe: KafkaProbe = fetch_cluster,
    http_transport: httpx.BaseTransport | None = None,
) -> Report:
    """Run every check and return the report; raises nothing (a failure is a line)."""
    path = config_file_path(options.config_file)
    request = SettingsRequest(config_file=path, cli=dict(options.cli))
    try:
        settings = load_settings(config_file=path, cli=options.cli)
    except ConfigurationError as exc:
        return Report((_configuration_failed(exc),), config_file=path)
    where = origins(Settings, request)
    checks = [_configuration(request, where)]
    checks.extend(_kafka(settings, where, options.timeout_s, kafka_probe))
    network_check, network = _network(settings)
    if network_check is not None:
        checks.append(network_check)
    keys: list[str] = []
    checks.append(_talon(settings, where, options.timeout_s, http_transport, network, keys))
    for name, application in settings.applications.items():
        source = where.get("applications", "TALON_STREAM_APPLICATIONS")
        url, _ = settings.application_endpoint(name)
        key, key_source = _key(settings, name, f"{source} ({name}.", keys)
        checks.append(
            _talon_key(
                f"talon.one {name}",
                url,
                key,
                key_source,
                f"{source} ({name}.base_url)"
                if application.base_url
                else where.get("talon_base_url", "TALON_STREAM_TALON_BASE_URL"),
                options.timeout_s,
                http_transport,
                network,
            )
        )
    checks.append(_mapping(settings))
    scrub = _scrubber(settings, keys)
    checks = [
        CheckResult(c.name, c.status, scrub(c.detail), None if c.fix is None else scrub(c.fix))
        for c in checks
    ]
    return Report(tuple(checks), config_file=path, settings=settings.model_dump(mode="json"))


def _configuration_failed(exc: ConfigurationError) -> CheckResult:
    if isinstance(exc, InvalidSettingsError):
        noun = "setting" if len(exc.problems) == 1 else "settings"
        lines = [f"{len(exc.problems)} invalid {noun} (nothing else was checked):"]
        lines += [f"{where}: {what}" for where, what in exc.problems]
        return CheckResult("configuration", "fail", "\n".join(lines))
    return CheckResult("configuration", "fail", f"{exc}; nothing else was checked")


def _configuration(request: SettingsRequest, where: Mapping[str, str]) -> CheckResult:
    variables = {v for k, v in where.items() if "." not in k and v.isupper()}
    parts = []
    if request.config_file is not None:
        parts.append(f"config file {request.config_file}")
    if variables:
        parts.append(_count(len(variables), "environment variable"))
    passed_through = kafka_properties_from_env(os.environ)
    if passed_through:
        parts.append(_count(len(passed_through), "KAFKA_* librdkafka setting"))
    if request.cli:
        parts.append(_count(len(request.cli), "command-line override"))
    return CheckResult("configuration", "pass", f"valid ({'; '.join(parts) or 'defaults only'})")


def _kafka(
    settings: Settings, where: Mapping[str, str], timeout_s: float, probe: KafkaProbe
) -> list[CheckResult]:
    servers = settings.bootstrap_servers
    started = time.perf_counter()
    view = probe(settings.kafka_client_config(), timeout_s)
    if isinstance(view, KafkaFailure):
        return [
            CheckResult("kafka", "fail", f"{servers}: {view.reason}", _kafka_fix(view, where)),
            CheckResult("topics", "skip", "not checked: no metadata from Kafka"),
        ]
    elapsed = time.perf_counter() - started
    brokers = _count(view.brokers, "broker")
    checks = [
        CheckResult(
            "kafka",
            "pass",
            f"{servers}: cluster {view.cluster_id or '?'}, {brokers}, "
            f"{_count(len(view.partitions), 'topic')} ({elapsed:.2f} s)",
        )
    ]
    roles: dict[str, list[str]] = {}
    for topic in settings.input_topics:
        roles.setdefault(topic, []).append("input")
    roles.setdefault(settings.effects_topic, []).append("effects")
    roles.setdefault(settings.dlq_topic, []).append("DLQ")
    roles.setdefault(settings.erasures_topic, []).append("erasures")
    for topic in settings.effect_routes:
        roles.setdefault(topic, []).append("effect route")
    inputs = {t: view.partitions[t] for t in settings.input_topics if t in view.partitions}
    suggested = max(inputs.values(), default=DEFAULT_PARTITIONS)
    secured = str(settings.kafka_config.get("security.protocol", "")).upper() not in (
        "",
        "PLAINTEXT",
    )
    for topic, kinds in roles.items():
        name = f"topic {topic}"
        role = "/".join(kinds)
        if topic in view.partitions:
            count = _count(view.partitions[topic], "partition")
            checks.append(CheckResult(name, "pass", f"{role}: {count}"))
            continue
        command = (
            f"kafka-topics.sh --bootstrap-server {servers} --create --topic {topic} "
            f"--partitions {suggested}"
        )
        if kinds == ["erasures"]:
            command += " --config cleanup.policy=compact"
        if secured:
            command += " --command-config <client.properties with your SASL/TLS settings>"
        checks.append(CheckResult(name, "fail", f"{role}: does not exist", f"create it: {command}"))
    checks.append(_workers(settings, inputs))
    co_partitioning = _co_partitioning(settings, inputs)
    if co_partitioning is not None:
        checks.append(co_partitioning)
    return checks


def _kafka_fix(failure: KafkaFailure, where: Mapping[str, str]) -> str:
    servers = where.get("bootstrap_servers", "TALON_STREAM_BOOTSTRAP_SERVERS")
    if failure.kind == "config":
        if failure.prop is None:
            return "check the librdkafka settings (KAFKA_* and TALON_STREAM_KAFKA_CONFIG)"
        source = where.get(f"kafka_config.{failure.prop}", "the librdkafka settings")
        return (
            f"correct or remove {source} ({failure.prop}); librdkafka's CONFIGURATION.md lists "
            "its properties and values"
        )
    if failure.kind == "auth":
        names = [where.get(f"kafka_config.{p}", p) for p in ("sasl.username", "sasl.password")]
        mechanism = where.get("kafka_config.sasl.mechanism", "KAFKA_SASL_MECHANISM")
        return (
            f"the cluster refused the credentials: check {' and '.join(names)} "
            f"and the mechanism ({mechanism})"
        )
    if failure.kind == "tls":
        return (
            "the TLS handshake failed: check KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_CA_LOCATION "
            "(the CA that signed the brokers' certificates)"
        )
    return (
        f"check {servers} (host:port of reachable brokers), the network, and "
        "KAFKA_SECURITY_PROTOCOL (SASL_SSL for most managed clusters)"
    )


def _workers(settings: Settings, inputs: Mapping[str, int]) -> CheckResult:
    if not inputs:
        return CheckResult("workers", "skip", "no input topic exists yet")
    listing = ", ".join(f"{topic} {count}" for topic, count in inputs.items())
    # The range assignor spreads each topic's partitions separately, over the same first
    # members: beyond the largest topic's count a worker gets nothing. The other assignors
    # spread all partitions together.
    ranged = settings.assignment_strategy == "range"
    useful = max(inputs.values()) if ranged else sum(inputs.values())
    return CheckResult(
        "workers",
        "pass",
        f"input partitions: {listing}; up to {_count(useful, 'worker')} of group "
        f"{settings.group_id} get partitions",
    )


def _co_partitioning(settings: Settings, inputs: Mapping[str, int]) -> CheckResult | None:
    """Several input topics are merged in event-time order partition by partition: each must
    have as many partitions as the others (and keys partitioned alike)."""
    if len(settings.input_topics) < 2:
        return None
    name = "co-partitioning"
    if not settings.merges_topics:
        return CheckResult(
            name, "skip", "each input topic is read on its own (TALON_STREAM_MAX_IDLE_MS=-1)"
        )
    existing = [topic for topic in settings.input_topics if topic in inputs]
    if len(existing) < 2:
        return CheckResult(name, "skip", "fewer than two input topics exist yet")
    groups = co_partitioned_groups({topic: inputs[topic] for topic in existing})
    largest = max(groups, key=len)
    count = inputs[largest[0]]
    if len(largest) == len(existing):
        return CheckResult(
            name,
            "pass",
            f"{', '.join(largest)}: {count} partitions each, merged in event-time order "
            f"(max idle {settings.max_idle_ms} ms)",
        )
    others = [topic for topic in existing if topic not in largest]
    listing = ", ".join(f"{topic} has {_count(inputs[topic], 'partition')}" for topic in others)
    each = " each" if len(largest) > 1 else ""
    return CheckResult(
        name,
        "fail",
        f"{listing}, {' and '.join(largest)} {'have' if each else 'has'} {count}{each}: a "
        f"customer's records in {' and '.join(others)} are not merged by time with those in "
        f"{' and '.join(largest)}",
        f"give {' and '.join(others)} {count} partitions: create a new topic with "
        f"--partitions {count} and move its producers to it (adding partitions to a topic "
        "moves keys to other partitions); or set TALON_STREAM_MAX_IDLE_MS=-1 to read each "
        "topic on its own, in offset order only",
    )


@dataclass(frozen=True, slots=True)
class _Network:
    """What the Talon.One transport would use; ``usable`` is false when a setting is broken
    (then the key checks are skipped: the network line says what to fix)."""

    usable: bool
    ssl_context: ssl.SSLContext | None = None
    proxies: Mapping[str, str | None] = field(default_factory=dict)


def _network(settings: Settings) -> tuple[CheckResult | None, _Network]:
    """The network line (``None`` when no network setting is set) and what it found."""
    name = "talon.one network"
    proxies = settings.proxies()
    tls = (settings.talon_ca_file, settings.talon_client_cert_file, settings.talon_client_key_file)
    if not any(tls) and not proxies["https_proxy"] and not proxies["http_proxy"]:
        return None, _Network(True)
    try:
        context = client_ssl_context(
            ca_file=settings.talon_ca_file,
            cert_file=settings.talon_client_cert_file,
            key_file=settings.talon_client_key_file,
        )
    except ConfigurationError as exc:
        return CheckResult(name, "fail", str(exc), "see docs/network.md"), _Network(False)
    try:
        proxy = proxy_for(settings.talon_base_url, **proxies)
    except ValueError as exc:
        return CheckResult(name, "fail", f"proxy: {exc}", "see docs/network.md"), _Network(False)
    parts = [
        f"CA bundle {settings.talon_ca_file}" if settings.talon_ca_file else "the system's CAs",
    ]
    if settings.talon_client_cert_file is not None:
        parts.append(f"client certificate {settings.talon_client_cert_file}")
    parts.append(f"through proxy {proxy.address}" if proxy is not None else "no proxy")
    return CheckResult(name, "pass", "; ".join(parts)), _Network(True, context, proxies)


def _key(settings: Settings, name: str, prefix: str, keys: list[str]) -> tuple[str, str]:
    """Application ``name``'s key (read from its file when it is one; empty when it cannot
    be) and where it comes from; a key read is added to ``keys`` (to be scrubbed)."""
    value, file, key_setting, file_setting = settings.application_key(name)
    if file is None:
        return (value.get_secret_value() if value is not None else ""), key_setting
    try:
        key = api_key_source(None, file, key_setting=key_setting, file_setting=file_setting).value
    except ConfigurationError:
        return "", f"{file_setting} ({file}, which cannot be read or is empty)"
    keys.append(key)
    return key, f"{file_setting} ({file})"


def _talon(
    settings: Settings,
    where: Mapping[str, str],
    timeout_s: float,
    transport: httpx.BaseTransport | None,
    network: _Network,
    keys: list[str],
) -> CheckResult:
    key, key_source = _key(settings, "default", "", keys)
    if settings.talon_api_key_file is None:
        key_source = where.get("talon_api_key", key_source)
    return _talon_key(
        "talon.one",
        settings.talon_base_url,
        key,
        key_source,
        where.get("talon_base_url", "TALON_STREAM_TALON_BASE_URL"),
        timeout_s,
        transport,
        network,
    )


def _talon_key(
    check: str,
    url: str,
    api_key: str,
    key_source: str,
    url_source: str,
    timeout_s: float,
    transport: httpx.BaseTransport | None,
    network: _Network,
) -> CheckResult:
    """Whether the Application at ``url`` accepts ``api_key`` (check named ``check``)."""
    get_key = (
        f"{key_source}: give an Integration API key of the Application "
        "(Campaign Manager: Settings, Integration API Keys)"
    )
    if not api_key:
        return CheckResult(check, "fail", "no API key", get_key)
    if not network.usable:
        return CheckResult(check, "skip", "not checked: see talon.one network")
    path, answer = get_unknown_session(
        url,
        api_key,
        timeout_s,
        transport=transport,
        ssl_context=network.ssl_context,
        proxy=proxy_for(url, **network.proxies),
    )
    if isinstance(answer, Unreachable):
        return CheckResult(
            check,
            "fail",
            f"{url} cannot be reached: {answer.reason}",
            f"check {url_source} (e.g. https://mycompany.europe-west1.talon.one) and that this "
            "host can reach it (DNS, firewall, proxy)",
        )
    asked = f"GET {path} → {answer.status} in {answer.elapsed_s * 1000:.0f} ms"
    message = _talon_message(answer.body)
    if answer.status in (401, 403):
        return CheckResult(
            check,
            "fail",
            f"{url} refused the API key from {key_source} ({asked}: {message or 'no reason'})",
            f"{get_key}; a key of another deployment is refused too: check {url_source}",
        )
    if 200 <= answer.status < 300 or (answer.status == 404 and message is not None):
        return CheckResult(check, "pass", f"{url} accepted the API key ({asked})")
    if 300 <= answer.status < 400:
        return CheckResult(
            check,
            "fail",
            f"{url} redirects to {answer.location or '?'} ({asked})",
            f"set {url_source} to the deployment's own URL (https://, no path)",
        )
    if answer.status == 404:
        return CheckResult(
            check,
            "fail",
            f"{url} answered 404 without a Talon.One error body ({asked}): not the Integration API",
            f"check {url_source}: the deployment's URL, without a path",
        )
    return CheckResult(
        check,
        "fail",
        f"{url} answered HTTP {answer.status} ({asked}: {message or 'no reason'})",
        "Talon.One is failing or throttling this key; try again, and check its status page",
    )


def _talon_message(body: str) -> str | None:
    """The ``message`` of a Talon.One error body (``None``: not such a body)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])[:200]
    return None


def _mapping(settings: Settings) -> CheckResult:
    if settings.mapping_file is None:
        return CheckResult("mapping file", "skip", "not set: every input topic carries events")
    try:
        mappings = load_mappings(settings.mapping_file)
    except ConfigurationError as exc:
        return CheckResult("mapping file", "fail", str(exc), "see docs/mapping.md")
    topics = ", ".join(sorted(mappings.topics))
    unread = sorted(mappings.topics - set(settings.input_topics))
    if unread:
        return CheckResult(
            "mapping file",
            "warn",
            f"{settings.mapping_file} maps {topics}; {', '.join(unread)} is not an input topic",
            "add it to input_topics or remove its mapping",
        )
    return CheckResult("mapping file", "pass", f"{settings.mapping_file} maps {topics}")


def _scrubber(settings: Settings, keys: list[str]) -> Callable[[str], str]:
    """Removes every secret of ``settings`` (any ``SecretStr`` field, the secret librdkafka
    values) and the ``keys`` read from files from a text."""
    values = [getattr(settings, name) for name in type(settings).model_fields]
    values += list(settings.kafka_config.values())
    secrets = {v.get_secret_value() for v in values if isinstance(v, SecretStr)} | set(keys)
    ordered = sorted((s for s in secrets if len(s) >= _MIN_SCRUBBED), key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return scrub


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")

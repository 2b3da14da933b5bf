"""The ``talon-stream`` command: ``run`` (the worker), ``notifications`` (the receiver of
Talon.One's notification webhooks), ``config check``, ``demo``, ``produce``, ``emulator``,
``broker``, ``dlq replay`` and ``what-if``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from talon_stream._exceptions import (
    BrokerError,
    ConfigurationError,
    TalonStreamError,
)
from talon_stream._version import __version__
from talon_stream.config._settings import DEFAULT_INPUT_TOPICS, Settings, load_settings
from talon_stream.core._routing import DEFAULT_EFFECT_ROUTES
from talon_stream.ops._logs import setup_logging
from talon_stream.whatif._model import DEFAULT_MAX_IN_FLIGHT, DEFAULT_RATE

__all__ = ["main"]

log = logging.getLogger("talon_stream")

EXIT_CONFIG = 2
EXIT_BROKER = 4


def _tune_gc() -> None:
    """The worker allocates many short-lived objects per event (requests, responses, futures);
    with CPython's default gen-0 threshold of 700 the cyclic collector runs every few events.
    Freeze what start-up created (modules, settings: never garbage) and collect less often —
    reference counting still frees almost everything at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed (Linux, macOS): its loop and transports cut
    the worker's CPU per call markedly (docs/benchmarks.md); asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _setup_logging(level: str) -> None:
    """Text logs, or JSON lines with ``TALON_STREAM_LOG_FORMAT=json`` (talon_stream.ops._logs)."""
    log_format = os.environ.get("TALON_STREAM_LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise _exit(EXIT_CONFIG, f"TALON_STREAM_LOG_FORMAT={log_format!r}: expected text or json")
    setup_logging(level, "json" if log_format == "json" else "text")


@click.group()
@click.version_option(__version__, prog_name="talon-stream")
def main() -> None:
    """Kafka shop events → Talon.One Integration API → effects topics."""


def _assignments(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """``--set NAME=VALUE`` values by field name (``group-id``, ``GROUP_ID`` and
    ``TALON_STREAM_GROUP_ID`` name ``group_id``); load_settings validates names and values."""
    from talon_stream.config._sources import normalize_cli_name

    assigned: dict[str, str] = {}
    for text in values:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{text!r} is not NAME=VALUE (e.g. max_in_flight=64)")
        assigned[normalize_cli_name(name)] = value
    return assigned


@dataclass(frozen=True, slots=True)
class _Overrides:
    """What the command line says of the configuration: the config file and the settings."""

    config_file: Path | None
    cli: dict[str, str]


_EXPLICIT = ("bootstrap_servers", "group_id", "input_topics", "talon_base_url")


def _settings_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options that override the configuration, shared by ``run`` and ``config check``,
    which receive them as one :class:`_Overrides` argument, ``overrides``."""

    @functools.wraps(command)
    def with_overrides(
        config_file: Path | None, assignments: dict[str, str], **others: Any
    ) -> None:
        explicit = {name: others.pop(name) for name in _EXPLICIT}
        command(_Overrides(config_file, _command_line(assignments, **explicit)), **others)

    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="A TOML config file (keys: the setting names); default: TALON_STREAM_CONFIG_FILE.",
        ),
        click.option(
            "--set",
            "assignments",
            multiple=True,
            metavar="NAME=VALUE",
            callback=_assignments,
            help="Set any setting, read like its TALON_STREAM_ variable (repeatable); wins over "
            "the environment and the config file.",
        ),
        click.option("--bootstrap-servers", help="Overrides TALON_STREAM_BOOTSTRAP_SERVERS."),
        click.option("--group-id", help="Overrides TALON_STREAM_GROUP_ID."),
        click.option(
            "--input-topics", help="Comma-separated; overrides TALON_STREAM_INPUT_TOPICS."
        ),
        click.option("--talon-base-url", help="Overrides TALON_STREAM_TALON_BASE_URL."),
    ]
    wrapped: Callable[..., None] = with_overrides
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _command_line(assignments: dict[str, str], **options: str | None) -> dict[str, str]:
    """The ``--set`` values and the explicit options, which must not disagree."""
    values = dict(assignments)
    for name, value in options.items():
        if value is None:
            continue
        if name in values and values[name] != value:
            flag = "--" + name.replace("_", "-")
            raise click.BadParameter(f"--set {name}={values[name]} contradicts {flag} {value}")
        values[name] = value
    return values


@main.command()
@_settings_options
@click.option("--log-level", default="info", show_default=True)
def run(overrides: _Overrides, log_level: str) -> None:
    """Run one worker of the consumer group until SIGTERM/SIGINT.

    Configuration comes from TALON_STREAM_* and KAFKA_* environment variables and the config
    file (see the README); the options override them.
    """
    _serve(overrides, log_level, _worker, "")


@main.command()
@_settings_options
@click.option("--log-level", default="info", show_default=True)
def notifications(overrides: _Overrides, log_level: str) -> None:
    """Receive Talon.One's outbound notifications (webhooks) and publish each to Kafka, until
    SIGTERM/SIGINT. Settings: TALON_STREAM_NOTIFICATIONS_* (docs/notifications.md)."""
    _serve(overrides, log_level, _receiver, " notification receiver")


def _worker(settings: Settings) -> _Service:
    from talon_stream.processing._worker import Worker  # imported once the signals are caught

    return Worker(settings)


def _receiver(settings: Settings) -> _Service:
    from talon_stream.notifications import ReceiverServer

    return ReceiverServer(settings)


class _Service(Protocol):
    def stop(self) -> None: ...

    async def run(self) -> None: ...


def _serve(
    overrides: _Overrides, log_level: str, build: Callable[[Settings], _Service], what: str
) -> None:
    """Run the service ``build`` makes of the settings until SIGTERM/SIGINT; a stop asked for
    while it is being set up is kept, and honoured once it runs."""
    stop_asked = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_asked.set())
    _setup_logging(log_level)
    log.info("talon-stream %s%s starting (pid %d)", __version__, what, os.getpid())
    try:
        settings = load_settings(config_file=overrides.config_file, cli=overrides.cli)
        service = build(settings)
    except ConfigurationError as exc:
        raise _exit(EXIT_CONFIG, str(exc)) from exc

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, service.stop)
        if stop_asked.is_set():
            service.stop()
        await service.run()

    _tune_gc()
    try:
        run_event_loop(serve())
    except BrokerError as exc:
        raise _exit(EXIT_BROKER, f"Kafka: {exc}") from exc
    except TalonStreamError as exc:
        raise _exit(1, str(exc)) from exc
    except OSError as exc:  # a port of its own is taken
        raise _exit(EXIT_CONFIG, f"cannot listen: {exc}") from exc
    log.info("stopped cleanly")


#: A click command function, as option decorators take and return it.
FC = TypeVar("FC", bound=Callable[..., Any])


def _timeout_option(help_text: str) -> Callable[[FC], FC]:
    """``--timeout``, in seconds, as every command that waits for a server takes it."""
    return click.option(
        "--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help=help_text
    )


@main.group()
def config() -> None:
    """Check the configuration."""


@config.command()
@_settings_options
@_timeout_option("Seconds each of Kafka and Talon.One may take to answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def check(overrides: _Overrides, timeout: float, as_json: bool) -> None:
    """Validate the configuration, connect to Kafka and Talon.One, and say what to fix.

    Checks that the settings load, that Kafka answers with the effective client settings and
    has every topic the worker needs, and that Talon.One accepts the API key (a harmless
    authenticated GET). Exit 0 when every check passes, 1 when one fails, 2 when the
    configuration itself is invalid. The API key is never printed.
    """
    import orjson

    from talon_stream.cli._config_check import CheckOptions, run_check

    options = CheckOptions(config_file=overrides.config_file, cli=overrides.cli, timeout_s=timeout)
    report = run_check(options)
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        colours = {"✓": "green", "✗": "red", "!": "yellow"}
        for line in report.lines():
            colour = colours.get(line[:1])
            click.echo(click.style(line[:1], fg=colour) + line[1:] if colour else line)
    if not report.configuration_ok:
        sys.exit(EXIT_CONFIG)
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=None,
    help="Exit 0 once this many events have an outcome (default: run until Ctrl-C).",
)
@click.option("--rate", type=click.FloatRange(min=1), default=150.0, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--emulator-latency-ms", type=click.FloatRange(min=0), default=0.0)
@click.option(
    "--health-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="The worker's /healthz, /readyz and /metrics on 127.0.0.1 (0: a free port, shown).",
)
@click.option("--log-level", default="warning", show_default=True)
def demo(
    events: int | None,
    rate: float,
    seed: int,
    emulator_latency_ms: float,
    health_port: int,
    log_level: str,
) -> None:
    """Start a broker, the Talon.One emulator and one worker, and feed them a shop stream."""
    _require_demo("demo")
    from talon_stream.demo._demo import DemoOptions, run_demo

    _setup_logging(log_level)
    options = DemoOptions(
        events=events,
        rate=rate,
        seed=seed,
        emulator_latency_ms=emulator_latency_ms,
        health_port=health_port,
    )
    try:
        code = run_demo(options)
    except TalonStreamError as exc:
        raise _exit(1, str(exc)) from exc
    sys.exit(code)


def _require_demo(command: str) -> None:
    """Stop with a message when the demo package is not installed (the production image is
    built without it)."""
    if importlib.util.find_spec("talon_stream.demo") is None:
        raise _exit(
            EXIT_CONFIG,
            f"`talon-stream {command}` is part of the demo, which this installation leaves out "
            "(the production image): use the demo image (docker build --build-arg "
            "WITH_DEMO=1) or `pip install 'talon-stream[demo]'` from the source tree",
        )


@main.command()
@click.option(
    "--bootstrap-servers",
    envvar=["TALON_STREAM_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
    default="127.0.0.1:9092",
    show_default=True,
)
@click.option("--rate", type=click.FloatRange(min=1), default=150.0, show_default=True)
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many events (default: until Ctrl-C or SIGTERM).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--log-level", default="info", show_default=True)
def produce(
    bootstrap_servers: str, rate: float, events: int | None, seed: int, log_level: str
) -> None:
    """Feed a generated shop stream (carts, orders, customers, events) into an existing Kafka's
    input topics — the producer half of the demo, without its broker, emulator or worker."""
    _require_demo("produce")
    from talon_stream.demo._demo import run_producer

    _setup_logging(log_level)
    produced = run_producer(bootstrap_servers, rate=rate, events=events, seed=seed)
    log.info("%d events produced", produced)


def _emulator_cap(what: str, also_forgotten: str) -> Callable[[FC], FC]:
    # The caps' defaults are the emulator's (talon_one_emulator), which this module imports only
    # when the command runs: None means "not given".
    return click.option(
        f"--max-{what}",
        type=click.IntRange(min=1),
        default=None,
        help=f"Customer {what} kept at most (default 200000); beyond, the oldest-created one is "
        f"forgotten{also_forgotten}.",
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8900, show_default=True)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    required=True,
    help="An accepted Integration API key (repeatable).",
)
@click.option(
    "--campaigns",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Campaign file (YAML); default: the built-in demo campaigns.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Fixed latency of every Talon.One call (shorthand for --latency MS).",
)
@click.option(
    "--latency",
    "latency_spec",
    default=None,
    metavar="SPEC",
    help="Latency in ms: MS, fixed:MS, uniform:MIN:MAX, normal:MEAN:STDDEV or "
    "lognormal:MEDIAN:SIGMA.",
)
@click.option("--seed", type=int, default=None, help="Seed of the latency and error draws.")
@click.option(
    "--error-rate",
    "error_rates",
    multiple=True,
    metavar="STATUS=RATE",
    help="Answer STATUS (429, 500, 502, 503) to this share of calls, e.g. 503=0.01 (repeatable).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(min=0),
    default=None,
    help="Retry-After seconds on injected 429s (default: no header).",
)
@click.option(
    "--error-phase",
    type=click.Choice(["before", "after"]),
    default="before",
    show_default=True,
    help="Inject errors instead of processing (before) or after processing the call.",
)
@click.option(
    "--outage",
    "outages",
    multiple=True,
    metavar="START:SECONDS",
    help="Answer 503 to every Talon.One call from START seconds after start-up for SECONDS "
    "(START: alone = until switched off through the admin API; repeatable).",
)
@_emulator_cap("sessions", "")
@_emulator_cap("profiles", " with its loyalty ledgers, coupon usage and memberships")
@click.option(
    "--notification-webhook",
    "notification_webhooks",
    multiple=True,
    metavar="URL|JSON",
    help='Send outbound notifications here: a URL, or {"url": ..., "headers": {...}, '
    '"kinds": ["strikethrough", "loyalty", "coupons"]} (repeatable; docs/notifications.md).',
)
@click.option("--log-level", default="info", show_default=True)
def emulator(
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    campaigns: Path | None,
    latency_ms: float,
    latency_spec: str | None,
    seed: int | None,
    error_rates: tuple[str, ...],
    retry_after: int | None,
    error_phase: str,
    outages: tuple[str, ...],
    max_sessions: int | None,
    max_profiles: int | None,
    notification_webhooks: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve the Talon.One Integration API emulator until SIGTERM/SIGINT.

    Faults (latency, errors, outages) can also be changed at run time through the admin API
    under /__emulator (see docs/emulator.md).
    """
    from talon_one_emulator import (
        DEFAULT_MAX_PROFILES,
        DEFAULT_MAX_SESSIONS,
        EmulatorError,
        FaultSettings,
        NotificationSettings,
        parse_error_rate,
        parse_latency,
        parse_outage,
        parse_webhook,
        run_forever,
    )

    _setup_logging(log_level)
    fields: dict[str, object] = {"seed": seed, "error_phase": error_phase}
    try:
        if latency_spec is not None:
            if latency_ms:
                raise click.BadParameter("give --latency or --latency-ms, not both")
            fields["latency"] = parse_latency(latency_spec)
        fields["error_rates"] = dict(parse_error_rate(text) for text in error_rates)
        fields["outages"] = tuple(parse_outage(text) for text in outages)
        fields["retry_after_s"] = retry_after
        faults = FaultSettings.model_validate(fields)
        webhooks = tuple(parse_webhook(text) for text in notification_webhooks)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        run_forever(
            host,
            port,
            api_keys,
            campaigns_path=campaigns,
            latency_ms=latency_ms,
            faults=faults,
            max_sessions=DEFAULT_MAX_SESSIONS if max_sessions is None else max_sessions,
            max_profiles=DEFAULT_MAX_PROFILES if max_profiles is None else max_profiles,
            notifications=NotificationSettings(webhooks=webhooks),
        )
    except EmulatorError as exc:
        raise _exit(EXIT_CONFIG, str(exc)) from exc


@main.command()
@click.option(
    "--topics",
    # Every topic a worker with the default settings needs (``config check`` lists them).
    default=",".join(
        [*DEFAULT_INPUT_TOPICS, "talon.effects", "talon-stream.dlq", *DEFAULT_EFFECT_ROUTES]
    ),
    show_default=True,
    help="Comma-separated topics to create.",
)
@click.option("--partitions", type=click.IntRange(min=1), default=6, show_default=True)
@click.option(
    "--kind",
    type=click.Choice(["auto", "kafka", "embedded"]),
    envvar="TALON_STREAM_BROKER",
    default="auto",
    show_default=True,
    help="Apache Kafka (Java 17+ and Maven, or its cached jars), Tansu (embedded), or "
    "Apache Kafka when it can run and Tansu otherwise. Env: TALON_STREAM_BROKER.",
)
def broker(topics: str, partitions: int, kind: str) -> None:
    """Start a local Kafka broker (Apache Kafka or the embedded Tansu), create topics, print
    the address; Ctrl-C stops."""
    _require_demo("broker")
    from talon_stream.demo._broker import EmbeddedBroker, choose_local_broker
    from talon_stream.demo._kafka import KafkaBroker

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        local = KafkaBroker() if choose_local_broker(kind) == "kafka" else EmbeddedBroker()
        click.echo(f"broker: {local.description}", err=True)
        with local:
            names = [name.strip() for name in topics.split(",") if name.strip()]
            local.create_topics(dict.fromkeys(names, partitions))
            click.echo(f"KAFKA_BOOTSTRAP_SERVERS={local.bootstrap_servers}", err=False)
            click.echo(f"topics: {', '.join(names)} ({partitions} partitions each)", err=True)
            stop.wait()
    except BrokerError as exc:
        raise _exit(EXIT_BROKER, str(exc)) from exc


@main.group()
def dlq() -> None:
    """Work with the dead-letter topic."""


def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from talon_stream.dlq import parse_time

    try:
        return None if value is None else parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time: {exc}") from exc


@dlq.command()
@click.option("--bootstrap-servers", help="Overrides TALON_STREAM_BOOTSTRAP_SERVERS.")
@click.option("--dlq-topic", help="Overrides TALON_STREAM_DLQ_TOPIC.")
@click.option("--since", callback=_iso_time, metavar="TIME", help="ISO 8601; UTC if no offset.")
@click.option("--until", callback=_iso_time, metavar="TIME", help="ISO 8601, exclusive.")
@click.option("--error-class", "error_classes", multiple=True, help="e.g. TalonPermanentError.")
@click.option("--key", "keys", multiple=True, help="Only records with this key (repeatable).")
@click.option("--topic", "topics", multiple=True, help="Only records from this source topic.")
@click.option("--to", "to_topic", metavar="TOPIC", help="Publish here, not to the source topic.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; produce nothing.")
@_timeout_option("Seconds the broker may take to answer.")
@click.option("--log-level", default="warning", show_default=True)
def replay(
    bootstrap_servers: str | None,
    dlq_topic: str | None,
    since: Any,
    until: Any,
    error_classes: tuple[str, ...],
    keys: tuple[str, ...],
    topics: tuple[str, ...],
    to_topic: str | None,
    dry_run: bool,
    timeout: float,
    log_level: str,
) -> None:
    """Publish DLQ records again to their source topic, in order per key.

    Reads the DLQ from the start (or --since) up to its end when the command starts; the time
    filters compare with the talon-stream.last.attempt.at header. See docs/reliability.md.
    """
    from talon_stream.dlq import (
        LIBRDKAFKA_LOG,
        ConsoleObserver,
        ReplayFilter,
        ReplayOptions,
        replay_dlq,
    )

    _setup_logging(log_level)
    # One line per failed connection attempt would bury the error that says what is wrong.
    LIBRDKAFKA_LOG.setLevel(logging.DEBUG if log_level.lower() == "debug" else logging.CRITICAL)
    overrides = {"bootstrap_servers": bootstrap_servers, "dlq_topic": dlq_topic}
    try:
        settings = load_settings(cli={k: v for k, v in overrides.items() if v is not None})
        selection = ReplayFilter(
            since=since,
            until=until,
            error_classes=frozenset(error_classes),
            keys=frozenset(key.encode() for key in keys),
            source_topics=frozenset(topics),
        )
    except ConfigurationError as exc:
        raise _exit(EXIT_CONFIG, str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    options = ReplayOptions(
        settings.dlq_topic, selection, to_topic=to_topic, dry_run=dry_run, timeout_s=timeout
    )

    async def replay_and_report() -> None:
        with ConsoleObserver(list_selected=dry_run) as observer:
            summary = await replay_dlq(settings, options, observer=observer)
        click.echo("\n".join(summary.lines()))

    try:
        run_event_loop(replay_and_report())
    except BrokerError as exc:
        raise _exit(EXIT_BROKER, f"Kafka: {exc}") from exc
    except ConfigurationError as exc:  # an Avro DLQ topic without a Schema Registry URL
        raise _exit(EXIT_CONFIG, str(exc)) from exc
    except TalonStreamError as exc:  # the Schema Registry of an Avro DLQ topic
        raise _exit(1, str(exc)) from exc


@main.command("what-if")
@_settings_options
@click.option(
    "--since", required=True, callback=_iso_time, metavar="TIME", help="ISO 8601; UTC if no offset."
)
@click.option(
    "--until", required=True, callback=_iso_time, metavar="TIME", help="ISO 8601, exclusive."
)
@click.option(
    "--campaigns", required=True, metavar="IDS", help="Campaign ids to evaluate, e.g. 12,15."
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_RATE,
    show_default=True,
    help="Dry calls per second at most: leave the live traffic its share of Talon.One's rate "
    "limit.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_IN_FLIGHT,
    show_default=True,
    help="Customers whose calls run at once (each customer's one at a time, in order).",
)
@click.option(
    "--lookback",
    default="0",
    show_default=True,
    metavar="DURATION",
    help="Also read this long before --since (e.g. 2h) to rebuild the sessions begun before "
    "it; those records are not evaluated.",
)
@click.option(
    "--report-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-campaign totals (live and candidate) to this CSV file.",
)
@click.option(
    "--events-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one CSV row per evaluated event to this file.",
)
@click.option(
    "--diff-topic",
    metavar="TOPIC",
    help="Publish one JSON diff record per evaluated event to this (existing) topic.",
)
@click.option(
    "--application",
    default="default",
    show_default=True,
    help="With several Talon.One Applications: the one to evaluate (its records, its key).",
)
@_timeout_option("Seconds the broker may take to answer.")
@click.option("--log-level", default="warning", show_default=True)
def what_if(
    overrides: _Overrides,
    since: Any,
    until: Any,
    campaigns: str,
    rate: float,
    max_in_flight: int,
    lookback: str,
    report_csv: Path | None,
    events_csv: Path | None,
    diff_topic: str | None,
    application: str,
    timeout: float,
    log_level: str,
) -> None:
    """Evaluate campaigns over a past window of the input topics with dry calls, and compare
    with what happened live.

    Re-reads the input topics' records of [--since, --until) without joining the workers'
    group, sends every session update, profile update and custom event again to Talon.One with
    dry=true and only --campaigns evaluable, and compares those campaigns' effects with the
    effects topic's. Nothing in Talon.One changes. See docs/what-if.md.
    """
    from rich.console import Console

    from talon_stream.whatif import (
        LIBRDKAFKA_LOG,
        ConsoleObserver,
        WhatIfOptions,
        parse_campaigns,
        parse_duration,
        run_what_if,
    )

    _setup_logging(log_level)
    LIBRDKAFKA_LOG.setLevel(logging.DEBUG if log_level.lower() == "debug" else logging.CRITICAL)
    try:
        options = WhatIfOptions(
            since=since,
            until=until,
            campaigns=parse_campaigns(campaigns),
            rate_per_s=rate,
            max_in_flight=max_in_flight,
            lookback=parse_duration(lookback),
            diff_topic=diff_topic,
            timeout_s=timeout,
            application=application,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:
        settings = load_settings(config_file=overrides.config_file, cli=overrides.cli)
        settings.require_api_key()
    except ConfigurationError as exc:
        raise _exit(EXIT_CONFIG, str(exc)) from exc

    async def evaluate() -> None:
        with contextlib.ExitStack() as stack:
            rows = (
                stack.enter_context(events_csv.open("w", newline="", encoding="utf-8"))
                if events_csv is not None
                else None
            )
            observer = stack.enter_context(ConsoleObserver())
            report = await run_what_if(settings, options, observer=observer, events_csv=rows)
        Console().print(report.table())
        click.echo("\n".join(report.lines()))
        if report_csv is not None:
            report.write_csv(report_csv)
            click.echo(f"per-campaign totals: {report_csv}")
        if events_csv is not None:
            click.echo(f"per-event rows: {events_csv}")

    try:
        run_event_loop(evaluate())
    except BrokerError as exc:
        raise _exit(EXIT_BROKER, f"Kafka: {exc}") from exc
    except ConfigurationError as exc:
        raise _exit(EXIT_CONFIG, str(exc)) from exc
    except TalonStreamError as exc:
        raise _exit(1, str(exc)) from exc


def _exit(code: int, message: str) -> click.exceptions.Exit:
    click.secho(f"talon-stream: {message}", fg="red", err=True)
    return click.exceptions.Exit(code)

"""``deploy/compose.yaml``: valid against the Compose specification's JSON schema (the copy
``check-jsonschema`` ships), and wired the way the worker needs — every ``talon-stream`` command
parses with the real CLI, the worker's variables are settings it accepts, and its broker,
Talon.One URL and API key point at the services that answer there."""

from __future__ import annotations

import inspect
import json
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from talon_stream.cli import main as cli
from talon_stream.config._settings import DEFAULT_INPUT_TOPICS, load_settings
from talon_stream.kafka._producer import AsyncProducer

from .conftest import DEPLOY, ROOT, settings_variables

TALON_STREAM_SERVICES = ("emulator", "worker", "notifications", "demo")


def _compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text("utf-8"))
    return schema


def _validator() -> jsonschema.protocols.Validator:
    schema = _compose_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match is not None, f"write durations in seconds, not {duration!r}"
    return float(match[1])


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_compose_file_follows_the_compose_specification(compose):
    errors = sorted(_validator().iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_rejects_an_unknown_service_field(compose):
    worker = {**compose["services"]["worker"], "enviroment": {}}
    broken = {**compose, "services": {**compose["services"], "worker": worker}}
    assert list(_validator().iter_errors(broken))


def test_kafka_runs_in_kraft_mode_from_the_official_image(compose):
    kafka = compose["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert tag, "pin the Kafka image"
    assert tag != "latest"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not [name for name in env if "ZOOKEEPER" in name]
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "healthcheck" in kafka


def test_the_topics_service_creates_what_the_worker_and_the_demo_use(compose, clean_environment):
    """Kafka creates no topic by itself here: every topic a worker reads or writes must exist."""
    topics = compose["services"]["topics"]
    assert topics["image"] == compose["services"]["kafka"]["image"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    created = set(topics["environment"]["TOPICS"].split())
    assert int(topics["environment"]["PARTITIONS"]) >= 1
    for name, value in compose["services"]["worker"]["environment"].items():
        clean_environment.setenv(name, str(value))
    worker = load_settings()
    needed = {*worker.input_topics, worker.effects_topic, worker.dlq_topic, *worker.effect_routes}
    # The producer writes to the default input topics.
    needed |= set(DEFAULT_INPUT_TOPICS)
    assert needed <= created, f"not created: {sorted(needed - created)}"


@pytest.mark.parametrize("name", TALON_STREAM_SERVICES)
def test_talon_stream_services_build_the_image_and_run_a_real_command(compose, name):
    service = compose["services"][name]
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / service["build"]["dockerfile"]).is_file()
    command, *args = service["command"]
    assert command in cli.commands, f"talon-stream has no command {command!r}"
    cli.commands[command].make_context(command, list(args))  # raises on a bad option


def test_the_worker_is_configured_with_settings_it_accepts(compose, clean_environment):
    env = compose["services"]["worker"]["environment"]
    assert set(env) <= set(settings_variables()), "a variable the worker does not read"
    for name, value in env.items():
        clean_environment.setenv(name, str(value))
    settings = load_settings()
    assert settings.require_api_key()
    assert settings.health_port is not None


def test_the_worker_points_at_the_broker_and_the_emulator(compose):
    services = compose["services"]
    env = services["worker"]["environment"]
    host, _, port = env["TALON_STREAM_BOOTSTRAP_SERVERS"].partition(":")
    assert host in services
    assert f"INTERNAL://:{port}" in services[host]["environment"]["KAFKA_LISTENERS"].split(",")
    url = urlsplit(env["TALON_STREAM_TALON_BASE_URL"])
    emulator = services["emulator"]["command"]
    assert url.hostname == "emulator"
    assert str(url.port) == _option(emulator, "--port")
    assert _option(emulator, "--host") == "0.0.0.0"  # reached from the other containers
    assert env["TALON_STREAM_TALON_API_KEY"] == _option(emulator, "--api-key")
    depends = services["worker"]["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert depends["emulator"]["condition"] == "service_healthy"
    demo = services["demo"]["environment"]
    assert demo["KAFKA_BOOTSTRAP_SERVERS"] == env["TALON_STREAM_BOOTSTRAP_SERVERS"]


def test_the_worker_exposes_its_health_port_and_stops_gracefully(compose):
    worker = compose["services"]["worker"]
    env = worker["environment"]
    health_port = env["TALON_STREAM_HEALTH_PORT"]
    assert any(str(port).endswith(f":{health_port}") for port in worker["ports"])
    assert f":{health_port}/healthz" in " ".join(worker["healthcheck"]["test"])
    flush_s = inspect.signature(AsyncProducer.close).parameters["timeout_s"].default
    drain_s = float(env["TALON_STREAM_DRAIN_TIMEOUT_S"])
    assert _seconds(worker["stop_grace_period"]) > drain_s + flush_s
    assert worker["read_only"] is True


def test_only_the_shop_stream_producer_builds_the_image_with_the_demo(compose):
    services = compose["services"]
    assert services["demo"]["build"]["args"] == {"WITH_DEMO": "1"}
    assert services["demo"]["image"] != services["worker"]["image"]
    for name in ("emulator", "worker"):
        assert "args" not in services[name]["build"], f"{name} must get the production image"


def test_the_emulator_notifies_the_receiver_which_publishes_to_created_topics(
    compose, clean_environment
):
    from talon_one_emulator import parse_webhook

    services = compose["services"]
    command = services["emulator"]["command"]
    webhook = parse_webhook(command[command.index("--notification-webhook") + 1])
    for name, value in services["notifications"]["environment"].items():
        clean_environment.setenv(name, str(value))
    receiver = load_settings()
    url = urlsplit(webhook.url)
    assert (url.hostname, url.port) == ("notifications", receiver.notifications_port)
    assert url.path == "/notifications"
    secret = receiver.notifications_auth_token.get_secret_value()
    assert webhook.headers == {receiver.notifications_auth_header: secret}
    created = set(services["topics"]["environment"]["TOPICS"].split())
    assert set(receiver.notifications_topics().values()) <= created
    healthcheck = " ".join(services["notifications"]["healthcheck"]["test"])
    assert f":{receiver.notifications_health_port}/readyz" in healthcheck

"""``talon-stream config check`` against a real broker and the Talon.One emulator on loopback:
a clean report for a good configuration, and exactly what is wrong for a refused key, a missing
topic, an unreachable Talon.One or an unreachable Kafka."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from talon_one_emulator import EmulatorServer
from talon_stream.cli._main import EXIT_CONFIG, main
from talon_stream.demo._broker import Broker
from talon_stream.demo._subprocesses import free_port
from tests.integration.conftest import API_KEY


@pytest.fixture
def stack(
    broker: Broker,
    emulator: EmulatorServer,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Topics of one worker on the broker, and a config file that points at the stack; the API
    key comes from the environment, as in production."""
    for name in list(os.environ):
        if name.upper().startswith(("TALON_STREAM_", "KAFKA_")):
            monkeypatch.delenv(name)
    topics = {
        "input": f"in-{unique}",
        "effects": f"effects-{unique}",
        "dlq": f"dlq-{unique}",
        "route": f"route-{unique}",
        "erasures": f"erasures-{unique}",
    }
    broker.create_topics(
        {
            topics["input"]: 4,
            topics["effects"]: 4,
            topics["dlq"]: 1,
            topics["route"]: 2,
            topics["erasures"]: 1,
        }
    )
    config = tmp_path / "talon-stream.toml"
    config.write_text(
        f'bootstrap_servers = "{broker.bootstrap_servers}"\n'
        f'group_id = "group-{unique}"\n'
        f'input_topics = ["{topics["input"]}"]\n'
        f'effects_topic = "{topics["effects"]}"\n'
        f'dlq_topic = "{topics["dlq"]}"\n'
        f'erasures_topic = "{topics["erasures"]}"\n'
        f'talon_base_url = "{emulator.base_url}"\n'
        "[effect_routes]\n"
        f'"{topics["route"]}" = ["setDiscount*"]\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", API_KEY)
    return {**topics, "config": str(config), "bootstrap": broker.bootstrap_servers}


def config_check(stack: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(
        main, ["config", "check", "--config", stack["config"], "--timeout", "5", *args]
    )


def line(result: Result, name: str) -> str:
    """The report line of the check ``name``, with its ``fix:`` line if it has one."""
    lines = result.output.splitlines()
    for index, text in enumerate(lines):
        if text[2:].startswith(name + " "):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return text + ("\n" + following if "fix:" in following else "")
    raise AssertionError(f"no {name!r} line in:\n{result.output}")


def test_the_embedded_stack_gets_a_clean_report(stack: dict[str, str]) -> None:
    result = config_check(stack)
    assert result.exit_code == 0, result.output
    assert line(result, "configuration").startswith("✓ configuration")
    assert f"config file {stack['config']}" in line(result, "configuration")
    assert "✓ kafka" in line(result, "kafka")
    assert stack["bootstrap"] in line(result, "kafka")
    assert "input: 4 partitions" in line(result, f"topic {stack['input']}")
    assert "DLQ: 1 partition" in line(result, f"topic {stack['dlq']}")
    assert "effect route: 2 partitions" in line(result, f"topic {stack['route']}")
    assert "up to 4 workers" in line(result, "workers")
    assert "accepted the API key" in line(result, "talon.one")
    assert result.output.splitlines()[-1] == "all checks passed"
    assert API_KEY not in result.output


def test_an_input_topic_with_another_partition_count_is_named_with_the_fix(
    stack: dict[str, str], broker: Broker
) -> None:
    orders, events = f"{stack['input']}-orders", f"{stack['input']}-events"
    broker.create_topics({orders: 4, events: 3})  # the input topic has 4
    result = config_check(stack, "--set", f"input_topics={stack['input']},{orders},{events}")
    assert result.exit_code == 1, result.output
    report = line(result, "co-partitioning")
    assert report.startswith("✗ co-partitioning")
    assert f"{events} has 3 partitions" in report
    assert f"{stack['input']} and {orders} have 4 each" in report
    assert f"fix: give {events} 4 partitions" in report
    assert "TALON_STREAM_MAX_IDLE_MS=-1" in report
    # Co-partitioned, they pass and are merged.
    result = config_check(stack, "--set", f"input_topics={stack['input']},{orders}")
    assert result.exit_code == 0, result.output
    assert "4 partitions each, merged in event-time order" in line(result, "co-partitioning")


def test_a_wrong_key_is_refused_and_named(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", "not-the-right-key")
    result = config_check(stack)
    assert result.exit_code == 1, result.output
    talon = line(result, "talon.one")
    assert talon.startswith("✗ talon.one")
    assert "refused the API key from TALON_STREAM_TALON_API_KEY" in talon
    assert "→ 401" in talon
    assert "fix: TALON_STREAM_TALON_API_KEY: give an Integration API key" in talon
    assert "not-the-right-key" not in result.output
    assert line(result, "kafka").startswith("✓")  # the rest of the report is still there


def test_a_missing_topic_is_named_with_how_to_create_it(stack: dict[str, str]) -> None:
    missing = f"{stack['dlq']}-nowhere"
    result = config_check(stack, "--set", f"dlq_topic={missing}")
    assert result.exit_code == 1, result.output
    report = line(result, f"topic {missing}")
    assert report.startswith(f"✗ topic {missing}")
    assert "DLQ: does not exist" in report
    assert (
        f"fix: create it: kafka-topics.sh --bootstrap-server {stack['bootstrap']} --create "
        f"--topic {missing} --partitions 4"
    ) in report
    # Only listed, never created by the check.
    again = config_check(stack, "--set", f"dlq_topic={missing}")
    assert "DLQ: does not exist" in line(again, f"topic {missing}")


def test_an_unreachable_talon_url_is_reported(stack: dict[str, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = config_check(stack, "--talon-base-url", nowhere)
    assert result.exit_code == 1, result.output
    talon = line(result, "talon.one")
    assert "✗ talon.one" in talon
    assert f"{nowhere} cannot be reached" in talon
    assert "fix: check --set talon_base_url" in talon


def test_an_unreachable_kafka_is_reported_within_the_timeout(stack: dict[str, str]) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    result = config_check(stack, "--bootstrap-servers", nobody, "--timeout", "2")
    assert result.exit_code == 1, result.output
    kafka = line(result, "kafka")
    assert kafka.startswith("✗ kafka")
    assert "Connection refused" in kafka
    assert "fix: check --set bootstrap_servers" in kafka
    assert line(result, "talon.one").startswith("✓")


def test_json_report(stack: dict[str, str]) -> None:
    result = config_check(stack, "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["ok"] is True
    assert {check["status"] for check in report["checks"]} <= {"pass", "skip"}
    assert report["settings"]["talon_api_key"] == "**********"
    assert API_KEY not in result.output


def test_an_invalid_configuration_exits_2(stack: dict[str, str]) -> None:
    result = config_check(stack, "--set", "max_in_flight=none")
    assert result.exit_code == EXIT_CONFIG, result.output
    assert "--set max_in_flight: Input should be a valid integer" in result.output

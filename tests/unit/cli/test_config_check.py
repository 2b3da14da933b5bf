"""``config check`` without a network: a fake Kafka probe and an httpx MockTransport stand in for
the cluster and Talon.One; the report says what is wrong, what to fix, and never a secret."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from talon_stream.cli._config_check import (
    CheckOptions,
    CheckResult,
    ClusterView,
    KafkaFailure,
    Report,
    run_check,
)

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "talon-key-0123456789"
PASSWORD = "kafka-Passw0rd-abcdef"
TOPICS = {
    "in.a": 6,
    "in.b": 6,
    "talon.effects": 6,
    "talon-stream.dlq": 1,
    "talon-stream.erasures": 1,
    "route.pricing": 6,
}
BASE = {
    "input_topics": "in.a,in.b",
    "effect_routes": '{"route.pricing": ["setDiscount*"]}',
    "talon_base_url": "https://acme.europe-west1.talon.one",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith(("TALON_STREAM_", "KAFKA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TALON_STREAM_TALON_API_KEY", API_KEY)
    return monkeypatch


def cluster(topics: dict[str, int] = TOPICS) -> Callable[[dict[str, Any], float], ClusterView]:
    def probe(config: dict[str, Any], timeout_s: float) -> ClusterView:
        return ClusterView(cluster_id="c-1", brokers=3, partitions=topics)

    return probe


def talon(status: int, body: object = None, **headers: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert request.url.path.startswith("/v2/customer_sessions/talon-stream-config-check-")
        assert request.headers["Authorization"] == f"ApiKey-v1 {API_KEY}"
        content = body if isinstance(body, bytes) else orjson.dumps(body or {"message": "x"})
        return httpx.Response(status, content=content, headers=headers)

    return httpx.MockTransport(answer)


NOT_FOUND = talon(404, {"message": "Customer session not found", "StatusCode": 404})


def check(
    cli: dict[str, str] | None = None,
    *,
    probe: Any = None,
    transport: httpx.BaseTransport = NOT_FOUND,
    config_file: Path | None = None,
) -> Report:
    options = CheckOptions(config_file=config_file, cli={**BASE, **(cli or {})}, timeout_s=1)
    return run_check(options, kafka_probe=probe or cluster(), http_transport=transport)


def by_name(report: Report) -> dict[str, CheckResult]:
    return {result.name: result for result in report.checks}


def everything(report: Report) -> str:
    return "\n".join(report.lines()) + orjson.dumps(report.as_dict()).decode()


def test_a_good_configuration_passes_every_check() -> None:
    report = check()
    assert report.ok, report.lines()
    results = by_name(report)
    assert [r.name for r in report.checks] == [
        "configuration",
        "kafka",
        "topic in.a",
        "topic in.b",
        "topic talon.effects",
        "topic talon-stream.dlq",
        "topic talon-stream.erasures",
        "topic route.pricing",
        "workers",
        "co-partitioning",
        "talon.one",
        "mapping file",
    ]
    assert results["topic in.b"].detail == "input: 6 partitions"
    assert results["topic route.pricing"].detail == "effect route: 6 partitions"
    # Merged in event-time order, with the range assignor: the largest topic bounds the group.
    assert "up to 6 workers" in results["workers"].detail
    assert results["co-partitioning"].detail == (
        "in.a, in.b: 6 partitions each, merged in event-time order (max idle 1000 ms)"
    )
    assert results["talon.one"].detail.startswith(
        "https://acme.europe-west1.talon.one accepted the API key (GET /v2/customer_sessions/"
    )
    assert results["mapping file"].status == "skip"
    assert report.lines()[-1] == "all checks passed"
    assert API_KEY not in everything(report)


def test_the_range_assignor_bounds_workers_by_the_largest_topic() -> None:
    report = check({"partition_assignment_strategy": "range"})
    assert "up to 6 workers" in by_name(report)["workers"].detail
    # Each topic on its own, the default assignor spreads all partitions together.
    report = check({"max_idle_ms": "-1"})
    assert "up to 12 workers" in by_name(report)["workers"].detail


def test_an_input_topic_with_another_partition_count_is_named_with_the_fix() -> None:
    report = check(probe=cluster({**TOPICS, "in.b": 3}))
    assert not report.ok
    result = by_name(report)["co-partitioning"]
    assert result.status == "fail"
    assert result.detail == (
        "in.b has 3 partitions, in.a has 6: a customer's records in in.b are not merged by "
        "time with those in in.a"
    )
    assert result.fix is not None
    assert "give in.b 6 partitions: create a new topic with --partitions 6" in result.fix
    assert "TALON_STREAM_MAX_IDLE_MS=-1" in result.fix
    assert by_name(check({"max_idle_ms": "-1"}))["co-partitioning"].status == "skip"
    assert "co-partitioning" not in by_name(check({"input_topics": "in.a"}))


def test_missing_topics_are_named_with_the_command_that_creates_them() -> None:
    report = check(probe=cluster({"in.a": 6, "talon.effects": 6}))
    assert not report.ok
    results = by_name(report)
    for topic, role in [
        ("in.b", "input"),
        ("talon-stream.dlq", "DLQ"),
        ("route.pricing", "effect route"),
    ]:
        result = results[f"topic {topic}"]
        assert result.status == "fail"
        assert result.detail == f"{role}: does not exist"
        assert result.fix == (
            "create it: kafka-topics.sh --bootstrap-server 127.0.0.1:9092 --create "
            f"--topic {topic} --partitions 6"
        )
    erasures = results["topic talon-stream.erasures"]
    assert erasures.detail == "erasures: does not exist"
    assert erasures.fix is not None
    assert erasures.fix.endswith("--partitions 6 --config cleanup.policy=compact")
    assert results["topic in.a"].status == "pass"
    assert "4 of 12 checks failed" in report.lines()[-1]  # co-partitioning: skipped


def test_a_secured_cluster_gets_a_command_config_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    report = check(probe=cluster({}))
    fix = by_name(report)["topic in.a"].fix
    assert fix is not None
    assert "--command-config" in fix
    assert by_name(report)["workers"].status == "skip"


def test_a_refused_key_names_the_variable_to_fix() -> None:
    report = check(transport=talon(401, {"message": "Unauthorized", "StatusCode": 401}))
    result = by_name(report)["talon.one"]
    assert result.status == "fail"
    assert "refused the API key from TALON_STREAM_TALON_API_KEY" in result.detail
    assert "→ 401" in result.detail
    assert result.fix is not None
    assert result.fix.startswith("TALON_STREAM_TALON_API_KEY: give an Integration API key")
    assert API_KEY not in everything(report)


def test_a_key_from_the_command_line_is_named_so() -> None:
    report = check({"talon_api_key": API_KEY}, transport=talon(403))
    assert "from --set talon_api_key" in by_name(report)["talon.one"].detail
    assert API_KEY not in everything(report)


def test_no_key_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALON_STREAM_TALON_API_KEY")
    result = by_name(check())["talon.one"]
    assert (result.status, result.detail) == ("fail", "no API key")


def test_an_unreachable_url_is_reported() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = by_name(check(transport=httpx.MockTransport(refuse)))["talon.one"]
    assert result.status == "fail"
    assert result.detail == (
        "https://acme.europe-west1.talon.one cannot be reached: [Errno 111] Connection refused"
    )
    assert result.fix is not None
    assert "check --set talon_base_url" in result.fix  # where the URL was set


@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        (talon(404, b"<html>Not Found</html>"), "404 without a Talon.One error body"),
        (talon(301, b"", Location="https://elsewhere/"), "redirects to https://elsewhere/"),
        (talon(503, {"message": "down for maintenance"}), "HTTP 503"),
    ],
)
def test_other_answers_fail_with_a_reason(transport: httpx.MockTransport, expected: str) -> None:
    result = by_name(check(transport=transport))["talon.one"]
    assert result.status == "fail"
    assert expected in result.detail


def test_kafka_failures_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)

    def refused(config: dict[str, Any], timeout_s: float) -> KafkaFailure:
        assert config["sasl.password"] == PASSWORD  # librdkafka gets the real value
        # A third-party message that quotes the secret is scrubbed all the same.
        return KafkaFailure("auth", f"SASL authentication error for {PASSWORD}")

    report = check(probe=refused)
    results = by_name(report)
    assert results["kafka"].status == "fail"
    assert results["kafka"].fix is not None
    assert "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in results["kafka"].fix
    assert results["topics"].status == "skip"
    assert results["talon.one"].status == "pass"  # the other checks still run
    assert PASSWORD not in everything(report)


def test_a_librdkafka_setting_it_refuses_is_traced_to_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SASL_MECHANISMX", "PLAIN")

    def invalid(config: dict[str, Any], timeout_s: float) -> KafkaFailure:
        return KafkaFailure("config", 'No such property: "sasl.mechanismx"', "sasl.mechanismx")

    fix = by_name(check(probe=invalid))["kafka"].fix
    assert fix is not None
    assert fix.startswith("correct or remove KAFKA_SASL_MECHANISMX (sasl.mechanismx)")


def test_an_invalid_configuration_is_reported_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_DISPATCH", "sideways")
    report = check({"max_in_flight": "0"})
    assert not report.ok
    assert not report.configuration_ok
    assert len(report.checks) == 1
    lines = report.lines()
    assert lines[0] == "✗ configuration  2 invalid settings (nothing else was checked):"
    assert "TALON_STREAM_DISPATCH: Input should be 'keyed' or 'partition'" in lines[1]
    assert "--set max_in_flight: Input should be greater than or equal to 1" in lines[2]
    assert report.as_dict()["settings"] is None


def test_the_json_report_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    report = check()
    data = report.as_dict()
    assert data["ok"] is True
    assert data["checks"][0] == {
        "name": "configuration",
        "status": "pass",
        "detail": "valid (1 environment variable; 1 KAFKA_* librdkafka setting; "
        "3 command-line overrides)",
        "fix": None,
    }
    assert data["settings"]["talon_api_key"] == "**********"
    assert data["settings"]["kafka_config"] == {"sasl.password": "**********"}
    assert PASSWORD not in everything(report)
    assert API_KEY not in everything(report)


def test_the_mapping_file_is_loaded(tmp_path: Path) -> None:
    example = ROOT / "deploy" / "mappings" / "shopify-carts.yaml"
    report = check({"mapping_file": str(example), "input_topics": "in.a,in.b,shopify.carts"})
    result = by_name(report)["mapping file"]
    assert result.status in {"pass", "warn"}
    assert str(example) in result.detail

    broken = tmp_path / "broken.yaml"
    broken.write_text("mappings: [", encoding="utf-8")
    result = by_name(check({"mapping_file": str(broken)}))["mapping file"]
    assert result.status == "fail"
    assert "broken.yaml is not valid YAML" in result.detail


def test_a_mapped_topic_that_is_not_read_is_a_warning(tmp_path: Path) -> None:
    example = ROOT / "deploy" / "mappings" / "shopify-carts.yaml"
    report = check({"mapping_file": str(example)})
    result = by_name(report)["mapping file"]
    assert result.status == "warn"
    assert "is not an input topic" in result.detail
    assert report.ok  # a warning does not fail the check


def test_the_config_file_is_named_in_the_report(tmp_path: Path) -> None:
    config = tmp_path / "talon-stream.toml"
    config.write_text('group_id = "from-file"\n', encoding="utf-8")
    report = check(config_file=config)
    assert f"config file {config}" in by_name(report)["configuration"].detail
    assert "group from-file" in by_name(report)["workers"].detail
    assert report.as_dict()["config_file"] == str(config)

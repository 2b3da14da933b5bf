"""Short chaos scenarios (``SHORT`` in scenarios.py), judged on a real broker and the emulator.

``make chaos`` runs the same scenarios at full length (``LONG``) and prints their figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from talon_stream.demo._broker import Broker
from tests.chaos import scenarios
from tests.chaos.scenarios import SHORT, Scenario, ScenarioResult

pytestmark = pytest.mark.integration


async def run(scenario: Scenario, broker: Broker, workdir: Path, params: Any) -> ScenarioResult:
    """Run ``scenario``; assert it kept every guarantee. A scenario that raises (a timeout, a
    worker that died) fails with its workers' last log lines, which say why."""
    try:
        result = await scenario(broker, workdir, params)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{scenarios.log_tails(workdir)}") from exc
    assert result.ok, result.describe()
    return result


async def test_kill_9_at_random_moments_loses_nothing_and_repeats_no_side_effect(
    broker: Broker, tmp_path: Path
) -> None:
    result = await run(scenarios.kill9, broker, tmp_path, SHORT.kill9)
    assert result.figures["kills"] == SHORT.kill9.kills


async def test_kill_9_with_exactly_once_shows_each_outcome_once_to_read_committed_readers(
    broker: Broker, tmp_path: Path
) -> None:
    if broker.kind == "tansu":
        pytest.skip(
            "Tansu shows aborted transactional records to read_committed readers "
            "(shared reference tansu.md): exactly-once is tested on Apache Kafka"
        )
    result = await run(scenarios.kill9, broker, tmp_path, SHORT.kill9_exactly_once)
    assert result.figures["kills"] == SHORT.kill9_exactly_once.kills
    assert result.figures["duplicate_envelopes"] == 0


async def test_kill_9_with_each_service_on_its_own_topic_keeps_event_time_order(
    broker: Broker, tmp_path: Path
) -> None:
    await run(scenarios.kill9, broker, tmp_path, SHORT.kill9_four_topics)


async def test_kill_9_with_coalesced_cart_updates_never_puts_an_older_cart_over_a_newer_one(
    broker: Broker, tmp_path: Path
) -> None:
    result = await run(scenarios.kill9, broker, tmp_path, SHORT.kill9_coalescing)
    assert result.figures["coalesced_envelopes"] > 0


async def test_a_talon_one_outage_dead_letters_nothing_and_the_backlog_drains(
    broker: Broker, tmp_path: Path
) -> None:
    await run(scenarios.outage, broker, tmp_path, SHORT.outage)


async def test_a_429_storm_is_retried_never_sooner_than_retry_after(
    broker: Broker, tmp_path: Path
) -> None:
    result = await run(scenarios.storm_429, broker, tmp_path, SHORT.storm_429)
    assert result.verdict.status_429 > 0


async def test_every_poison_record_is_dead_lettered_with_its_reason(
    broker: Broker, tmp_path: Path
) -> None:
    result = await run(scenarios.poison, broker, tmp_path, SHORT.poison)
    assert result.verdict.expected_dlq == SHORT.poison.poison + SHORT.poison.oversized


async def test_a_wrong_api_key_halts_the_worker_until_the_key_is_accepted(
    broker: Broker, tmp_path: Path
) -> None:
    await run(scenarios.wrong_key, broker, tmp_path, SHORT.wrong_key)


async def test_workers_joining_and_leaving_never_overlap_calls_for_one_customer(
    broker: Broker, tmp_path: Path
) -> None:
    await run(scenarios.rebalance, broker, tmp_path, SHORT.rebalance)


async def test_sigterm_drains_commits_and_exits_zero_within_the_drain_timeout(
    broker: Broker, tmp_path: Path
) -> None:
    await run(scenarios.sigterm, broker, tmp_path, SHORT.sigterm)


async def test_the_api_key_never_reaches_logs_dlq_headers_or_envelopes(
    broker: Broker, tmp_path: Path
) -> None:
    result = await run(scenarios.secrets, broker, tmp_path, SHORT.secrets)
    assert result.verdict.dlq_records > 0  # the DLQ headers were there to be searched


def needs_apache_kafka(broker: Broker) -> None:
    if broker.kind != "apache-kafka":
        pytest.skip(f"{broker.kind}: the broker scenarios need Apache Kafka, which keeps its data")


async def test_the_broker_killed_and_restarted_on_its_data_loses_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    needs_apache_kafka(broker)
    result = await run(scenarios.broker_fault, broker, tmp_path, SHORT.broker_kill9)
    assert result.figures["starts"] == 1


async def test_a_frozen_broker_resumed_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    needs_apache_kafka(broker)
    result = await run(scenarios.broker_fault, broker, tmp_path, SHORT.broker_freeze)
    assert result.figures["starts"] == 1

"""Custom events as Talon.One advanced events (``TALON_STREAM_CUSTOM_EVENTS_API=v3``), end to end.

Each event is tracked once, identified by its ``eventId``. A second run over the same records
(here: a second consumer group, as after a crash before the commit) finds every event there
already: Talon.One answers 409, and the worker publishes the stored event's effects instead —
the same effects, no DLQ record, nothing tracked twice.
"""

from __future__ import annotations

import orjson
import pytest

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all
from tests.integration.conftest import create_topics, running, wait_for, worker_settings

pytestmark = pytest.mark.integration

EVENTS = 40


async def test_a_replayed_advanced_event_gets_the_stored_effects_and_is_not_tracked_twice(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    first = worker_settings(broker, emulator, unique, custom_events_api="v3")
    topic = create_topics(broker, first, partitions=2)
    records = []
    for index in range(EVENTS):
        event = {
            "eventId": f"review-{unique}-{index}",
            "type": "customer.event",
            "occurredAt": "2026-11-22T10:00:00Z",
            "profileId": f"c-{index % 7}",
            "payload": {"eventType": "review_submitted", "attributes": {"rating": 5}},
        }
        records.append((event["profileId"].encode(), orjson.dumps(event)))
    produce(broker.bootstrap_servers, topic, records)

    worker = Worker(first)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= EVENTS, what="first run")
    again = worker_settings(
        broker,
        emulator,
        unique,
        custom_events_api="v3",
        group_id=f"again-{unique}",
        effects_topic=f"effects-again-{unique}",
    )
    broker.create_topics({again.effects_topic: 2})
    replay = Worker(again)
    async with running(replay):
        await wait_for(lambda: replay.stats.outcomes >= EVENTS, what="second run")

    assert worker.stats.dead_lettered == replay.stats.dead_lettered == 0
    log = emulator.state.request_log.entries()
    tracked = [e for e in log if e["operation"] == "trackEventV3"]
    assert sorted(e["status"] for e in tracked) == [200] * EVENTS + [409] * EVENTS
    assert len({e["body"]["integrationId"] for e in tracked}) == EVENTS
    assert len([e for e in log if e["operation"] == "getEventV3"]) == EVENTS
    assert len(emulator.state.events) == EVENTS

    def effects_by_event(topic: str) -> dict[str, object]:
        values = read_all(broker.bootstrap_servers, topic, quiet_s=1.0)
        return {
            envelope["source"]["eventId"]: envelope["effects"]
            for envelope in map(orjson.loads, values)
        }

    live, replayed = effects_by_event(first.effects_topic), effects_by_event(again.effects_topic)
    assert len(live) == EVENTS
    assert replayed == live
    assert any(live.values())  # the default campaigns do answer reviews

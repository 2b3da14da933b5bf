"""A refused API key halts the worker instead of flooding the DLQ, skips nothing, reports why on
the health endpoint, and resumes by itself once Talon.One accepts the key again."""

from __future__ import annotations

import aiohttp
from confluent_kafka import Consumer, TopicPartition

from talon_one_emulator import EmulatorServer
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce
from tests.integration.conftest import API_KEY, create_topics, running, wait_for, worker_settings


def committed_offset(broker: Broker, group_id: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group_id})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()
    return int(committed.offset)


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_a_wrong_api_key_halts_the_worker_until_the_key_is_accepted(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(
        broker,
        emulator,
        unique,
        talon_api_key="not-the-key",
        health_port=0,
        health_host="127.0.0.1",
        halt_probe_initial_s=0.2,
        halt_probe_max_s=0.5,
    )
    topic = create_topics(broker, settings, partitions=1)
    values = [
        b'{"eventId": "e-%d", "type": "cart.updated", "occurredAt": "2026-11-22T10:00:00Z",'
        b' "sessionId": "s-1", "payload": {"cartItems": []}}' % n
        for n in range(3)
    ]
    produce(broker.bootstrap_servers, topic, [(b"s-1", value) for value in values])

    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.halt.active, what="the worker to halt")
        await wait_for(lambda: worker.halt.probes >= 3, what="a few probes")
        base = f"http://127.0.0.1:{worker.health_port}"
        health = await get_json(f"{base}/healthz")
        ready = await get_json(f"{base}/readyz")

        # Halted: nothing dead-lettered, nothing published, no offset committed past a record
        # (at most where reading started, committed before the first call: offset 0), and the probes
        # go one at a time (never the whole backlog at once).
        assert worker.stats.dead_lettered == 0
        assert worker.stats.effects_published == 0
        assert committed_offset(broker, settings.group_id, topic) <= 0
        log = list(emulator.state.request_log)
        assert {entry["status"] for entry in log} == {401}
        assert {entry["sessionId"] for entry in log} == {"s-1"}

        # Talon.One accepts the key again (re-enabled, or the worker's key added): it resumes.
        async with (
            aiohttp.ClientSession() as session,
            session.put(
                f"{emulator.base_url}/__emulator/api-keys",
                json={"keys": [API_KEY, "not-the-key"]},
            ) as answer,
        ):
            assert answer.status == 200
        await wait_for(lambda: worker.stats.effects_published == 3, what="the backlog")
        assert not worker.halt.active
        healthy = await get_json(f"{base}/healthz")
        await wait_for(
            lambda: committed_offset(broker, settings.group_id, topic) == 3, what="the commit"
        )

    assert health[0] == 503
    assert health[1]["status"] == "halted"
    reason = str(health[1]["reason"])
    assert "HTTP 401" in reason
    assert "TALON_STREAM_TALON_API_KEY" in reason
    assert "not-the-key" not in reason  # never the secret
    assert ready[0] == 503
    assert str(ready[1]["reason"]).startswith("halted: ")
    assert healthy == (200, {"status": "ok"})
    assert worker.stats.dead_lettered == 0
    assert worker.halt.halts == 1

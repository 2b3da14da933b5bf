"""The receiver without Kafka: the secret, the answers, deduplication of retries (one after
the other, and at once), and the HTTP server's probes and metrics with a fake producer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
import pytest

from talon_stream._exceptions import BrokerError
from talon_stream.config._settings import Settings
from talon_stream.core._records import OutputRecord
from talon_stream.notifications import (
    ID_HEADER,
    NotificationReceiver,
    NotificationStats,
    ReceiverOptions,
    ReceiverServer,
    SeenIds,
)

TOPICS: dict[Any, str] = {
    "pricing": "n.pricing",
    "loyalty": "n.loyalty",
    "coupons": "n.coupons",
    "campaigns": "n.campaigns",
}
HEADER = "X-Talon-Stream-Token"
GOOD = {HEADER: "s3cret", "X-UUID": "m-1"}
BODY = orjson.dumps(
    {
        "NotificationType": "StrikethroughPrice",
        "applicationId": 1,
        "changedItems": [{"sku": "A", "price": 1}, {"sku": "B", "price": 2}],
    }
)


class FakeSender:
    def __init__(self, *, fail: int = 0, delay_s: float = 0.0) -> None:
        self.records: list[OutputRecord] = []
        self.fail = fail
        self.delay_s = delay_s

    async def send_all(
        self, records: Sequence[OutputRecord], *, partition: int | None = None
    ) -> None:
        await asyncio.sleep(self.delay_s)
        if self.fail:
            self.fail -= 1
            raise BrokerError("delivery to 'n.pricing' failed: timed out")
        self.records.extend(records)


def receiver(sender: FakeSender, seen: SeenIds | None = None) -> NotificationReceiver:
    return NotificationReceiver(
        ReceiverOptions(HEADER, "s3cret", TOPICS),
        sender,
        seen or SeenIds(1000, 3600),
        NotificationStats(),
    )


@pytest.mark.parametrize("headers", [{}, {HEADER: "wrong"}, {"Authorization": "s3cret"}])
async def test_a_request_without_the_secret_is_refused_and_publishes_nothing(
    headers: dict[str, str],
) -> None:
    sender = FakeSender()
    answer = await receiver(sender).receive(headers, BODY)
    assert answer.status == 401
    assert sender.records == []


async def test_records_go_to_the_category_topic_keyed_with_the_id_in_a_header() -> None:
    sender = FakeSender()
    answer = await receiver(sender).receive(GOOD, BODY)
    assert (answer.status, answer.body) == (200, {"published": 2, "duplicates": 0})
    assert [(topic, key) for topic, key, _v, _h in sender.records] == [
        ("n.pricing", b"A"),
        ("n.pricing", b"B"),
    ]
    for _topic, _key, value, headers in sender.records:
        assert value is not None
        assert headers is not None
        assert dict(headers)[ID_HEADER].decode() == orjson.loads(value)["id"]


async def test_a_bad_body_is_400_and_a_kafka_failure_503_then_the_retry_publishes() -> None:
    sender = FakeSender(fail=1)
    subject = receiver(sender)
    assert (await subject.receive(GOOD, b"{}")).status == 400
    assert (await subject.receive(GOOD, BODY)).status == 503
    assert sender.records == []
    retried = await subject.receive(GOOD, BODY)
    assert (retried.status, retried.body["published"]) == (200, 2)


async def test_a_retry_after_success_publishes_nothing_more() -> None:
    sender = FakeSender()
    seen = SeenIds(1000, 3600)
    subject = receiver(sender, seen)
    await subject.receive(GOOD, BODY)
    again = await subject.receive(GOOD, BODY)
    assert again.body == {"published": 0, "duplicates": 2}
    assert len(sender.records) == 2
    # Another replica knows the ids from the topic's headers: same outcome.
    other = FakeSender()
    elsewhere = receiver(other, SeenIds(1000, 3600))
    elsewhere_seen = [dict(h or [])[ID_HEADER].decode() for *_r, h in sender.records]
    elsewhere._seen.add_all(elsewhere_seen)
    assert (await elsewhere.receive(GOOD, BODY)).body == {"published": 0, "duplicates": 2}
    assert other.records == []


async def test_copies_arriving_together_publish_once() -> None:
    sender = FakeSender(delay_s=0.05)
    subject = receiver(sender)
    answers = await asyncio.gather(*(subject.receive(GOOD, BODY) for _ in range(5)))
    assert [a.status for a in answers] == [200] * 5
    assert len(sender.records) == 2
    assert sum(int(a.body["duplicates"]) for a in answers) == 8  # type: ignore[call-overload]


async def test_a_copy_waiting_for_a_failed_one_publishes_it_itself() -> None:
    sender = FakeSender(fail=1, delay_s=0.05)
    subject = receiver(sender)
    first, second = await asyncio.gather(subject.receive(GOOD, BODY), subject.receive(GOOD, BODY))
    assert (first.status, second.status) == (503, 200)
    assert len(sender.records) == 2


class FakeProducer(FakeSender):
    class Client:
        def list_topics(self, timeout: float) -> None:
            return None

    client = Client()

    def __init__(self, _config: dict[str, Any]) -> None:
        super().__init__()

    async def close(self, timeout_s: float = 10.0) -> None:
        return None


class FakeTail:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.caught_up = asyncio.Event()

    def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_the_server_answers_probes_metrics_and_webhooks() -> None:
    settings = Settings(
        notifications_port=0,
        notifications_health_port=0,
        notifications_host="127.0.0.1",
        notifications_auth_token="s3cret",
    )
    tails: list[FakeTail] = []

    def tail(*args: Any, **kwargs: Any) -> FakeTail:
        tails.append(FakeTail())
        return tails[-1]

    server = ReceiverServer(settings, producer_factory=FakeProducer, tail_factory=tail)  # type: ignore[arg-type]
    task = asyncio.create_task(server.run())
    while server.port is None:  # noqa: ASYNC110 - the server exposes no start event
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{server.health_port}"
    hook = f"http://127.0.0.1:{server.port}/notifications/strikethrough"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/readyz") as answer:
            assert answer.status == 503  # the ids are not read yet
        async with http.post(hook, data=BODY, headers=GOOD) as answer:
            assert answer.status == 503
        tails[0].caught_up.set()
        async with http.get(base + "/readyz") as answer:
            assert answer.status == 200
        async with http.get(base + "/healthz") as answer:
            assert answer.status == 200
        async with http.post(hook, data=BODY, headers={HEADER: "nope"}) as answer:
            assert answer.status == 401
        async with http.post(hook, data=BODY, headers=GOOD) as answer:
            assert answer.status == 200
        async with http.get(base + "/metrics") as answer:
            text = await answer.text()
    assert (
        'talon_stream_notifications_published_total{topic="talon.notifications.pricing"} 2.0'
        in text
    )
    assert "talon_stream_notifications_auth_refused_total 1.0" in text
    assert 'talon_stream_notifications_requests_total{status="503"} 1.0' in text
    server.stop()
    await asyncio.wait_for(task, 10)


def test_the_server_refuses_to_start_without_a_secret() -> None:
    from talon_stream import ConfigurationError

    with pytest.raises(ConfigurationError, match="NOTIFICATIONS_AUTH_TOKEN"):
        ReceiverServer(Settings(), producer_factory=FakeProducer, tail_factory=FakeTail)  # type: ignore[arg-type]

"""``talon-stream what-if`` on a real broker: a generated shop stream over two co-partitioned
topics, a live worker over it first (so the effects topic holds the live envelopes), then the
what-if over a time window with a campaign that is disabled live (only a dry request's
``evaluableCampaignIds`` runs it) beside two that are live.

Checked against what the emulator logged and what the what-if wrote: every what-if call was
dry; the report's totals are those the diff records add up to, and the diff records' candidate
effects are what Talon.One answers the logged requests again; each customer's calls went in
event-time order, one at a time; nothing outside the window was evaluated; and for the live
campaigns, the candidate effects are the live ones (the accumulated sessions are the live
sessions).
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition

from talon_one_emulator import EmulatorConfig, EmulatorServer, parse_campaigns
from talon_stream.cli._main import main
from talon_stream.config._settings import Settings
from talon_stream.demo import ShopSimulator
from talon_stream.demo._broker import Broker
from talon_stream.processing._worker import Worker
from tests.conftest import produce, read_all
from tests.integration.conftest import API_KEY, running, wait_for, worker_settings

pytestmark = pytest.mark.integration

EVENTS = 3000
PARTITIONS = 3
STEP_MS = 50  # event time between two records of the stream
SINCE_INDEX, UNTIL_INDEX = 1000, 2000  # the window: these records' timestamps
LOOKBACK_S = 40  # 800 records before the window rebuild the sessions begun earlier
CANDIDATE = 2  # "10 off orders of 150 or more", disabled in the campaign file below
LIVE_CAMPAIGNS = (1, 5)  # the xmas20 coupon, shop points: live and evaluated
CAMPAIGNS = (1, CANDIDATE, 5)
NOT_EVALUATED = {"order.cancelled", "order.items_returned", "order.reopened"}


def needs_offsets_for_times(broker: Broker) -> None:
    if broker.kind == "tansu":
        pytest.skip(
            "Tansu's offsets_for_times goes by when batches were written, not by record "
            "timestamps (shared reference tansu.md): the window is tested on Apache Kafka"
        )


def campaigns_with_one_disabled() -> Any:
    """The emulator's default campaigns with campaign 2 disabled: live sessions never get it."""
    from importlib.resources import files

    document = yaml.safe_load(
        files("talon_one_emulator").joinpath("campaigns/default.yaml").read_text("utf-8")
    )
    [campaign] = [c for c in document["campaigns"] if c["id"] == CANDIDATE]
    campaign["enabled"] = False
    return parse_campaigns(document)


def stream(count: int, seed: int, start_ms: int) -> list[dict[str, Any]]:
    """``count`` records of shopper journeys, 30 at a time interleaved, ``STEP_MS`` apart in
    event time; carts on one topic, everything else on the other."""
    simulator = ShopSimulator(seed=seed, customers=300, poison_rate=0.0)
    rng = random.Random(seed)
    active: list[list[Any]] = []
    out: list[dict[str, Any]] = []
    while len(out) < count:
        while len(active) < 30:
            active.append(simulator.journey())
        journey = rng.choice(active)
        generated = journey.pop(0)
        if not journey:
            active.remove(journey)
        event = orjson.loads(generated.value)
        out.append(
            {
                "index": len(out),
                "cart": event["type"] == "cart.updated",
                "key": generated.key,
                "value": generated.value,
                "type": event["type"],
                "session": event.get("sessionId"),
                "profile": event.get("profileId"),
                "timestamp": start_ms + len(out) * STEP_MS,
            }
        )
    return out


def produce_stream(bootstrap: str, topics: dict[bool, str], records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})

    def landed(record: dict[str, Any]) -> Any:
        def report(error: Any, message: Any) -> None:
            assert error is None, error
            record["coordinates"] = (message.topic(), message.partition(), message.offset())

        return report

    for record in records:
        producer.produce(
            topics[record["cart"]],
            key=record["key"],
            value=record["value"],
            timestamp=record["timestamp"],
            on_delivery=landed(record),
        )
        producer.poll(0)
    assert producer.flush(30) == 0


async def run_live(settings: Settings, count: int) -> Worker:
    worker = Worker(settings)
    async with running(worker):
        await wait_for(lambda: worker.stats.outcomes >= count, 120, f"{count} live outcomes")
    return worker


def committed(settings: Settings, topics: list[str]) -> list[tuple[str, int, int]]:
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": settings.group_id}
    )
    try:
        wanted = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        return [(tp.topic, tp.partition, tp.offset) for tp in consumer.committed(wanted, 10)]
    finally:
        consumer.close()


def signature(effects: list[dict[str, Any]], campaigns: set[int]) -> list[tuple[Any, ...]]:
    """Campaign, type, name and value of each effect of ``campaigns``; a tier change is left
    out (it depends on the points the profile holds today, not then)."""
    return sorted(
        (
            e["campaignId"],
            e["effectType"],
            repr(e["props"].get("name")),
            repr(e["props"].get("value")),
        )
        for e in effects
        if e["campaignId"] in campaigns and e["effectType"] != "changeLoyaltyTierLevel"
    )


def recomputed(diffs: list[dict[str, Any]], side: str) -> dict[int, dict[str, float]]:
    """The per-campaign totals, added up from the diff records (written out here, not the
    module's code)."""
    totals: dict[int, Counter[str]] = {c: Counter() for c in CAMPAIGNS}
    for diff in diffs:
        if diff["error"] is not None:
            continue
        closing = diff["source"]["type"] == "order.placed"
        effects = diff["live"]["effects"] if side == "live" else diff["candidate"]["effects"]
        for campaign in CAMPAIGNS:
            own = [e for e in effects if e["campaignId"] == campaign]
            if any(e["effectType"] not in ("rejectCoupon", "rejectReferral") for e in own):
                totals[campaign]["triggered"] += 1
            for e in own:
                kind, value = e["effectType"], e["props"].get("value")
                if kind in ("setDiscount", "setDiscountPerItem", "setDiscountPerAdditionalCost"):
                    totals[campaign]["discount"] += value
                    totals[campaign]["discount_on_orders"] += value if closing else 0
                totals[campaign]["coupons_accepted"] += kind == "acceptCoupon"
                totals[campaign]["coupons_rejected"] += kind == "rejectCoupon"
                if kind == "addLoyaltyPoints":
                    totals[campaign]["points_added"] += value
                    totals[campaign]["points_added_on_orders"] += value if closing else 0
                if kind == "deductLoyaltyPoints":
                    totals[campaign]["points_deducted"] += value
    return {c: {k: round(v, 2) for k, v in t.items()} for c, t in totals.items()}


def test_what_if_evaluates_the_window_dry_in_customer_order_and_reports_honest_totals(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    needs_offsets_for_times(broker)
    start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=1)
    start_ms = int(start.timestamp() * 1000)
    carts, orders, diff_topic = f"carts-{unique}", f"orders-{unique}", f"what-if-{unique}"
    with EmulatorServer(
        # Some latency, so that calls of several customers overlap as they do in production.
        EmulatorConfig(api_keys=[API_KEY], campaigns=campaigns_with_one_disabled(), latency_ms=4)
    ) as emulator:
        settings = worker_settings(broker, emulator, unique, input_topics=(carts, orders))
        broker.create_topics(
            {
                carts: PARTITIONS,
                orders: PARTITIONS,
                settings.effects_topic: PARTITIONS,
                settings.dlq_topic: 1,
                diff_topic: PARTITIONS,
            }
        )
        records = stream(EVENTS, seed=41, start_ms=start_ms)
        produce_stream(broker.bootstrap_servers, {True: carts, False: orders}, records)

        # Live first: the effects topic gets an envelope per record.
        worker = asyncio.run(run_live(settings, EVENTS))
        assert worker.stats.dead_lettered == 0
        live_log = emulator.state.request_log.entries()
        assert live_log
        assert all("dry" not in entry["query"] for entry in live_log)
        marker = live_log[-1]["seq"]
        commits_before = committed(settings, [carts, orders])

        since = start + timedelta(milliseconds=SINCE_INDEX * STEP_MS)
        until = start + timedelta(milliseconds=UNTIL_INDEX * STEP_MS)
        totals_csv, events_csv = tmp_path / "totals.csv", tmp_path / "events.csv"
        result = CliRunner().invoke(
            main,
            [
                "what-if",
                "--bootstrap-servers",
                broker.bootstrap_servers,
                "--input-topics",
                f"{carts},{orders}",
                "--talon-base-url",
                emulator.base_url,
                "--group-id",
                settings.group_id,
                "--set",
                f"effects_topic={settings.effects_topic}",
                "--set",
                f"talon_api_key={API_KEY}",
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
                "--campaigns",
                ",".join(map(str, CAMPAIGNS)),
                "--rate",
                "500",
                "--lookback",
                f"{LOOKBACK_S}s",
                "--report-csv",
                str(totals_csv),
                "--events-csv",
                str(events_csv),
                "--diff-topic",
                diff_topic,
            ],
        )
        assert result.exit_code == 0, result.output
        log = emulator.state.request_log.entries(since=marker)
        base_url = emulator.base_url

        # The logged requests, sent again without their Idempotency-Key: Talon.One evaluates
        # them afresh (dry: nothing changed since), independently of what the what-if wrote.
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"ApiKey-v1 {API_KEY}"}
        ) as http:
            again = {
                entry["idempotencyKey"]: http.request(
                    entry["method"], entry["path"], params=entry["query"], json=entry["body"]
                ).json()
                for entry in log
            }
    assert committed(settings, [carts, orders]) == commits_before  # the group is untouched

    window = [r for r in records if SINCE_INDEX <= r["index"] < UNTIL_INDEX]
    diffs = [orjson.loads(value) for value in read_all(broker.bootstrap_servers, diff_topic)]
    by_request = {d["requestId"]: d for d in diffs}
    assert "records read: 1000 in the window, 800 before it (look-back)" in result.output

    # (a) Every call of the what-if was dry, and there was one per diff record.
    assert log
    assert all(entry["query"].get("dry") == "true" for entry in log)
    assert sorted(e["idempotencyKey"] for e in log) == sorted(by_request)
    assert all(not entry["replayed"] for entry in log)
    sessions = [e for e in log if e["operation"] == "updateCustomerSessionV2"]
    assert all(
        e["body"]["customerSession"]["evaluableCampaignIds"] == list(CAMPAIGNS) for e in sessions
    )
    assert all(
        e["body"]["evaluableCampaignIds"] == list(CAMPAIGNS)
        for e in log
        if e["operation"] != "updateCustomerSessionV2"
    )

    # (d) Nothing outside the window: each diff record is a window record, and every window
    # record is evaluated unless its type does not evaluate rules.
    coordinates = {r["coordinates"]: r for r in window}
    evaluated = [
        coordinates[(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"])]
        for d in diffs
    ]
    assert {r["type"] for r in evaluated}.isdisjoint(NOT_EVALUATED)
    assert len(diffs) == len(window) - sum(r["type"] in NOT_EVALUATED for r in window)
    assert all(
        since.timestamp() * 1000 <= r["timestamp"] < until.timestamp() * 1000 for r in evaluated
    )
    outside_only = {
        r["session"] for r in records if r["index"] < SINCE_INDEX or r["index"] >= UNTIL_INDEX
    }
    outside_only -= {r["session"] for r in window}
    assert outside_only
    assert not outside_only & {e["sessionId"] for e in log}
    assert f"skipped: {len(window) - len(diffs)}" in result.output

    # (c) Each customer's calls in event-time order, one at a time.
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in sorted(log, key=lambda e: e["started"]):
        diff = by_request[entry["idempotencyKey"]]
        for key in ("p:" + (diff["profileId"] or ""), "s:" + (diff["sessionId"] or "")):
            if len(key) > 2:
                by_customer[key].append({**entry, "timestamp": diff["source"]["timestamp"]})
    assert any(len(calls) > 2 for calls in by_customer.values())
    for calls in by_customer.values():
        stamps = [call["timestamp"] for call in calls]
        assert stamps == sorted(stamps)
        assert all(a["ended"] <= b["started"] for a, b in itertools.pairwise(calls))
    # ... while several customers' calls were in flight at once.
    starts = sorted(log, key=lambda e: e["started"])
    assert sum(a["ended"] > b["started"] for a, b in itertools.pairwise(starts)) > len(log) // 4

    # (b) The report's totals are what the diff records add up to ...
    rows = {int(row["campaign_id"]): row for row in csv.DictReader(totals_csv.open())}
    assert sorted(rows) == sorted(CAMPAIGNS)
    for side in ("live", "candidate"):
        expected = recomputed(diffs, side)
        for campaign in CAMPAIGNS:
            for measure in (
                "triggered",
                "discount",
                "discount_on_orders",
                "coupons_accepted",
                "coupons_rejected",
                "points_added",
                "points_added_on_orders",
                "points_deducted",
            ):
                shown = float(rows[campaign][f"{side}_{measure}"])
                assert shown == pytest.approx(expected[campaign].get(measure, 0), abs=0.011), (
                    side,
                    campaign,
                    measure,
                )
    # ... and the diff records' candidate effects are what Talon.One answers those requests.
    for request_id, answer in again.items():
        diff = by_request[request_id]
        assert signature(answer["effects"], set(CAMPAIGNS)) == signature(
            diff["candidate"]["effects"], set(CAMPAIGNS)
        )
    assert len(list(csv.DictReader(events_csv.open()))) == len(diffs)

    # The disabled campaign shows up only in the what-if; the live ones as they were live.
    assert float(rows[CANDIDATE]["live_triggered"]) == 0
    assert float(rows[CANDIDATE]["candidate_discount"]) > 0
    assert all(d["status"] == 200 and d["live"]["found"] for d in diffs)
    for diff in diffs:
        assert signature(diff["candidate"]["effects"], set(LIVE_CAMPAIGNS)) == signature(
            diff["live"]["effects"], set(LIVE_CAMPAIGNS)
        ), diff["source"]
    assert any(signature(d["live"]["effects"], {1}) for d in diffs)  # the coupon was used


def invoke_what_if(settings: Settings, key: str, *extra: str) -> Any:
    now = datetime.now(tz=UTC)
    return CliRunner().invoke(
        main,
        [
            "what-if",
            "--bootstrap-servers",
            settings.bootstrap_servers,
            "--input-topics",
            ",".join(settings.input_topics),
            "--talon-base-url",
            settings.talon_base_url,
            "--set",
            f"effects_topic={settings.effects_topic}",
            "--set",
            f"talon_api_key={key}",
            "--since",
            (now - timedelta(minutes=10)).isoformat(),
            "--until",
            (now + timedelta(minutes=1)).isoformat(),
            "--campaigns",
            "2",
            "--timeout",
            "5",
            *extra,
        ],
    )


def test_a_missing_topic_is_named_with_the_setting_to_fix(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    settings = worker_settings(broker, emulator, unique)
    broker.create_topics({settings.input_topics[0]: 1})
    result = invoke_what_if(settings, API_KEY)
    assert result.exit_code == 4, result.output
    assert f"the topic {settings.effects_topic!r} does not exist" in result.output
    assert "TALON_STREAM_EFFECTS_TOPIC" in result.output
    broker.create_topics({settings.effects_topic: 1})
    result = invoke_what_if(settings, API_KEY, "--diff-topic", f"nowhere-{unique}")
    assert result.exit_code == 4, result.output
    assert "(check --diff-topic)" in result.output
    assert emulator.state.request_log.entries() == []


def test_a_refused_api_key_stops_the_run_and_only_dry_calls_were_tried(
    broker: Broker, emulator: EmulatorServer, unique: str
) -> None:
    needs_offsets_for_times(broker)
    settings = worker_settings(broker, emulator, unique)
    broker.create_topics({settings.input_topics[0]: 1, settings.effects_topic: 1})
    cart = {"cartItems": [{"sku": "dtr003", "price": 200, "quantity": 1}]}
    value = orjson.dumps(
        {
            "eventId": "e-1",
            "type": "cart.updated",
            "occurredAt": datetime.now(tz=UTC).isoformat(),
            "profileId": "ada",
            "sessionId": "s-1",
            "payload": cart,
        }
    )
    produce(broker.bootstrap_servers, settings.input_topics[0], [(b"ada", value)])
    result = invoke_what_if(settings, "not-the-key")
    assert result.exit_code == 1, result.output
    assert "the what-if stopped: Talon.One refused the API key (HTTP 401" in result.output
    log = emulator.state.request_log.entries()
    assert log
    assert {(e["status"], e["query"].get("dry")) for e in log} == {(401, "true")}

"""``talon-stream what-if`` over a 20,000-event shop stream, end to end, with its checks.

A local broker, the emulator (its default campaigns, campaign 2 "10 off orders of 150 or more"
disabled, in a subprocess with ``--latency-ms``), a generated shop stream over two
co-partitioned topics (carts, and everything else) stamped ``--step-ms`` apart in event time,
a live worker over all of it first; then ``talon-stream what-if`` (the command, in a
subprocess) over the middle 60 % of the stream with campaigns 1, 2 and 5, once at ``--rate``
and once as fast as it goes. Reported per run: the window's records, the events evaluated and
skipped, the dry calls and their rate, and the checks — every call dry, each customer's calls
in event-time order and never overlapping, the CSV totals equal to what the diff records add
up to, and for the live campaigns (1, 5) the candidate effects equal to the live ones.

    .venv/bin/python bench/what_if.py                 # make bench-what-if
    .venv/bin/python bench/what_if.py --events 5000 --rate 100

Prints one line per run and writes bench/results/what_if.json with the CPU model.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Consumer, Producer
from run import cpu_model

from talon_stream import Settings, Worker
from talon_stream.demo import LOCAL_CONSUMER_SETTINGS, ShopSimulator, free_port, open_broker, spawn
from talon_stream.demo import terminate as stop_process

RESULTS = Path(__file__).parent / "results"
KEY = "bench-what-if-key"
PARTITIONS = 6
CAMPAIGNS = (1, 2, 5)
LIVE_CAMPAIGNS = {1, 5}
MEASURES = (
    "triggered",
    "discount",
    "discount_on_orders",
    "coupons_accepted",
    "coupons_rejected",
    "points_added",
    "points_added_on_orders",
    "points_deducted",
)


def campaign_file(directory: Path) -> Path:
    document = yaml.safe_load(
        files("talon_one_emulator").joinpath("campaigns/default.yaml").read_text("utf-8")
    )
    for campaign in document["campaigns"]:
        if campaign["id"] == 2:
            campaign["enabled"] = False
    path = directory / "campaigns.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def start_emulator(campaigns: Path, latency_ms: float) -> tuple[Any, str]:
    port = free_port()
    process = spawn(
        [
            sys.executable, "-m", "talon_stream.cli", "emulator", "--port", str(port),
            "--api-key", KEY, "--campaigns", str(campaigns), "--latency-ms", str(latency_ms),
            "--log-level", "warning",
        ]
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base_url}/__emulator/health", timeout=1).close()
        except OSError:
            time.sleep(0.1)
        else:
            return process, base_url
    raise RuntimeError("the emulator did not start")


def stream(count: int, seed: int, start_ms: int, step_ms: int) -> list[dict[str, Any]]:
    """Journeys of 2,000 customers, 50 at a time interleaved, ``step_ms`` apart."""
    simulator = ShopSimulator(seed=seed, customers=2000, poison_rate=0.0)
    rng = random.Random(seed)
    active: list[list[Any]] = []
    out: list[dict[str, Any]] = []
    while len(out) < count:
        while len(active) < 50:
            active.append(simulator.journey())
        journey = rng.choice(active)
        generated = journey.pop(0)
        if not journey:
            active.remove(journey)
        kind = orjson.loads(generated.value)["type"]
        out.append(
            {
                "cart": kind == "cart.updated",
                "type": kind,
                "key": generated.key,
                "value": generated.value,
                "timestamp": start_ms + len(out) * step_ms,
            }
        )
    return out


def produce(bootstrap: str, topics: dict[bool, str], records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for record in records:
        producer.produce(
            topics[record["cart"]],
            key=record["key"],
            value=record["value"],
            timestamp=record["timestamp"],
        )
        producer.poll(0)
    assert producer.flush(60) == 0


async def live(settings: Settings, count: int) -> Worker:
    worker = Worker(settings)
    task = asyncio.get_running_loop().create_task(worker.run())
    while worker.stats.outcomes < count:
        if task.done():
            task.result()
        await asyncio.sleep(0.1)
    worker.stop()
    await task
    return worker


def requests_since(base_url: str, seq: int) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/__emulator/requests?since={seq}", timeout=120) as r:
        entries: list[dict[str, Any]] = json.loads(r.read())
    return entries


def read_topic(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    try:
        while len(out) < count and time.monotonic() < deadline:
            messages = consumer.consume(1000, 0.5)
            out.extend(orjson.loads(m.value()) for m in messages if m.error() is None)
    finally:
        consumer.close()
    return out


def totals_of(diffs: list[dict[str, Any]], side: str) -> dict[int, Counter[str]]:
    totals: dict[int, Counter[str]] = {c: Counter() for c in CAMPAIGNS}
    for diff in diffs:
        if diff["error"] is not None:
            continue
        closing = diff["source"]["type"] == "order.placed"
        effects = diff["live"]["effects"] if side == "live" else diff["candidate"]["effects"]
        for campaign in CAMPAIGNS:
            own = [e for e in effects if e["campaignId"] == campaign]
            totals[campaign]["triggered"] += any(
                e["effectType"] not in ("rejectCoupon", "rejectReferral") for e in own
            )
            for e in own:
                kind, value = e["effectType"], e["props"].get("value")
                if kind.startswith("setDiscount"):
                    totals[campaign]["discount"] += value
                    totals[campaign]["discount_on_orders"] += value if closing else 0
                totals[campaign]["coupons_accepted"] += kind == "acceptCoupon"
                totals[campaign]["coupons_rejected"] += kind == "rejectCoupon"
                if kind == "addLoyaltyPoints":
                    totals[campaign]["points_added"] += value
                    totals[campaign]["points_added_on_orders"] += value if closing else 0
                if kind == "deductLoyaltyPoints":
                    totals[campaign]["points_deducted"] += value
    return totals


def signature(effects: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (e["campaignId"], e["effectType"], repr(e["props"].get("value")))
        for e in effects
        if e["campaignId"] in LIVE_CAMPAIGNS and e["effectType"] != "changeLoyaltyTierLevel"
    )


def why_changed(diff: dict[str, Any]) -> str:
    """The candidate campaign's effects; else, when the live campaigns' effects are the same
    but for tier changes (left out of ``signature``), the points the profiles hold today."""
    candidate, live = diff["candidate"]["effects"], diff["live"]["effects"]
    if any(e["campaignId"] == 2 for e in candidate + live):
        return "candidate campaign 2"
    if signature(candidate) == signature(live):
        return "tier change only (points held today)"
    return "live campaigns"


def what_if(
    settings: Settings,
    base_url: str,
    since: datetime,
    until: datetime,
    rate: float,
    lookback_s: int,
    diff_topic: str,
    workdir: Path,
) -> dict[str, Any]:
    marker = requests_since(base_url, 0)[-1]["seq"]
    totals_csv = workdir / f"totals-{diff_topic}.csv"
    command = [
        sys.executable, "-m", "talon_stream.cli", "what-if",
        "--bootstrap-servers", settings.bootstrap_servers,
        "--input-topics", ",".join(settings.input_topics),
        "--talon-base-url", base_url,
        "--set", f"effects_topic={settings.effects_topic}",
        "--since", since.isoformat(), "--until", until.isoformat(),
        "--campaigns", ",".join(map(str, CAMPAIGNS)), "--rate", str(rate),
        "--lookback", f"{lookback_s}s", "--report-csv", str(totals_csv),
        "--diff-topic", diff_topic,
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TALON_STREAM_TALON_API_KEY": KEY, "COLUMNS": "200"},
        timeout=3600,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"what-if failed ({done.returncode}): {done.stderr[-2000:]}")
    log = requests_since(base_url, marker)
    rows = {int(r["campaign_id"]): r for r in csv.DictReader(totals_csv.open())}
    evaluated = int(rows[CAMPAIGNS[0]]["events_evaluated"])
    diffs = read_topic(settings.bootstrap_servers, diff_topic, len(log))
    by_request = {d["requestId"]: d for d in diffs}
    order_ok = True
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in sorted(log, key=lambda e: e["started"]):
        diff = by_request[entry["idempotencyKey"]]
        for key in (diff["profileId"], diff["sessionId"]):
            if key:
                calls[key].append({**entry, "timestamp": diff["source"]["timestamp"]})
    for own in calls.values():
        order_ok &= [c["timestamp"] for c in own] == sorted(c["timestamp"] for c in own)
        order_ok &= all(a["ended"] <= b["started"] for a, b in itertools.pairwise(own))
    mismatched = 0
    for side in ("live", "candidate"):
        expected = totals_of(diffs, side)
        for campaign in CAMPAIGNS:
            for measure in MEASURES:
                shown = float(rows[campaign][f"{side}_{measure}"])
                mismatched += abs(shown - round(expected[campaign][measure], 2)) > 0.011
    live_differs = sum(
        signature(d["candidate"]["effects"]) != signature(d["live"]["effects"]) for d in diffs
    )
    changed = Counter(why_changed(d) for d in diffs if d["changed"])
    summary = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("records read", "evaluated", "skipped", "changed", "dry calls"))
    ]
    return {
        "rate_limit_per_s": rate,
        "elapsed_s": round(elapsed, 1),
        "dry_calls": len(log),
        "calls_per_s": round(len(log) / elapsed, 1),
        "evaluated": evaluated,
        "diff_records": len(diffs),
        "all_dry": all(e["query"].get("dry") == "true" for e in log),
        "customer_order_kept": order_ok,
        "csv_totals_mismatches": mismatched,
        "events_where_live_campaigns_differ": live_differs,
        "changed_events": dict(changed),
        "totals": {
            str(c): {
                side: {m: float(rows[c][f"{side}_{m}"]) for m in MEASURES}
                for side in ("live", "candidate")
            }
            for c in CAMPAIGNS
        },
        "summary": summary,
        "table": done.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--step-ms", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    broker = open_broker(announce=lambda line: print(line, flush=True))
    workdir = Path(tempfile.mkdtemp(prefix="what-if-bench-"))
    emulator, base_url = start_emulator(campaign_file(workdir), args.latency_ms)
    unique = uuid.uuid4().hex[:8]
    carts, orders = f"bench.carts-{unique}", f"bench.orders-{unique}"
    settings = Settings(
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"bench-what-if-{unique}",
        input_topics=(carts, orders),
        effects_topic=f"bench.effects-{unique}",
        dlq_topic=f"bench.dlq-{unique}",
        erasures_topic=f"bench.erasures-{unique}",
        talon_base_url=base_url,
        talon_api_key=KEY,
        effect_routes={},
        **LOCAL_CONSUMER_SETTINGS,
    )
    diff_topics = [f"bench.what-if-{unique}-{n}" for n in (1, 2)]
    try:
        broker.create_topics(
            {
                carts: PARTITIONS,
                orders: PARTITIONS,
                settings.effects_topic: PARTITIONS,
                settings.dlq_topic: 1,
                **dict.fromkeys(diff_topics, PARTITIONS),
            }
        )
        start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=2)
        records = stream(args.events, args.seed, int(start.timestamp() * 1000), args.step_ms)
        produce(broker.bootstrap_servers, {True: carts, False: orders}, records)
        began = time.monotonic()
        worker = asyncio.run(live(settings, args.events))
        live_s = time.monotonic() - began
        print(
            f"live worker: {args.events} events in {live_s:.1f} s, "
            f"{worker.stats.dead_lettered} dead-lettered",
            flush=True,
        )
        span_ms = args.events * args.step_ms
        since = start + timedelta(milliseconds=int(span_ms * 0.2))
        until = start + timedelta(milliseconds=int(span_ms * 0.8))
        window = sum(
            since.timestamp() * 1000 <= r["timestamp"] < until.timestamp() * 1000 for r in records
        )
        runs = []
        for rate, topic in zip((args.rate, 1_000_000.0), diff_topics, strict=True):
            result = what_if(settings, base_url, since, until, rate, 120, topic, workdir)
            runs.append(result)
            print(
                f"what-if at --rate {rate:g}: {result['evaluated']} of {window} window events "
                f"evaluated, {result['dry_calls']} dry calls in {result['elapsed_s']} s "
                f"({result['calls_per_s']}/s); all dry {result['all_dry']}, customer order "
                f"{result['customer_order_kept']}, CSV/diff mismatches "
                f"{result['csv_totals_mismatches']}, live campaigns differing on "
                f"{result['events_where_live_campaigns_differ']} events; changed "
                f"{result['changed_events']}",
                flush=True,
            )
        print(runs[-1]["table"])
        same = runs[0]["totals"] == runs[1]["totals"]
        out = {
            "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
            "cpu": cpu_model(),
            "broker": broker.description,
            "events": args.events,
            "window_events": window,
            "emulator_latency_ms": args.latency_ms,
            "live_worker_s": round(live_s, 1),
            "live_dead_lettered": worker.stats.dead_lettered,
            "runs": [{k: v for k, v in run.items() if k != "table"} for run in runs],
            "totals_equal_across_runs": same,
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "what_if.json").write_text(json.dumps(out, indent=2) + "\n")
        print(f"totals equal across the two runs: {same}; bench/results/what_if.json written")
    finally:
        stop_process(emulator)
        broker.stop()


if __name__ == "__main__":
    main()

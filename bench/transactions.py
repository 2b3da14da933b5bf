"""What exactly-once costs, by transaction interval: at-least-once and exactly-once side by side.

One broker, one input topic with the same events for every point; for each point a fresh
emulator and a fresh ``talon-stream run`` process that drains the input (events/s, worker and
broker CPU per event), then a paced phase at half the at-least-once rate — the same rate for
every point — timed from the input record to the moment a ``read_committed`` reader sees its
envelope (the latency a downstream service feels). Exactly-once points also report how many
transactions the worker committed and how long a commit took on average (its ``/metrics``).
At-least-once first, then the intervals in the order given; ``--rounds`` times over.

    .venv/bin/python bench/transactions.py            # make bench-eos: 50,100,250 ms, 3 rounds
    .venv/bin/python bench/transactions.py --intervals 25,100,1000 --rounds 1

Prints one line per point and writes bench/results/transactions.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from run import (
    Stack,
    cpu_model,
    emulator_statuses,
    measure_latency,
    produce_input,
    run_worker,
    shop_events,
    start_emulator,
)

from talon_stream.demo import free_port, open_broker, terminate

RESULTS = Path(__file__).parent / "results"


def scrape(port: int) -> dict[str, float]:
    """The worker's unlabelled and ``outcome``-labelled counters, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def run_point(
    stack: Stack,
    name: str,
    interval_ms: int | None,
    *,
    rate: float | None,
    paced_events: int,
    seed: int,
) -> dict[str, Any]:
    """One worker over the whole input, then its paced phase; ``interval_ms`` None means
    at-least-once, and ``rate`` None half of this worker's own rate."""
    port = free_port()
    env = {"TALON_STREAM_HEALTH_PORT": str(port), "TALON_STREAM_HEALTH_HOST": "127.0.0.1"}
    if interval_ms is not None:
        env["TALON_STREAM_TRANSACTION_INTERVAL_MS"] = str(interval_ms)
    broker_pid = getattr(stack.broker, "pid", None)  # an external broker's CPU is not ours
    result = run_worker(
        stack,
        name,
        "keyed",
        256,
        None,
        {"broker": broker_pid} if broker_pid is not None else {},
        exactly_once=interval_ms is not None,
        latency_to_arrival=True,
        env=env,
    )
    try:
        measure_latency(stack, result, rate or result["eps"] / 2, paced_events, seed)
        point: dict[str, Any] = {
            "guarantee": "at-least-once" if interval_ms is None else "exactly-once",
            "transaction_interval_ms": interval_ms,
            "eps": result["eps"],
            "worker_cpu_us_per_event": result["cpu_us_per_event"],
            **{
                f"{each}_cpu_us_per_event": cost
                for each, cost in result["neighbours_cpu_us_per_event"].items()
            },
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "paced_events_timed": len(result["latencies_ms"]),
        }
        if interval_ms is not None:
            metrics = scrape(port)
            committed = metrics.get('talon_stream_transactions_total{outcome="committed"}', 0.0)
            seconds = metrics.get("talon_stream_transaction_commit_seconds_total", 0.0)
            point["transactions"] = int(committed)
            point["mean_commit_ms"] = round(seconds / committed * 1000, 1) if committed else None
        return point
    finally:
        terminate(result["process"], grace_s=10)
        result["watch"].stop()


def describe(point: dict[str, Any]) -> str:
    label = (
        "at-least-once"
        if point["transaction_interval_ms"] is None
        else f"exactly-once {point['transaction_interval_ms']} ms"
    )
    line = (
        f"{label:<22}{point['eps']:>8.1f} events/s  {point['worker_cpu_us_per_event']:>5.0f} µs "
        f"worker CPU/event  p50 {point['p50_ms']:>7.1f} ms  p99 {point['p99_ms']:>7.1f} ms"
    )
    if "transactions" in point:
        line += f"  {point['transactions']} transactions, {point['mean_commit_ms']} ms each"
    return line


def summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per interval over the rounds, with the ratios to at-least-once's medians."""
    by_interval: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        key = str(point["transaction_interval_ms"] or "at-least-once")
        by_interval.setdefault(key, []).append(point)
    medians = {
        key: {
            field: round(statistics.median(p[field] for p in group), 1)
            for field in ("eps", "worker_cpu_us_per_event", "p50_ms", "p99_ms")
        }
        for key, group in by_interval.items()
    }
    base = medians.get("at-least-once")
    if base is not None:
        for key, median in medians.items():
            if key == "at-least-once":
                continue
            median["eps_vs_at_least_once"] = round(median["eps"] / base["eps"], 3)
            median["added_p50_ms"] = round(median["p50_ms"] - base["p50_ms"], 1)
            median["added_p99_ms"] = round(median["p99_ms"] - base["p99_ms"], 1)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--paced-events", type=int, default=6_000)
    parser.add_argument("--intervals", default="50,100,250", help="milliseconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULTS / "transactions.json")
    args = parser.parse_args()
    intervals = [int(each) for each in args.intervals.split(",")]

    broker = open_broker(announce=lambda line: print(line, flush=True))
    emulator, base_url = start_emulator(args.latency_ms)
    points: list[dict[str, Any]] = []
    refusals: dict[str, int] = {}
    try:
        topic = f"bench.txn.{uuid.uuid4().hex[:6]}"
        broker.create_topics({topic: 12})
        produced = produce_input(
            broker.bootstrap_servers, topic, shop_events(args.events, args.customers, args.seed)
        )
        stack = Stack(broker, base_url, topic, produced)
        print(f"{produced} events on {topic} (12 partitions, {args.customers} customers)")
        rate: float | None = None
        for round_ in range(args.rounds):
            for interval in [None, *intervals]:
                terminate(emulator)
                emulator, stack.base_url = start_emulator(args.latency_ms)
                name = f"r{round_}-{'alo' if interval is None else f'eos{interval}'}"
                point = run_point(
                    stack,
                    name,
                    interval,
                    rate=rate,
                    paced_events=args.paced_events,
                    seed=args.seed + 100 * round_,
                )
                if interval is None and rate is None:
                    rate = point["eps"] / 2  # every point's paced phase runs at this rate
                point["round"] = round_
                points.append(point)
                print(describe(point), flush=True)
                for status, count in emulator_statuses(stack.base_url).items():
                    if not status.startswith("2"):
                        refusals[status] = refusals.get(status, 0) + count
    finally:
        terminate(emulator)
        broker.stop()

    results = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "broker": broker.kind,
        "events": args.events,
        "customers": args.customers,
        "latency_ms": args.latency_ms,
        "paced_events": args.paced_events,
        "paced_rate_eps": round(rate or 0.0, 1),
        "latency_measured_to": "arrival at a read_committed (exactly-once) reader",
        "emulator_refusals": refusals,
        "medians": summary(points),
        "points": points,
    }
    print(json.dumps(results["medians"], indent=2))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

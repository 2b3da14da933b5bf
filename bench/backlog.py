"""The backlog benchmark: does a worker stay flat while it drains a big backlog?

Produces ``--events`` events over ``--customers`` customers (default 1,000,000 over 200,000), then
runs one worker (a child process) until every event has an outcome, and records at 10k, 100k and
1M outcomes (or the scaled equivalents): the worker's CPU per event over the stretch since the
previous checkpoint, its throughput, and its peak RSS. Prints a table and writes
bench/results/backlog.json.

    .venv/bin/python bench/backlog.py                     # make bench-backlog (~20 min)
    .venv/bin/python bench/backlog.py --events 100000 --customers 20000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from run import (
    Stack,
    cpu_model,
    proc_cpu_s,
    proc_peak_rss_mb,
    produce_input,
    run_worker_process,
    shop_events,
    start_emulator,
)

from talon_stream.demo import open_broker, terminate

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    checkpoints = sorted({args.events // 100, args.events // 10, args.events})

    broker = open_broker(announce=lambda line: print(line, flush=True))
    emulator, base_url = start_emulator(args.latency_ms)
    rows: list[dict[str, Any]] = []
    try:
        topic = "bench.backlog"
        broker.create_topics({topic: 12})
        started = time.monotonic()
        produced = produce_input(
            broker.bootstrap_servers, topic, shop_events(args.events, args.customers, args.seed)
        )
        print(f"{produced} events produced in {time.monotonic() - started:.0f} s", flush=True)
        stack = Stack(broker, base_url, topic, produced)
        process, watch = run_worker_process(stack, "backlog", "keyed", args.in_flight)
        try:
            if not watch.wait_for(1, 60):
                raise SystemExit("no outcome within 60 s")
            last_count, last_cpu, last_time = 0, proc_cpu_s(process.pid), time.monotonic()
            for checkpoint in checkpoints:
                if not watch.wait_for(checkpoint, 3600):
                    raise SystemExit(f"only {watch.count} outcomes")
                cpu, now = proc_cpu_s(process.pid), time.monotonic()
                events = watch.count - last_count
                row = {
                    "outcomes": checkpoint,
                    "cpu_us_per_event": round((cpu - last_cpu) / events * 1e6, 1),
                    "eps": round(events / (now - last_time), 1),
                    "peak_rss_mb": round(proc_peak_rss_mb(process.pid), 1),
                }
                rows.append(row)
                print(
                    f"{checkpoint:>9} outcomes: {row['cpu_us_per_event']:>7.1f} µs CPU/event, "
                    f"{row['eps']:>8.1f} events/s, peak RSS {row['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
                last_count, last_cpu, last_time = watch.count, cpu, now
        finally:
            terminate(process, grace_s=10)
            watch.stop()
    finally:
        terminate(emulator)
        broker.stop()
    costs = [row["cpu_us_per_event"] for row in rows]
    result = {
        "events": produced,
        "customers": args.customers,
        "latency_ms": args.latency_ms,
        "in_flight": args.in_flight,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "broker": broker.kind,
        "checkpoints": rows,
        "peak_rss_mb": max(row["peak_rss_mb"] for row in rows),
        "cost_spread": round(max(costs) / min(costs) - 1, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backlog.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Calls per cart event after a Talon.One outage, with and without coalescing, side by side.

Carts keep arriving at ``--rate`` per second over ``--sessions`` open sessions (each event a
whole cart, as a shop sends it) while Talon.One answers 503 to everything for ``--outage-s``
seconds; the worker halts, the backlog piles up in Kafka, and drains once Talon.One is back.
The same events run through a worker with ``TALON_STREAM_COALESCE_CART_UPDATES=true`` and one
with it off, each against a fresh emulator (50 ms latency). Reported per run: successful calls
made from the outage's start ÷ cart events produced from then on (the drain), the calls saved,
and whether every session ended exactly as in the other run (cart items, attributes, state,
read back from each emulator).

    .venv/bin/python bench/outage.py            # make bench-outage
    .venv/bin/python bench/outage.py --rate 300 --outage-s 10 --sessions 1000

Prints one line per run and writes bench/results/outage.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from run import KEY, Stack, cpu_model, run_worker_process, start_emulator

from talon_stream.demo import CATALOG, open_broker, terminate

RESULTS = Path(__file__).parent / "results"


def cart_events(count: int, sessions: int, seed: int) -> list[tuple[bytes, int, dict[str, Any]]]:
    """``count`` cart updates over ``sessions`` sessions: (key, session number, event)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        number = rng.randrange(sessions)
        items = [
            {"sku": sku, "name": name, "price": price, "quantity": rng.randint(1, 3)}
            | {"category": category, "attributes": {"color": color}}
            for sku, name, price, category, color in rng.sample(CATALOG, rng.randint(1, 4))
        ]
        event = {
            "eventId": f"cart-{n}",
            "type": "cart.updated",
            "profileId": f"customer-{number:05d}",
            "sessionId": f"outage-session-{number:05d}",
            "payload": {"cartItems": items, "attributes": {"channel": rng.choice(["web", "app"])}},
        }
        out.append((f"customer-{number:05d}".encode(), number, event))
    return out


def put_faults(base_url: str, settings: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{base_url}/__emulator/faults",
        data=orjson.dumps(settings),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def request_log(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/__emulator/requests", timeout=60) as response:
        entries: list[dict[str, Any]] = json.loads(response.read())
    return entries


def session_state(base_url: str, session_id: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}/v2/customer_sessions/{session_id}",
        headers={"Authorization": f"ApiKey-v1 {KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        session = orjson.loads(response.read())["customerSession"]
    return {
        "state": session.get("state"),
        "attributes": session.get("attributes"),
        "cartItems": [
            (item["sku"], item["quantity"], item["price"]) for item in session.get("cartItems", [])
        ],
    }


def feed(
    bootstrap: str,
    topic: str,
    events: list[tuple[bytes, int, dict[str, Any]]],
    rate: float,
    moments: dict[str, float],
    outage_at: int,
    on_outage: Any,
) -> None:
    """Produce the events at ``rate`` per second, each stamped when it is sent; call
    ``on_outage`` when event ``outage_at`` is due."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    started = time.monotonic()
    for n, (key, _number, event) in enumerate(events):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if n == outage_at:
            moments["outage"] = time.time()
            on_outage()
        event["occurredAt"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        producer.produce(topic, key=key, value=orjson.dumps(event))
        producer.poll(0)
    producer.flush(30)
    moments["fed"] = time.time()


def one_run(
    broker: Any,
    name: str,
    coalesce: bool,
    events: list[tuple[bytes, int, dict[str, Any]]],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    emulator, base_url = start_emulator(50.0)
    topic = f"bench.outage.{name}.{uuid.uuid4().hex[:6]}"
    broker.create_topics({topic: 12})
    stack = Stack(broker, base_url, topic, len(events))
    env = {
        "TALON_STREAM_COALESCE_CART_UPDATES": "true" if coalesce else "false",
        "TALON_STREAM_UNREACHABLE_HALT_AFTER_S": "2",
        "TALON_STREAM_RETRY_MAX_BACKOFF_S": "2",
    }
    process, watch = run_worker_process(stack, name, "keyed", 256, env=env)
    try:
        time.sleep(5)  # the worker joins the group
        outage_at = int(args.rate * args.before_s)
        moments: dict[str, float] = {}
        outage = {
            "latency": {"distribution": "fixed", "ms": 50},
            "outages": [{"startAfterSeconds": 0, "seconds": args.outage_s}],
        }
        feeder = threading.Thread(
            target=feed,
            args=(
                broker.bootstrap_servers,
                topic,
                events,
                args.rate,
                moments,
                outage_at,
                lambda: put_faults(base_url, outage),
            ),
        )
        feeder.start()
        feeder.join()
        if not watch.wait_for(len(events), 600):
            raise SystemExit(f"{name}: only {watch.count} of {len(events)} outcomes")
        drained = time.time()
        log = request_log(base_url)
        put_faults(base_url, {})  # no latency for reading the sessions back
        calls_after = [
            entry
            for entry in log
            if entry["operation"] == "updateCustomerSessionV2"
            and 200 <= entry["status"] < 300
            and entry["started"] >= moments["outage"]
        ]
        events_after = len(events) - outage_at
        sessions = sorted({number for _key, number, _event in events})
        with ThreadPoolExecutor(32) as pool:
            states = dict(
                zip(
                    (f"outage-session-{n:05d}" for n in sessions),
                    pool.map(
                        lambda n: session_state(base_url, f"outage-session-{n:05d}"), sessions
                    ),
                    strict=True,
                )
            )
        result = {
            "coalesce": coalesce,
            "events": len(events),
            "events_from_outage_start": events_after,
            "calls_from_outage_start": len(calls_after),
            "calls_per_event_from_outage_start": round(len(calls_after) / events_after, 3),
            "drain_s_after_feed": round(drained - moments["fed"], 1),
            "refused_calls": sum(1 for e in log if e["status"] == 400),
        }
        return result, states
    finally:
        terminate(process, grace_s=10)
        watch.stop()
        terminate(emulator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="cart events per second")
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--before-s", type=float, default=5.0, help="feeding before the outage")
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--after-s", type=float, default=10.0, help="feeding after the outage")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "outage.json")
    args = parser.parse_args()
    count = int(args.rate * (args.before_s + args.outage_s + args.after_s))
    broker = open_broker(announce=lambda line: print(line, flush=True))
    runs: list[dict[str, Any]] = []
    states: list[dict[str, dict[str, Any]]] = []
    try:
        for coalesce in (True, False):
            events = cart_events(count, args.sessions, args.seed)
            name = "coalesced" if coalesce else "one-by-one"
            result, state = one_run(broker, name, coalesce, events, args)
            runs.append(result)
            states.append(state)
            print(
                f"{name:<11} {result['calls_from_outage_start']:>6} calls for "
                f"{result['events_from_outage_start']} cart events from the outage's start = "
                f"{result['calls_per_event_from_outage_start']:.3f} calls per event; "
                f"drained {result['drain_s_after_feed']} s after the feed",
                flush=True,
            )
    finally:
        broker.stop()
    differing = sorted(key for key in states[0] if states[0][key] != states[1].get(key))
    print(f"sessions whose final state differs between the runs: {len(differing)}")
    results = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_model": cpu_model(),
        "broker": broker.kind,
        "rate": args.rate,
        "sessions": args.sessions,
        "outage_s": args.outage_s,
        "runs": runs,
        "sessions_compared": len(states[0]),
        "sessions_differing": len(differing),
        "differing_examples": differing[:5],
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""The rebalance pause, classic protocol against KIP-848's consumer protocol, side by side.

Two workers (``talon-stream run`` processes) share a group over a 12-partition topic fed at a
steady rate; once both hold partitions and outcomes flow, one of them leaves (SIGTERM: it
drains, commits and leaves the group) or, with ``--leave kill``, dies (SIGKILL: the group
learns it only when its session expires — the worker's ``session_timeout_ms`` under the classic
protocol, the broker's ``group.consumer.session.timeout.ms`` under KIP-848). The pause of a
partition is the longest gap between two outcomes of its records around that moment; the figure
is the longest pause over the partitions the leaver held — the time from a member leaving until
every partition is consumed again. Each protocol runs ``--rounds`` times, alternating, in one
run on one broker.

    .venv/bin/python bench/rebalance.py             # make bench-rebalance
    .venv/bin/python bench/rebalance.py --rounds 5
    .venv/bin/python bench/rebalance.py --leave kill --results bench/results/rebalance-kill.json

Needs Apache Kafka 4 (KIP-848); prints one JSON line and writes bench/results/rebalance.json
with the CPU model.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from run import cpu_model, shop_events  # noqa: E402  (bench/run.py, beside this script)

from talon_one_emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from talon_stream.demo import Broker, open_broker  # noqa: E402
from tests.chaos.harness import WorkerProcess, wait_until, worker_env  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PARTITIONS = 12
API_KEY = "bench-rebalance-key"


def progress(message: str) -> None:
    print(f"[rebalance {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Feed(threading.Thread):
    """Produces ``rate`` events per second, round-robin over many customers, until stopped."""

    def __init__(self, bootstrap: str, topic: str, rate: float) -> None:
        super().__init__(name="feed", daemon=True)
        # Idempotent: a retried batch never lands behind a later one (a customer out of order).
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
        )
        self._topic = topic
        self._rate = rate
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        started = time.monotonic()
        # Shopper journeys as the throughput benchmark makes them: valid, in order per customer.
        events = shop_events(10**9, 2000, seed=17, prefix=f"rb{uuid.uuid4().hex[:6]}")
        while not self.stopping.is_set():
            due = int((time.monotonic() - started) * self._rate)
            while self.sent < due:
                key, value = next(events)
                self._producer.produce(self._topic, key=key, value=value)
                self.sent += 1
            self._producer.poll(0)
            time.sleep(0.005)
        self._producer.flush(10)


class Arrivals(threading.Thread):
    """Reads the effects topic and keeps, per source partition, when each outcome arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name="arrivals", daemon=True)
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"rebalance-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
            }
        )
        self._consumer.subscribe([topic])
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.times: dict[int, list[float]] = defaultdict(list)

    def run(self) -> None:
        while not self.stopping.is_set():
            for message in self._consumer.consume(500, 0.05):
                value = message.value()
                if message.error() is not None or value is None:
                    continue
                partition = int(orjson.loads(value)["source"]["partition"])
                with self.lock:
                    self.times[partition].append(time.monotonic())
        self._consumer.close()

    def pauses(self, since: float, until: float) -> dict[int, float]:
        """Per partition, the longest gap between outcomes that touches [since, until]."""
        found = {}
        with self.lock:
            for partition, times in self.times.items():
                around = [t for t in times if since - 5 <= t <= until]
                gaps = [
                    later - earlier
                    for earlier, later in itertools.pairwise(around)
                    if later >= since
                ]
                found[partition] = max(gaps, default=until - since)
        return found


async def one_round(
    broker: Broker,
    emulator: EmulatorServer,
    workdir: Path,
    protocol: str,
    rate: float,
    leave: str = "term",
) -> dict[str, Any]:
    unique = uuid.uuid4().hex[:8]
    topics = {"input": f"rb-in-{unique}", "effects": f"rb-fx-{unique}", "dlq": f"rb-dlq-{unique}"}
    broker.create_topics(
        {topics["input"]: PARTITIONS, topics["effects"]: PARTITIONS, topics["dlq"]: 1}
    )
    env = worker_env(
        {
            "bootstrap_servers": broker.bootstrap_servers,
            "group_id": f"rb-{unique}",
            "input_topics": (topics["input"],),
            "effects_topic": topics["effects"],
            "dlq_topic": topics["dlq"],
            "talon_base_url": emulator.base_url,
            "talon_api_key": API_KEY,
            "group_protocol": protocol,
        }
    )
    arrivals = Arrivals(broker.bootstrap_servers, topics["effects"])
    arrivals.start()
    feed = Feed(broker.bootstrap_servers, topics["input"], rate)
    feed.start()
    stayer = WorkerProcess(env, workdir / f"{protocol}-{unique}-stayer.log")
    leaver = WorkerProcess(env, workdir / f"{protocol}-{unique}-leaver.log")
    try:
        stayer.start()
        await asyncio.sleep(3)
        leaver.start()
        # Both members settled: every partition has had outcomes for a few seconds.
        await asyncio.sleep(10)
        await wait_until(
            lambda: len(arrivals.times) == PARTITIONS, timeout_s=60, what="all partitions"
        )
        left = time.monotonic()
        if leave == "kill":
            leaver.kill()
            code, drain_s = -9, 0.0
        else:
            code, drain_s = await leaver.terminate(30)
        # Long enough for a dead member's session to expire and its partitions to move.
        await asyncio.sleep(8 if leave == "term" else 15)
        pauses = arrivals.pauses(left, time.monotonic())
    finally:
        feed.stopping.set()
        leaver.kill()
        stayer.kill()
        arrivals.stopping.set()
        feed.join(15)
        arrivals.join(15)
    ranked = sorted(pauses.values())
    return {
        "protocol": protocol,
        "leaver_exit": code,
        "leaver_drain_s": round(drain_s, 2),
        "max_pause_s": round(ranked[-1], 2),
        "median_pause_s": round(statistics.median(ranked), 2),
    }


async def run(rounds: int, rate: float, workdir: Path, leave: str = "term") -> dict[str, Any]:
    broker = open_broker(announce=progress)
    try:
        if broker.kind != "apache-kafka":
            raise SystemExit(f"KIP-848 needs Apache Kafka 4; the broker here is {broker.kind}")
        results: list[dict[str, Any]] = []
        with EmulatorServer(EmulatorConfig(api_keys=[API_KEY], latency_ms=5)) as emulator:
            for index in range(rounds):
                for protocol in (
                    ("classic", "consumer") if index % 2 == 0 else ("consumer", "classic")
                ):
                    result = await one_round(broker, emulator, workdir, protocol, rate, leave)
                    progress(json.dumps(result))
                    results.append(result)
    finally:
        broker.stop()
    summary: dict[str, Any] = {}
    for protocol in ("classic", "consumer"):
        mine = [r["max_pause_s"] for r in results if r["protocol"] == protocol]
        summary[protocol] = {
            "median_of_max_pause_s": round(statistics.median(mine), 2),
            "max_pause_s": mine,
        }
    return {"broker": broker.kind, "leave": leave, "rounds": results, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0, help="events per second fed")
    parser.add_argument(
        "--leave",
        choices=("term", "kill"),
        default="term",
        help="term: the member leaves (SIGTERM); kill: it dies (SIGKILL)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS / "rebalance.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rebalance-") as scratch:
        line = asyncio.run(run(args.rounds, args.rate, Path(scratch), args.leave))
    line = {
        "command": " ".join(["bench/rebalance.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu_model": cpu_model(),
        **line,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(line, indent=2) + "\n")
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

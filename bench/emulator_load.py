"""Load test of the Talon.One emulator: session updates per second over loopback.

Starts the emulator as a subprocess (``python -m workers.cli emulator --port P --api-key K``),
keeps ``--concurrency`` session updates in flight with one aiohttp client, each to a new session
ID with a typical three-item cart and the connector's default ``responseContent``, and prints the
request rate and how much CPU the emulator process used (from ``/proc``, so Linux only).

    python bench/emulator_load.py --requests 60000 --concurrency 64

``--url`` load-tests an emulator that is already running instead (no CPU figure then).
Extra arguments after ``--`` go to the emulator command, e.g. ``-- --latency 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

CART = [
    {
        "name": "Red Spring Blouse",
        "sku": "rsb002",
        "quantity": 1,
        "price": 49,
        "category": "Blouses",
    },
    {"name": "Denim Trousers", "sku": "dtr003", "quantity": 2, "price": 74, "category": "Trousers"},
    {"name": "Trainers", "sku": "trn010", "quantity": 1, "price": 89.9, "category": "Shoes"},
]


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    statuses: Counter[int]
    server_cpu: float | None
    client_cpu: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the command: state(0) ... utime(11) stime(12), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _start_emulator(port: int, key: str, extra: list[str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "workers.cli",
        "emulator",
        "--port",
        str(port),
        "--api-key",
        key,
        "--log-level",
        "warning",
        *extra,
    ]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise SystemExit(f"the emulator exited: {stderr.decode(errors='replace')[-500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/__emulator/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the emulator did not start within 30 s")


def _body(profile: int) -> bytes:
    return orjson.dumps(
        {
            "customerSession": {
                "profileId": f"load-cust-{profile}",
                "state": "open",
                "cartItems": CART,
            },
            "responseContent": ["customerSession", "customerProfile"],
        }
    )


async def _load(
    base_url: str, key: str, total: int, concurrency: int, prefix: str, profiles: int
) -> tuple[float, Counter[int], list[float]]:
    headers = {"Authorization": f"ApiKey-v1 {key}", "Content-Type": "application/json"}
    bodies = [_body(index) for index in range(profiles)]
    counter = itertools.count()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def worker() -> None:
            while (index := next(counter)) < total:
                url = f"{base_url}/v2/customer_sessions/{prefix}-{index}"
                sent = time.perf_counter()
                async with http.put(url, data=bodies[index % profiles]) as response:
                    await response.read()
                    statuses[response.status] += 1
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses, latencies


def run(args: argparse.Namespace) -> Result:
    process: subprocess.Popen[bytes] | None = None
    base_url = args.url
    if base_url is None:
        port = args.port or _free_port()
        process = _start_emulator(port, args.api_key, args.emulator_args)
        base_url = f"http://127.0.0.1:{port}"
    try:
        if args.warmup:
            asyncio.run(
                _load(base_url, args.api_key, args.warmup, args.concurrency, "warm", args.profiles)
            )
        cpu_before = _cpu_seconds(process.pid) if process is not None else None
        client_before = time.process_time()
        prefix = f"load-{os.getpid()}-{time.time_ns()}"
        seconds, statuses, latencies = asyncio.run(
            _load(base_url, args.api_key, args.requests, args.concurrency, prefix, args.profiles)
        )
        client_cpu = time.process_time() - client_before
        server_cpu = None
        if process is not None and cpu_before is not None:
            server_cpu = _cpu_seconds(process.pid) - cpu_before
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return Result(args.requests, seconds, statuses, server_cpu, client_cpu, latencies)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60_000, help="measured session updates")
    parser.add_argument("--warmup", type=int, default=5_000, help="unmeasured updates first")
    parser.add_argument("--concurrency", type=int, default=64, help="requests kept in flight")
    parser.add_argument("--profiles", type=int, default=1_000, help="distinct customer profiles")
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--url", default=None, help="use a running emulator at this base URL")
    parser.add_argument("emulator_args", nargs="*", help="after --: extra emulator options")
    args = parser.parse_args(argv)

    result = run(args)
    ok = result.statuses.get(200, 0)
    print(f"requests:        {result.requests} ({dict(sorted(result.statuses.items()))})")
    print(f"concurrency:     {args.concurrency}")
    print(f"elapsed:         {result.seconds:.2f} s")
    print(f"throughput:      {result.rate:,.0f} requests/s ({ok / result.seconds:,.0f} 200s/s)")
    print(
        f"latency:         p50 {result.percentile(0.5) * 1000:.2f} ms, "
        f"p99 {result.percentile(0.99) * 1000:.2f} ms"
    )
    if result.server_cpu is not None:
        busy = result.server_cpu / result.seconds
        print(
            f"emulator CPU:    {result.server_cpu:.2f} s ({busy:.0%} of one core; "
            f"{result.requests / result.server_cpu:,.0f} requests per CPU-second)"
        )
    print(f"load client CPU: {result.client_cpu:.2f} s ({result.client_cpu / result.seconds:.0%})")
    if ok != result.requests:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

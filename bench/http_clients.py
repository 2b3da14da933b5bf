"""Which HTTP client should the worker's Talon.One calls use? Measured side by side, one run.

Starts the emulator with a fixed latency, then for each client and each in-flight level keeps that
many session updates in flight and reports requests/s and this process's CPU per request
(user+sys ÷ requests). Prints a table and writes bench/results/http_clients.json
(``http_clients_uvloop.json`` with ``--loop uvloop``).

Contenders: ``httpx``, ``httpx+aiohttp``, ``aiohttp-talon`` and ``native`` (``TalonClient`` on
each of its transports, what the worker can use) and ``aiohttp`` (a bare ``ClientSession``, no
Talon.One client around it).

    .venv/bin/python bench/http_clients.py [--latency-ms 50] [--requests 3000] [--in-flight 64,256]
        [--clients native,aiohttp-talon,...] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from httpx_aiohttp import AiohttpTransport

from talon_stream.core import Operation, TalonCall
from talon_stream.demo import spawn_emulator, terminate
from talon_stream.talon import HttpClientKind, TalonClient

KEY = "bench-key"
CLIENTS = ("httpx", "httpx+aiohttp", "aiohttp", "aiohttp-talon", "native")
RESULTS = Path(__file__).parent / "results"


def cart_call(n: int) -> TalonCall:
    body = {
        "customerSession": {
            "state": "open",
            "profileId": f"bench-{n % 5000}",
            "cartItems": [
                {"sku": "SKU-BLOUSE-RS", "name": "Red Spring Blouse", "price": 49, "quantity": 1},
                {"sku": "SKU-TROUSERS-DN", "name": "Denim Trousers", "price": 74, "quantity": 1},
                {"sku": "SKU-TEE-WH", "name": "White Tee", "price": 19, "quantity": 2},
            ],
        },
        "responseContent": ["customerSession"],
    }
    return TalonCall(Operation.UPDATE_CUSTOMER_SESSION, f"bench-s-{n}", body)


async def drive(send: Callable[[int], Awaitable[None]], requests: int, in_flight: int) -> float:
    """Keep ``in_flight`` calls running until ``requests`` are done; returns the seconds taken."""
    counter = iter(range(requests))

    async def lane() -> None:
        for n in counter:
            await send(n)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return time.perf_counter() - started


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(name: str, base_url: str, requests: int, in_flight: int) -> dict[str, Any]:
    if name == "aiohttp":
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(
            base_url,
            connector=connector,
            headers={"Authorization": f"ApiKey-v1 {KEY}", "Content-Type": "application/json"},
        ) as session:

            async def send(n: int) -> None:
                call = cart_call(n)
                async with session.put(call.path, data=orjson.dumps(call.body)) as response:
                    orjson.loads(await response.read())
                    assert response.status == 200

            await drive(send, 200, in_flight)  # warm-up: open the connections
            cpu, seconds = cpu_seconds(), await drive(send, requests, in_flight)
            cpu = cpu_seconds() - cpu
    else:
        kind: HttpClientKind = {"native": "native", "aiohttp-talon": "aiohttp"}.get(name, "httpx")
        transport = AiohttpTransport() if name == "httpx+aiohttp" else None
        client = TalonClient(
            base_url, KEY, http_client=kind, max_connections=in_flight, httpx_transport=transport
        )
        async with client:

            async def send(n: int) -> None:
                await client.send(cart_call(n))

            await drive(send, 200, in_flight)
            cpu, seconds = cpu_seconds(), await drive(send, requests, in_flight)
            cpu = cpu_seconds() - cpu
    return {
        "client": name,
        "in_flight": in_flight,
        "requests_per_s": round(requests / seconds, 1),
        "client_cpu_us_per_request": round(cpu / requests * 1e6, 1),
    }


def start_emulator(latency_ms: float) -> tuple[Any, str]:
    return spawn_emulator(KEY, latency_ms=latency_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", default="64,256")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated contenders")
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the client's event loop"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.in_flight.split(",")]
    names = [name for name in args.clients.split(",") if name]
    unknown = set(names) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))} (known: {', '.join(CLIENTS)})")
    loop_factory = uvloop.new_event_loop if args.loop == "uvloop" else None
    process, base_url = start_emulator(args.latency_ms)
    rows = []
    try:
        for in_flight in levels:
            for name in names:
                with asyncio.Runner(loop_factory=loop_factory) as runner:
                    row = runner.run(measure(name, base_url, args.requests, in_flight))
                rows.append(row)
                print(
                    f"{row['client']:<14} in flight {in_flight:>4}: "
                    f"{row['requests_per_s']:>8.1f} req/s  "
                    f"{row['client_cpu_us_per_request']:>8.1f} µs CPU/request",
                    flush=True,
                )
    finally:
        terminate(process)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "latency_ms": args.latency_ms,
        "loop": args.loop,
        "requests": args.requests,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
    }
    name = "http_clients.json" if args.loop == "asyncio" else f"http_clients_{args.loop}.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

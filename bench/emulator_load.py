"""Load test of the Talon.One emulator: session updates per second over loopback.

Starts the emulator as a subprocess (``python -m talon_stream.cli emulator --port P --api-key K``),
keeps ``--concurrency`` session updates in flight (one keep-alive connection each), every one to
a new session ID with a typical three-item cart and the connector's default ``responseContent``
(``customerSession``, ``customerProfile``), and prints the request rate, latency percentiles and
the CPU the emulator process used (from ``/proc``, so Linux only)::

    python bench/emulator_load.py --requests 60000 --concurrency 32

Two load clients:

* ``--client raw`` (default): HTTP/1.1 over asyncio protocols, requests built as bytes. It
  needs ~75 µs of CPU per request on the development VM, a sixth of the emulator's, so the
  emulator, not the client, is what is measured.
* ``--client aiohttp``: an ``aiohttp.ClientSession``. It needs ~300 µs of CPU per request on
  the same VM, close to the emulator's, so it saturates first (1,350-1,700/s there).

Both use uvloop when it is installed. ``--url`` load-tests an emulator that is already running
(no CPU figure then). Arguments after ``--`` go to the emulator command, e.g.
``-- --latency uniform:1:5``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")

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


@dataclass(slots=True)
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    tally: Tally
    server_cpu: float | None
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.tally.latencies)
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
        "talon_stream.cli",
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


@dataclass(frozen=True, slots=True)
class Plan:
    base_url: str
    key: str
    total: int
    concurrency: int
    prefix: str
    bodies: list[bytes]

    def path(self, index: int) -> str:
        return f"/v2/customer_sessions/{self.prefix}-{index}"

    def body(self, index: int) -> bytes:
        return self.bodies[index % len(self.bodies)]


# --- raw client -------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._try_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc or ConnectionError("connection closed"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return self._waiter

    def _try_complete(self) -> None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        marker = head.find(b"content-length:")
        length = 0
        if marker >= 0:
            line_end = head.find(b"\r\n", marker)
            length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)])
        if len(buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del buffer[: end + 4 + length]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _load_raw(plan: Plan, tally: Tally) -> float:
    parts = urlsplit(plan.base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    counter = itertools.count()
    head = (
        f"Host: {host}:{port}\r\nAuthorization: ApiKey-v1 {plan.key}\r\n"
        "Content-Type: application/json\r\n"
    )

    async def worker(connection: _Connection) -> None:
        while (index := next(counter)) < plan.total:
            body = plan.body(index)
            request = (
                f"PUT {plan.path(index)} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            sent = time.perf_counter()
            status = await connection.request(request)
            tally.latencies.append(time.perf_counter() - sent)
            tally.statuses[status] += 1

    connections = []
    for _ in range(plan.concurrency):
        _, protocol = await loop.create_connection(_Connection, host, port)
        connections.append(protocol)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(connection) for connection in connections))
        return time.perf_counter() - started
    finally:
        for connection in connections:
            connection.close()


# --- aiohttp client ---------------------------------------------------------------------------


async def _load_aiohttp(plan: Plan, tally: Tally) -> float:
    headers = {"Authorization": f"ApiKey-v1 {plan.key}", "Content-Type": "application/json"}
    counter = itertools.count()
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def worker() -> None:
            while (index := next(counter)) < plan.total:
                sent = time.perf_counter()
                url = plan.base_url + plan.path(index)
                async with http.put(url, data=plan.body(index)) as response:
                    await response.read()
                    tally.statuses[response.status] += 1
                tally.latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
        return time.perf_counter() - started


CLIENTS: dict[str, Callable[[Plan, Tally], Coroutine[Any, Any, float]]] = {
    "raw": _load_raw,
    "aiohttp": _load_aiohttp,
}


def _run_loop(coroutine: Coroutine[Any, Any, float]) -> float:
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.run(coroutine)
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def run(args: argparse.Namespace) -> Result:
    process: subprocess.Popen[bytes] | None = None
    base_url = args.url
    if base_url is None:
        port = args.port or _free_port()
        process = _start_emulator(port, args.api_key, args.emulator_args)
        base_url = f"http://127.0.0.1:{port}"
    client = CLIENTS[args.client]
    bodies = [_body(index) for index in range(args.profiles)]
    stamp = f"{os.getpid()}-{time.time_ns()}"
    try:
        if args.warmup:
            warm = Plan(base_url, args.api_key, args.warmup, args.concurrency, f"w{stamp}", bodies)
            _run_loop(client(warm, Tally()))
        cpu_before = _cpu_seconds(process.pid) if process is not None else None
        client_before = time.process_time()
        plan = Plan(base_url, args.api_key, args.requests, args.concurrency, f"m{stamp}", bodies)
        tally = Tally()
        seconds = _run_loop(client(plan, tally))
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
    return Result(args.requests, seconds, tally, server_cpu, client_cpu)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60_000, help="measured session updates")
    parser.add_argument("--warmup", type=int, default=5_000, help="unmeasured updates first")
    parser.add_argument("--concurrency", type=int, default=32, help="requests kept in flight")
    parser.add_argument("--profiles", type=int, default=1_000, help="distinct customer profiles")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--url", default=None, help="use a running emulator at this base URL")
    parser.add_argument("emulator_args", nargs="*", help="after --: extra emulator options")
    args = parser.parse_args(argv)

    result = run(args)
    statuses = result.tally.statuses
    ok = statuses.get(200, 0)
    print(f"requests:        {result.requests} ({dict(sorted(statuses.items()))})")
    print(f"client:          {args.client}, {args.concurrency} in flight")
    print(f"elapsed:         {result.seconds:.2f} s")
    print(f"throughput:      {result.rate:,.0f} requests/s ({ok / result.seconds:,.0f} 200s/s)")
    print(
        f"latency:         p50 {result.percentile(0.5) * 1000:.2f} ms, "
        f"p99 {result.percentile(0.99) * 1000:.2f} ms"
    )
    if result.server_cpu is not None:
        busy = result.server_cpu / result.seconds
        per_cpu_second = result.requests / result.server_cpu if result.server_cpu else 0.0
        print(
            f"emulator CPU:    {result.server_cpu:.2f} s ({busy:.0%} of one core; "
            f"{per_cpu_second:,.0f} requests per CPU-second)"
        )
    print(f"load client CPU: {result.client_cpu:.2f} s ({result.client_cpu / result.seconds:.0%})")
    if ok != result.requests:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

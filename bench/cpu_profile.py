"""Where the worker's CPU goes: ``make bench``'s talon_stream run sampled with py-spy.

Runs ``bench/run.py --only talon_stream`` (the same 60,000 events, emulator and settings), attaches
py-spy to the worker process once it has outcomes, samples it for ``--seconds`` while it drains the
backlog, and sorts every sample into the step of the worker it was taken in (the innermost frame
that names one): the Talon.One HTTP exchange, the envelope, producing, decoding and translating,
scheduling, fetching, the event loop itself. Prints a table and writes
bench/results/cpu_profile.json (with the CPU model and the per-thread CPU split).

    .venv/bin/python bench/cpu_profile.py [--seconds 12]     # make bench-profile

py-spy reads another process's memory: it needs ptrace rights (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from run import RESULTS, cpu_model

# (step, frame names that belong to it), tried from the innermost frame outwards.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "HTTP exchange (request, answer parsed)",
        ("Http11Client.", "_Connection.", "Http11Transport.", "encode_request", "decode_answer"),
    ),
    ("producing (librdkafka calls, delivery reports)", ("AsyncProducer.",)),
    (
        "envelope and routed copies (JSON)",
        ("effects_envelope", "OutcomePublisher.", "EffectRouter."),
    ),
    ("decode and translate", ("RecordProcessor.prepare", "decode_event", "translate")),
    ("envelope id, tracing", ("envelope_id", "start_call_trace")),
    ("scheduler and dispatcher", ("KeyedScheduler.", "KeyedDispatcher.", "_FlowControl.")),
    ("retries, limits, Talon.One client", ("TalonCaller.", "TalonClient.", "RateLimiter.")),
    ("record processor", ("RecordProcessor.", "SessionLedger.")),
    ("fetching (consumer thread and hand-over)", ("AsyncConsumer.", "_worker", "_WorkItem.")),
    ("worker loop", ("Worker._loop", "Worker._commit")),
)
LOOP = "event loop (uvloop: sockets, timers, callbacks)"


def classify(stack: list[str]) -> str:
    names = [frame.split(" (")[0] for frame in stack]
    for name in reversed(names):
        for step, prefixes in STEPS:
            if name.startswith(prefixes):
                return step
    if names and names[-1] == "Runner.run":
        return LOOP
    return "other"


def summarise(raw: Path) -> dict[str, float]:
    """Share (%) of the samples per step, from py-spy's raw (collapsed stacks) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[classify(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return {step: round(count * 100 / total, 1) for step, count in counts.most_common()}


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread name of ``pid``."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def worker_pid(parent: int, deadline_s: float) -> int:
    """The worker process ``parent`` (the benchmark) started."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ppid == parent and b"talon_stream.cli" in command and b"run" in command:
                return int(entry.name)
        time.sleep(0.2)
    raise SystemExit("no worker process appeared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    spy = Path(sys.executable).with_name("py-spy")
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        out, raw = Path(tmp) / "run.json", Path(tmp) / "samples.txt"
        bench = subprocess.Popen(
            [sys.executable, str(here / "run.py"), "--only", "talon_stream", "--out", str(out)],
            stdout=subprocess.DEVNULL,
        )
        pid = worker_pid(bench.pid, 300)
        time.sleep(6)  # the worker has joined and is draining the backlog
        before = thread_cpu(pid)
        command = [str(spy), "record", "-p", str(pid), "-d", str(int(args.seconds))]
        subprocess.run(
            [*command, "-r", "200", "-f", "raw", "-o", str(raw), "--nonblocking"],
            check=True,
            capture_output=True,
        )
        after = thread_cpu(pid)
        bench.wait()
        run = json.loads(out.read_text())
        steps = summarise(raw)
    threads = {name: round(after[name] - before.get(name, 0.0), 2) for name in after}
    result = {
        "measured_at": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model": cpu_model(),
        "seconds_sampled": args.seconds,
        "worker_cpu_us_per_event": run.get("worker_cpu_us_per_event"),
        "talon_stream_eps": run.get("talon_stream_eps"),
        "thread_cpu_s": {k: v for k, v in sorted(threads.items()) if v > 0},
        "main_thread_samples_pct": steps,
    }
    print(f"worker: {result['talon_stream_eps']} events/s, {result['worker_cpu_us_per_event']} µs")
    print(f"CPU by thread over the sample (s): {result['thread_cpu_s']}")
    for step, share in steps.items():
        print(f"  {share:5.1f} %  {step}")
    (RESULTS / "cpu_profile.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

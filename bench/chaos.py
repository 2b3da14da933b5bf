"""The long chaos run: every scenario of ``tests/chaos/scenarios.py`` at full length.

kill -9 five times during 20,000 events, a 30 s Talon.One outage, a 20 s 429 storm, a poison
mix with ~2 MB records, a wrong API key for 20 s, workers joining and leaving, SIGTERM
mid-run, and a search for the API key in logs, DLQ headers and envelopes. Each scenario is
judged by ``tests/chaos/judge.py``.

    .venv/bin/python bench/chaos.py                 # make chaos
    .venv/bin/python bench/chaos.py --only kill9 --only sigterm
    .venv/bin/python bench/chaos.py --short         # the pytest lengths, for a quick look

Progress goes to stderr, its first line naming the broker (``TALON_STREAM_BROKER``, see
``talon_stream.demo.open_broker``); stdout gets ONE JSON line: which broker (``broker``:
``apache-kafka``, ``tansu`` or ``external``), the sums over the scenarios (``events``,
``lost``, ``order_violations``, ``overlapping_calls``, ``duplicate_side_effects``,
``unexpected_dlq``, ``expected_dlq_missing``, ...) and each scenario's figures under
``scenarios``. The same is written to bench/results/chaos-latest.json. Exits 1 when any
guarantee was broken or any scenario check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The scenarios live with the tests; make the repository importable when run as a script.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from talon_stream.demo import open_broker  # noqa: E402
from tests.chaos.judge import VIOLATIONS, Verdict, total  # noqa: E402
from tests.chaos.scenarios import LONG, SCENARIOS, SHORT, ScenarioResult, log_tails  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: The sums printed first, in this order (the rest of the judge's counts follow).
HEADLINE = (
    "events",
    "lost",
    "order_violations",
    "overlapping_calls",
    "duplicate_side_effects",
    "unexpected_dlq",
    "expected_dlq_missing",
)


def progress(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(names: list[str], short: bool, logs: Path | None) -> tuple[str, list[ScenarioResult]]:
    """The broker's kind and each scenario's result."""
    suite = SHORT if short else LONG
    broker = open_broker(announce=progress)
    results: list[ScenarioResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
            workdir = logs or Path(scratch)
            workdir.mkdir(parents=True, exist_ok=True)
            for name in names:
                params = getattr(suite, name)
                progress(f"{name}: {params}")
                began = time.monotonic()
                try:
                    result = await SCENARIOS[name](broker, workdir, params)
                except Exception as exc:  # noqa: BLE001 - a crashed scenario is a failed one
                    failure = f"{type(exc).__name__}: {exc}\n{log_tails(workdir)}".strip()
                    result = ScenarioResult(name, Verdict(), failures=[failure])
                    result.seconds = time.monotonic() - began
                results.append(result)
                progress(result.describe())
    finally:
        broker.stop()
    return broker.kind, results


def report(broker: str, results: list[ScenarioResult], seconds: float) -> dict[str, Any]:
    summed = total(result.verdict for result in results).counts()
    line: dict[str, Any] = {"broker": broker}
    line.update({name: summed[name] for name in HEADLINE})
    line.update({name: summed[name] for name in VIOLATIONS if name not in line})
    line["secret_leaks"] = sum(result.secret_leaks for result in results)
    line["failed_checks"] = sum(len(result.failures) for result in results)
    line["ok"] = all(result.ok for result in results)
    line["seconds"] = round(seconds, 1)
    line["scenarios"] = {result.name: result.summary() for result in results}
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--short", action="store_true", help="the pytest lengths")
    parser.add_argument("--results", type=Path, default=RESULTS / "chaos-latest.json")
    parser.add_argument("--logs", type=Path, help="keep the worker processes' logs here")
    args = parser.parse_args()
    # The worker logs every dead-lettered record; the judge counts them instead.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    names = args.only or list(SCENARIOS)
    started = time.monotonic()
    broker, results = asyncio.run(run(names, args.short, args.logs))
    line = report(broker, results, time.monotonic() - started)
    if not args.short:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        line_for_file = {"command": " ".join(["bench/chaos.py", *sys.argv[1:]]), **line}
        args.results.write_text(json.dumps(line_for_file, indent=2, default=str) + "\n")
    print(json.dumps(line, default=str), flush=True)
    return 0 if line["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

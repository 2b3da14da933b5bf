"""Where each contender's limit comes from: a latency sweep and a key-count sweep.

Runs ``bench/run.py`` once per point with every contender measured over the same time window,
prints one table per sweep and writes bench/results/sweep.json and a chart of it,
bench/results/sweep.png (``bench/charts.py``).

    .venv/bin/python bench/sweep.py [--window-s 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CONTENDERS = ("naive", "partition_serial", "talon_stream", "ceiling")


def point(latency_ms: float, customers: int, window_s: float, events: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parent / "run.py"),
                "--latency-ms",
                str(latency_ms),
                "--customers",
                str(customers),
                "--events",
                str(events),
                "--window-s",
                str(window_s),
                "--window-all",
                # The four contenders of the table (the real peers start a JVM or a virtualenv
                # per point); --window-all stops each after its window (no latency phase).
                "--only",
                ",".join(CONTENDERS),
                "--out",
                out.name,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
        return result


def table(title: str, column: str, rows: list[tuple[Any, dict[str, Any]]]) -> None:
    print(f"\n{title}")
    print(f"{column:>10} " + " ".join(f"{name:>17}" for name in CONTENDERS) + "   (events/s)")
    for value, result in rows:
        cells = " ".join(f"{result.get(f'{name}_eps', 0):>17.1f}" for name in CONTENDERS)
        print(f"{value:>10} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=8.0)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    latency_rows = [
        (latency, point(latency, 5000, args.window_s, args.events)) for latency in (10, 50, 200)
    ]
    table("latency sweep (5,000 customers)", "latency ms", latency_rows)
    key_rows = [(keys, point(50, keys, args.window_s, args.events)) for keys in (1, 10, 100, 5000)]
    table("key-count sweep (50 ms latency)", "customers", key_rows)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep.json").write_text(
        json.dumps(
            {
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "window_s": args.window_s,
                "latency_sweep": {str(k): v for k, v in latency_rows},
                "key_sweep": {str(k): v for k, v in key_rows},
            },
            indent=2,
        )
        + "\n"
    )
    try:  # a chart that fails costs the chart, not the figures written above
        import charts

        charts.sweep_chart(json.loads((RESULTS / "sweep.json").read_text()), RESULTS / "sweep.png")
    except Exception as error:  # noqa: BLE001
        print(f"warning: no chart drawn: {error!r}", file=sys.stderr)


if __name__ == "__main__":
    main()

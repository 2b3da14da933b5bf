"""Charts of the benchmarks' stored results: PNGs drawn with matplotlib (the Agg backend, no
display needed).

* a run of ``bench/run.py`` (``make bench``): events/s per contender and CPU µs per event per
  contender, side by side;
* the sweeps of ``bench/sweep.py`` (``make bench-sweep``): events/s against Talon.One's latency
  and against the number of keys (customers), one line per contender.

``make bench`` and ``make bench-sweep`` draw theirs when they finish; this redraws them from the
stored results without running anything:

    .venv/bin/python bench/charts.py                      # latest.json and sweep.json
    .venv/bin/python bench/charts.py bench/results/2026-12-06.json

Each PNG is written beside its JSON file (``latest.json`` → ``latest.png``) unless ``--out-dir``
says where.

A contender is whatever a result holds events/s for: a dict with ``eps`` under its name (the real
peers: ``results["parallel_consumer"]["eps"]``) or a number under ``<name>_eps``; its CPU per
event, where measured, is the dict's ``cpu_us_per_event`` or one of the keys the run writes for
the worker and the ceiling. A contender that was not run is simply not drawn.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: PNG files only

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatter, NullLocator

RESULTS = Path(__file__).parent / "results"

#: Where the run keeps a contender's CPU per event when it is not in a dict of the contender's
#: own (the worker's figures are written flat, the exactly-once variant's with an ``eos_`` prefix).
CPU_KEYS = {
    "talon_stream": "worker_cpu_us_per_event",
    "talon_stream_eos": "eos_worker_cpu_us_per_event",
    "ceiling": "ceiling_cpu_us_per_event",
}

#: A few words under a known contender's name; any other contender is drawn under its name alone.
DESCRIPTIONS = {
    "naive": "official SDK, one call at a time",
    "quix_streams": "Quix Streams",
    "parallel_consumer": "Confluent Parallel Consumer, JVM",
    "kafka_connect": "Kafka Connect HTTP sink, JVM",
    "partition_serial": "one call in flight per partition",
    "talon_stream": "the worker, keyed dispatch",
    "talon_stream_eos": "the worker, exactly-once",
    "ceiling": "bare aiohttp loop, no Kafka",
}

#: One colour per contender in every chart; ours stand out, the ceiling is a reference in grey.
COLOURS = {
    "naive": "#8c8c8c",
    "quix_streams": "#9467bd",
    "parallel_consumer": "#ff7f0e",
    "kafka_connect": "#d62728",
    "partition_serial": "#bcbd22",
    "talon_stream": "#1f77b4",
    "talon_stream_eos": "#17becf",
    "ceiling": "#4d4d4d",
}
OTHER_COLOURS = ("#2ca02c", "#e377c2", "#8c564b", "#7f7f7f")

NOTE = (
    "CPU per event: user + system time of the contender's own process ÷ events "
    "(the ceiling: the bare client loop per call); the emulator and the broker are not in it."
)


@dataclass(frozen=True)
class Contender:
    name: str
    eps: float
    cpu_us_per_event: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def contenders(results: Mapping[str, Any]) -> list[Contender]:
    """The contenders a run's results hold events/s for, in the order the run wrote them."""
    found: dict[str, Contender] = {}
    for key, value in results.items():
        if isinstance(value, Mapping) and _number(value.get("eps")) is not None:
            name, eps = key, _number(value["eps"])
        elif key.endswith("_eps") and "_vs_" not in key and _number(value) is not None:
            name, eps = key.removesuffix("_eps"), _number(value)
        else:
            continue
        if name in found or eps is None:
            continue
        own = results.get(name)
        cpu = _number(own.get("cpu_us_per_event")) if isinstance(own, Mapping) else None
        if cpu is None:
            cpu = _number(results.get(CPU_KEYS.get(name, f"{name}_cpu_us_per_event")))
        found[name] = Contender(name, eps, cpu)
    return list(found.values())


def _colours(names: Iterable[str]) -> dict[str, str]:
    others = iter(OTHER_COLOURS * 4)
    return {name: COLOURS.get(name) or next(others, "#7f7f7f") for name in names}


def _label(name: str) -> str:
    description = DESCRIPTIONS.get(name)
    return f"{name}\n({description})" if description else name


def _figures(value: float) -> str:
    """1,959.4: thousands separated, one decimal, as the results and the docs have them."""
    return f"{value:,.1f}"


def _when(measured_at: Any) -> str:
    """2026-12-06T03:57:26Z → 2026-12-06 03:57 UTC."""
    if not measured_at:
        return "time not recorded"
    text = str(measured_at)
    utc = text.endswith("Z")
    return text.removesuffix("Z").replace("T", " ")[:16] + (" UTC" if utc else "")


def _plain_ticks(value: float, _position: int) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def run_chart(results: Mapping[str, Any], path: Path) -> list[str]:
    """Draw a ``make bench`` result to ``path`` (PNG); the names of the contenders drawn."""
    drawn = contenders(results)
    names = [each.name for each in drawn]
    colours = _colours(names)
    figure = Figure(figsize=(13, 1.6 + 0.75 * max(len(drawn), 1)), dpi=110, layout="constrained")
    speed, cost = figure.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    rows = list(range(len(drawn)))[::-1]  # the first contender on top

    speed.barh(rows, [each.eps for each in drawn], color=[colours[n] for n in names], height=0.6)
    speed.set_xscale("log")
    top = max((each.eps for each in drawn), default=10.0)
    speed.set_xlim(1, top * 6)
    speed.xaxis.set_major_formatter(FuncFormatter(_plain_ticks))
    speed.set_xlabel("events/s (log scale; more is better)")
    speed.set_title("Throughput")
    for row, each in zip(rows, drawn, strict=True):
        speed.text(max(each.eps, 1) * 1.12, row, _figures(each.eps), va="center", fontsize=10)
    speed.set_yticks(rows, [_label(n) for n in names], fontsize=9.5)
    for label, name in zip(speed.get_yticklabels(), names, strict=True):
        if name.startswith("talon_stream"):
            label.set_fontweight("bold")

    costs = [each.cpu_us_per_event for each in drawn]
    most = max((c for c in costs if c is not None), default=1.0)
    cost.barh(
        [row for row, c in zip(rows, costs, strict=True) if c is not None],
        [c for c in costs if c is not None],
        color=[colours[n] for n, c in zip(names, costs, strict=True) if c is not None],
        height=0.6,
    )
    cost.set_xlim(0, most * 1.3)
    cost.xaxis.set_major_formatter(FuncFormatter(_plain_ticks))
    cost.set_xlabel("CPU µs per event (less is better)")
    cost.set_title("CPU per event")
    for row, each in zip(rows, drawn, strict=True):
        if each.cpu_us_per_event is None:
            cost.text(most * 0.02, row, "not measured", va="center", color="#808080", fontsize=9)
        else:
            text = f"{each.cpu_us_per_event:,.0f} µs"
            cost.text(each.cpu_us_per_event + most * 0.02, row, text, va="center", fontsize=10)
    for axes in (speed, cost):
        axes.grid(axis="x", color="#e0e0e0", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)

    setup = ", ".join(
        part
        for part in (
            _count(results.get("events"), "events"),
            _count(results.get("customers"), "customers"),
            _count(results.get("partitions"), "partitions"),
            _count(results.get("latency_ms"), "ms Talon.One latency"),
            _count(results.get("in_flight"), "calls in flight"),
            f"broker {results['broker']}" if results.get("broker") else "",
        )
        if part
    )
    figure.suptitle(
        f"make bench, {_when(results.get('measured_at'))} on "
        f"{results.get('cpu_model') or 'an unrecorded CPU'}\n{setup}",
        fontsize=11.5,
    )
    figure.supxlabel(NOTE, fontsize=8, color="#606060")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return names


def _count(value: Any, unit: str) -> str:
    number = _number(value)
    return "" if number is None else f"{number:,.0f} {unit}"


def _sweep_axes(
    axes: Axes, points: Mapping[str, Any], colours: dict[str, str], x_label: str
) -> list[str]:
    """One line per contender over the points of one sweep; the contenders drawn."""
    by_x = sorted(((float(x), result) for x, result in points.items()), key=lambda p: p[0])
    lines: dict[str, list[tuple[float, float]]] = {}
    for x, result in by_x:
        for each in contenders(result):
            if each.eps > 0:  # nothing to put on a log scale
                lines.setdefault(each.name, []).append((x, each.eps))
    for name, line in lines.items():
        bold = name.startswith("talon_stream")
        axes.plot(
            [x for x, _ in line],
            [y for _, y in line],
            marker="o",
            color=colours[name],
            linewidth=2.4 if bold else 1.6,
            label=_label(name).replace("\n", " "),
        )
    _annotate_points(axes, lines, colours)
    xs = [x for x, _ in by_x]  # every point's x, whichever contenders it has
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_major_locator(FixedLocator(xs))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_major_formatter(FuncFormatter(_plain_ticks))
    axes.yaxis.set_major_formatter(FuncFormatter(_plain_ticks))
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))  # only if under 1 decade
    if xs:
        axes.set_xlim(xs[0] / 1.5, xs[-1] * 2.2)
    axes.set_xlabel(x_label)
    axes.set_ylabel("events/s (log scale)")
    axes.grid(which="major", color="#e0e0e0", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)
    return list(lines)


def _annotate_points(
    axes: Axes, lines: Mapping[str, list[tuple[float, float]]], colours: dict[str, str]
) -> None:
    """Each point's events/s beside it; labels at one x that would overlap are spread apart
    (on the log scale), keeping their order."""
    points = [(x, y, name) for name, line in lines.items() for x, y in line if y > 0]
    if not points:
        return
    decades = [math.log10(y) for _, y, _ in points]
    gap = max(max(decades) - min(decades), 1.0) * 0.06
    low, high = min(decades), max(decades)
    for x in sorted({x for x, _, _ in points}):
        column = sorted((math.log10(y), name) for px, y, name in points if px == x)
        placed: list[float] = []
        for at, _ in column:
            placed.append(max(at, placed[-1] + gap) if placed else at)
        shift = sum(at for at, _ in column) / len(column) - sum(placed) / len(placed)
        low, high = min(low, placed[0] + shift), max(high, placed[-1] + shift)
        for (at, name), where in zip(column, placed, strict=True):
            axes.annotate(
                _figures(10**at),
                (x, 10**at),
                xytext=(x * 1.12, 10 ** (where + shift)),
                va="center",
                fontsize=8,
                color=colours[name],
                bbox={
                    "boxstyle": "round,pad=0.1",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.75,
                },
                zorder=3,
            )
    axes.set_ylim(10 ** (low - gap), 10 ** (high + gap))


def _shared(key: str, *sweeps: Mapping[str, Any]) -> float | None:
    """The value every point of the sweeps has for ``key``, if they all agree."""
    values = {_number(result.get(key)) for points in sweeps for result in points.values()}
    return values.pop() if len(values) == 1 else None


def sweep_chart(sweep: Mapping[str, Any], path: Path) -> list[str]:
    """Draw ``make bench-sweep`` results to ``path`` (PNG); the names of the contenders drawn."""
    latency = sweep.get("latency_sweep") or {}
    keys = sweep.get("key_sweep") or {}
    names = list(
        dict.fromkeys(
            each.name
            for points in (latency, keys)
            for result in points.values()
            for each in contenders(result)
            if each.eps > 0
        )
    )
    colours = _colours(names)
    figure = Figure(figsize=(13, 5.8), dpi=110, layout="constrained")
    by_latency, by_keys = figure.subplots(1, 2)
    customers = _shared("customers", latency)
    _sweep_axes(by_latency, latency, colours, "Talon.One latency per call, ms (log scale)")
    by_latency.set_title(
        "Throughput against Talon.One's latency"
        + (f" ({customers:,.0f} customers)" if customers is not None else "")
    )
    latency_ms = _shared("latency_ms", keys)
    _sweep_axes(by_keys, keys, colours, "customers = distinct keys (log scale)")
    by_keys.set_title(
        "Throughput against the number of keys"
        + (f" ({latency_ms:,.0f} ms latency)" if latency_ms is not None else "")
    )
    handles, labels = by_latency.get_legend_handles_labels()
    more_handles, more_labels = by_keys.get_legend_handles_labels()
    for handle, label in zip(more_handles, more_labels, strict=True):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3) or 1)
    window = _number(sweep.get("window_s"))
    partitions = _shared("partitions", latency, keys)
    figure.suptitle(
        f"make bench-sweep, {_when(sweep.get('measured_at'))}: every contender measured over "
        + (f"the same {window:g} s window" if window is not None else "the same time window")
        + (f", {partitions:,.0f} partitions" if partitions is not None else ""),
        fontsize=11.5,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return names


def chart(source: Path, out_dir: Path | None = None) -> Path:
    """Draw the chart for one stored result file (a run or a sweep); the PNG's path."""
    results = json.loads(source.read_text("utf-8"))
    target = (out_dir or source.parent) / f"{source.stem}.png"
    if "latency_sweep" in results or "key_sweep" in results:
        sweep_chart(results, target)
    else:
        run_chart(results, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        default=[RESULTS / "latest.json", RESULTS / "sweep.json"],
        help="result files of bench/run.py or bench/sweep.py (default: latest.json, sweep.json)",
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="beside each JSON if not given")
    args = parser.parse_args()
    for source in args.results:
        print(chart(source, args.out_dir))


if __name__ == "__main__":
    main()

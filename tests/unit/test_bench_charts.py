"""bench/charts.py draws a run's and a sweep's results to PNG files, with whichever contenders
the results hold."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def charts() -> ModuleType:
    """bench/ is scripts, not a package: the module is loaded from its file."""
    spec = importlib.util.spec_from_file_location("bench_charts", ROOT / "bench" / "charts.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def run_result() -> dict[str, Any]:
    """A run without quix_streams (as with ``--only``), with a peer the charts know nothing of,
    and a ratio whose key ends in ``_eps`` without being a contender."""
    return {
        "measured_at": "2026-12-06T03:57:26Z",
        "cpu_model": "Test CPU",
        "events": 1000,
        "customers": 100,
        "naive_eps": 19.0,
        "parallel_consumer": {"eps": 1959.4, "cpu_us_per_event": 549.5, "order_violations": 0},
        "parallel_consumer_eps": 1959.4,
        "kafka_connect": {"eps": 812.5, "cpu_us_per_event": 701.0},
        "kafka_connect_eps": 812.5,
        "some_new_peer": {"eps": 42.0},
        "talon_stream_eps": 3465.1,
        "worker_cpu_us_per_event": 204.2,
        "emulator_cpu_us_per_event": 171.8,
        "talon_stream_eos_eps": 2000.0,
        "eos_worker_cpu_us_per_event": 250.0,
        "eos_vs_at_least_once_eps": 0.577,
        "ceiling_eps": 3969.9,
        "ceiling_cpu_us_per_event": 160.4,
        "talon_stream_vs_ceiling": 0.87,
    }


def assert_png(path: Path) -> None:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_a_run_is_drawn_with_the_contenders_it_holds(charts: ModuleType, tmp_path: Path) -> None:
    found = {each.name: each for each in charts.contenders(run_result())}
    assert found["kafka_connect"].eps == 812.5
    assert found["kafka_connect"].cpu_us_per_event == 701.0
    assert found["talon_stream"].cpu_us_per_event == 204.2
    assert found["talon_stream_eos"].cpu_us_per_event == 250.0
    assert found["ceiling"].cpu_us_per_event == 160.4
    assert found["naive"].cpu_us_per_event is None
    assert found["some_new_peer"].cpu_us_per_event is None

    path = tmp_path / "latest.png"
    drawn = charts.run_chart(run_result(), path)

    assert drawn == [
        "naive",
        "parallel_consumer",
        "kafka_connect",
        "some_new_peer",
        "talon_stream",
        "talon_stream_eos",
        "ceiling",
    ]
    assert_png(path)


def test_a_sweep_is_drawn_with_every_contender_of_any_point(
    charts: ModuleType, tmp_path: Path
) -> None:
    def point(latency_ms: float, customers: int, **eps: float) -> dict[str, Any]:
        return {"latency_ms": latency_ms, "customers": customers, "partitions": 12} | {
            f"{name}_eps": value for name, value in eps.items()
        }

    sweep = {
        "measured_at": "2026-11-22T17:31:47Z",
        "window_s": 8.0,
        "latency_sweep": {
            "10": point(10, 5000, naive=76.0, talon_stream=1979.9, ceiling=2576.5),
            "200": point(200, 5000, naive=4.9, talon_stream=1022.9),
        },
        "key_sweep": {
            "1": point(50, 1, naive=19.0, talon_stream=17.1, partition_serial=17.2),
            "5000": point(50, 5000, naive=18.4, talon_stream=748.7, partition_serial=0.0),
        },
    }
    path = tmp_path / "sweep.png"

    drawn = charts.sweep_chart(sweep, path)

    # partition_serial's 0 events/s at 5,000 keys has no place on a log scale: one point only.
    assert drawn == ["naive", "talon_stream", "ceiling", "partition_serial"]
    assert_png(path)


def test_the_cli_draws_each_stored_result_beside_it_or_in_out_dir(
    charts: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "run.json"
    source.write_text('{"naive_eps": 19.0, "talon_stream_eps": 3465.1}')
    assert charts.chart(source) == tmp_path / "run.png"
    assert_png(tmp_path / "run.png")

    monkeypatch.setattr(sys, "argv", ["charts.py", str(source), "--out-dir", str(tmp_path / "out")])
    charts.main()
    assert_png(tmp_path / "out" / "run.png")

"""The benchmark's latency and CPU accounting (bench/run.py, bench/cpu_profile.py): stage
quantiles from two scrapes of ``/metrics``, each paced record's latency split with the
emulator's request log, and py-spy samples sorted into the worker's steps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from talon_stream.ops import STAGES, WorkerStats
from tests.unit.ops.test_stages import ONE_RECORD, metrics_text

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    """bench/ is scripts, not a package: a module is loaded from its file (its imports of
    the other scripts resolved from bench/)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def run() -> ModuleType:
    return load("run")


@pytest.fixture(scope="module")
def cpu_profile() -> ModuleType:
    return load("cpu_profile")


INF = float("inf")


def test_the_stages_are_read_from_what_the_worker_serves_on_metrics(run: ModuleType) -> None:
    stats = WorkerStats()
    stats.stages.observe(**ONE_RECORD)
    stats.latency.observe(0.049)
    stages = run.parse_stage_histograms(metrics_text(stats))
    assert set(stages) == {*STAGES, "http_exchange"}
    assert stages["call"][-1] == (INF, 1.0)
    assert dict(stages["call"])[0.05] == 1.0
    assert dict(stages["call"])[0.04] == 0.0
    assert dict(stages["http_exchange"])[0.05] == 1.0
    assert stages["commit"][-1] == (INF, 0.0)


def test_a_quantile_is_interpolated_inside_its_bucket(run: ModuleType) -> None:
    buckets = [(0.001, 0.0), (0.005, 50.0), (0.01, 90.0), (0.05, 100.0), (INF, 100.0)]
    assert run.histogram_quantile(buckets, 0.5) == pytest.approx(0.005)
    assert run.histogram_quantile(buckets, 0.25) == pytest.approx(0.003)
    assert run.histogram_quantile(buckets, 0.99) == pytest.approx(0.046)
    assert run.histogram_quantile([(0.001, 0.0), (INF, 0.0)], 0.5) is None
    # Beyond the last finite bound: that bound is all that can be said.
    assert run.histogram_quantile([(0.001, 0.0), (0.01, 1.0), (INF, 4.0)], 0.9) == 0.01


def test_stage_quantiles_count_only_what_happened_between_the_scrapes(run: ModuleType) -> None:
    before = {"call": [(0.05, 100.0), (0.1, 100.0), (INF, 100.0)]}
    after = {
        "call": [(0.05, 100.0), (0.1, 200.0), (INF, 200.0)],
        "fetch": [(0.005, 10.0), (INF, 10.0)],
    }
    quantiles = run.stage_quantiles(before, after)
    assert quantiles["call"] == {"calls": 100, "p50_ms": 75.0, "p99_ms": 99.5}
    assert quantiles["fetch"]["calls"] == 10


def test_a_paced_records_latency_splits_into_call_key_wait_and_what_is_added(
    run: ModuleType,
) -> None:
    def entry(key: str, started_ms: float, ended_ms: float) -> dict[str, object]:
        return {"idempotencyKey": key, "started": started_ms / 1000, "ended": ended_ms / 1000}

    # Customer a: two events 10 ms apart, the second waits for the first call (ends at 160).
    # Customer b: one event, free. Record c was never called (superseded).
    timed = [
        ("a1", b"a", 100.0, 166.0),
        ("a2", b"a", 110.0, 225.0),
        ("b1", b"b", 100.0, 158.0),
        ("c1", b"c", 100.0, 101.0),
    ]
    log = [entry("a1", 105.0, 160.0), entry("b1", 104.0, 154.0), entry("a2", 163.0, 220.0)]
    split = run.latency_breakdown(timed, log)
    assert split["unmatched"] == 1
    assert split["call"]["count"] == 3
    # Free: a1 adds 66 - 55 = 11 ms (5 before, 6 after), b1 58 - 50 = 8 ms (4 before, 4 after).
    assert split["added_free"] == {"count": 2, "p50_ms": 11.0, "p99_ms": 11.0}
    assert split["added_free_before_call"]["p50_ms"] == 5.0
    assert split["added_free_after_call"]["p50_ms"] == 6.0
    # a2 waited 160 - 110 = 50 ms for a1; beside that, 115 - 57 - 50 = 8 ms.
    assert split["key_wait"] == {"count": 1, "p50_ms": 50.0, "p99_ms": 50.0}
    assert split["added_busy_beside_key_wait"]["p50_ms"] == 8.0


def test_a_sample_counts_for_the_innermost_step_it_names(cpu_profile: ModuleType) -> None:
    root = "Runner.run (asyncio/runners.py:118)"
    dispatch = "KeyedDispatcher._run (talon_stream/processing/_dispatch.py:577)"
    http = "_Connection.exchange (talon_stream/talon/_http11.py:190)"
    assert cpu_profile.classify([root, dispatch, http]).startswith("HTTP exchange")
    assert cpu_profile.classify([root, dispatch]) == "scheduler and dispatcher"
    assert cpu_profile.classify([root]) == cpu_profile.LOOP
    assert cpu_profile.classify(["Thread.run (threading.py:1)"]) == "other"


def test_the_summary_is_shares_of_all_samples(cpu_profile: ModuleType, tmp_path: Path) -> None:
    raw = tmp_path / "samples.txt"
    raw.write_text(
        "main;Runner.run (r.py:1);_Connection.exchange (h.py:2) 3\nmain;Runner.run (r.py:1) 1\n"
    )
    assert cpu_profile.summarise(raw) == {
        "HTTP exchange (request, answer parsed)": 75.0,
        cpu_profile.LOOP: 25.0,
    }

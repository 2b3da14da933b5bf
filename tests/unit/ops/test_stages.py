"""Where a record's time goes: the stage histograms and their export on ``/metrics``."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from talon_stream.ops import STAGES, MetricsSnapshot, StageLatency, WorkerCollector, WorkerStats
from talon_stream.ops._metrics import render
from talon_stream.talon import Halt

ONE_RECORD: dict[str, Any] = {
    "fetch": 0.002,
    "decode": 0.0001,
    "key_wait": 0.0,
    "slot_wait": 0.0002,
    "call": 0.05,
    "produce": 0.004,
    "finished": 1.0,
}


def metrics_text(stats: WorkerStats) -> str:
    """What a worker with ``stats`` (and nothing in flight) serves on ``/metrics``."""
    snapshot = MetricsSnapshot(
        in_flight=0,
        in_flight_limit=1,
        buffered=0,
        paused_partitions=0,
        committed={},
        high_watermarks={},
    )
    return render(WorkerCollector(stats, Halt(), lambda: snapshot)).decode()


def buckets(stages: StageLatency, stage: str) -> dict[str, int]:
    return dict(stages.histograms[stage].cumulative())


def test_each_stage_is_observed_once_per_record_and_commit_waits_for_the_commit() -> None:
    stages = StageLatency()
    common = {"fetch": 0.004, "decode": 0.00004, "slot_wait": 0.0003, "produce": 0.003}
    stages.observe(key_wait=0.0, call=0.051, finished=100.0, **common)
    stages.observe(key_wait=0.06, call=0.049, finished=100.2, **common)
    assert buckets(stages, "key_wait")["0.0001"] == 1  # the free customer's record
    assert buckets(stages, "key_wait")["0.075"] == 2
    assert buckets(stages, "call")["0.05"] == 1
    assert buckets(stages, "call")["+Inf"] == 2
    assert buckets(stages, "commit")["+Inf"] == 0  # nothing committed yet
    stages.covering()  # a commit is sent; an outcome comes before its answer
    stages.observe(key_wait=0.0, call=0.05, finished=100.3, **common)
    stages.committed(at=100.5)
    assert buckets(stages, "commit")["0.25"] == 0
    assert buckets(stages, "commit")["0.5"] == 2  # 0.5 s and 0.3 s after the outcomes
    assert buckets(stages, "commit")["+Inf"] == 2  # the third was not in that commit
    assert round(stages.histograms["commit"].sum, 6) == 0.8
    stages.committed(at=101.0)  # an answer to nothing sent covers nothing
    assert buckets(stages, "commit")["+Inf"] == 2
    stages.covering()
    stages.committed(at=101.3)
    assert buckets(stages, "commit")["+Inf"] == 3
    assert round(stages.histograms["commit"].sum, 6) == 1.8


def test_a_record_without_a_timestamp_has_no_fetch_stage() -> None:
    stages = StageLatency()
    stages.observe(**{**ONE_RECORD, "fetch": None})
    assert stages.histograms["fetch"].count == 0
    assert stages.histograms["decode"].count == 1


def test_the_stages_are_one_histogram_family_labelled_by_stage() -> None:
    stats = WorkerStats()
    stats.stages.observe(**ONE_RECORD)
    text = metrics_text(stats)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    family = families["talon_stream_stage_seconds"]
    assert family.type == "histogram"
    counts = {
        sample.labels["stage"]: sample.value
        for sample in family.samples
        if sample.name.endswith("_count")
    }
    assert list(counts) == list(STAGES)
    assert counts == {**dict.fromkeys(STAGES, 1.0), "commit": 0.0}

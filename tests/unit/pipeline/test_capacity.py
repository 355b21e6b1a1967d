"""The bench's capacity arithmetic: stage timers, scrapes, per-step profiles, the ladder's bisection."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.metrics import STAGES, PipelineMetrics
from pipeline.tooling.capacity import (
    Ladder,
    cpu_ceiling,
    cpu_seconds,
    cpu_used,
    parse_samples,
    percentile,
    stage_profile,
    timeline,
)


def test_timed_stages_add_up_and_count_a_block_that_raises() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    for stage in STAGES:
        assert registry.get_sample_value("finsent_stage_seconds_total", {"stage": stage}) == 0.0
    with metrics.timed("parse"):
        pass
    with pytest.raises(ValueError), metrics.timed("checkpoint"):
        raise ValueError("the store said no")
    assert (registry.get_sample_value("finsent_stage_seconds_total", {"stage": "parse"}) or 0) > 0
    assert (registry.get_sample_value("finsent_stage_seconds_total", {"stage": "checkpoint"}) or 0) > 0


def test_profile_from_two_scrapes() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    before = parse_samples(generate_latest(registry).decode())
    metrics.stage_seconds.labels(stage="fetch").inc(2.0)
    metrics.stage_seconds.labels(stage="checkpoint").inc(1.0)
    metrics.scoring_seconds.observe(3.0)
    metrics.scoring_seconds.observe(1.0)
    for _ in range(4):
        metrics.read_delay.observe(0.025)
        metrics.event_latency.observe(2.5)
    after = parse_samples(generate_latest(registry).decode())
    profile = stage_profile(before, after, wall_s=10.0, texts=400)
    assert profile["loop_seconds"] == {"fetch": 2.0, "parse": 0.0, "produce": 0.0, "checkpoint": 1.0, "other": 7.0}
    assert profile["loop_share"]["fetch"] == pytest.approx(0.2)
    assert profile["loop_ms_per_text"]["checkpoint"] == pytest.approx(2.5)
    assert profile["model_ms_per_text"] == pytest.approx(10.0)
    assert profile["mean_batch_size"] == pytest.approx(200.0)
    latency = profile["latency_ms"]
    assert latency["event_to_scored"] == pytest.approx(2500.0)
    assert latency["read"] == pytest.approx(25.0)
    assert latency["model"] == pytest.approx(2000.0)  # each text waits for its whole batch
    assert latency["waiting"] == pytest.approx(475.0)


def test_a_build_without_stage_timers_is_said_to_have_none() -> None:
    profile = stage_profile({}, {"finsent_scoring_duration_seconds_sum": 1.0}, wall_s=5.0, texts=100)
    assert profile["loop_share"]["fetch"] is None
    assert profile["loop_seconds"]["other"] is None
    assert profile["model_ms_per_text"] == pytest.approx(10.0)
    assert profile["latency_ms"]["read"] is None


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 0.99) != percentile([], 0.99)
    assert percentile([float(i) for i in range(100)], 0.99) == 99.0


class FakeLadder(Ladder):
    """A daemon whose p99 is 100 ms up to 60% of the backlog throughput and 400 ms above."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.backlog = 1000.0
        self.target = 250.0
        self.reader = type("R", (), {"close": lambda self: None})()

    def step(self, share: float) -> dict[str, Any]:
        p99 = 100.0 if share <= 0.6 else 400.0
        result = {"share": round(share, 4), "rate_per_s": share * 1000, "p50_ms": p99 / 2, "p95_ms": p99}
        result.update({"p99_ms": p99, "holds": p99 <= 250})
        result["profile"] = {"share": share}
        self.steps.append(result)
        return result


def test_ladder_bisects_between_the_last_share_that_held_and_the_first_that_did_not() -> None:
    ladder = FakeLadder()
    out = ladder.run((0.25, 0.5, 0.7), bisect_steps=2)
    assert [s["share"] for s in ladder.steps] == [0.25, 0.5, 0.7, 0.6, 0.65]
    assert out["live_capacity_share"] == 0.6
    assert not out["live_capacity_is_lower_bound"]
    assert out["profile_at_capacity"] == {"share": 0.6}
    assert [s["share"] for s in out["curve"]] == [0.25, 0.5, 0.6, 0.65, 0.7]


def test_no_share_held_means_no_live_capacity() -> None:
    ladder = FakeLadder()
    out = ladder.run((0.8,), bisect_steps=1)
    assert out["live_capacity_share"] == 0.4  # the bisection went down to 0.4, which held
    ladder = FakeLadder()
    out = ladder.run((0.9,), bisect_steps=0)
    assert out["live_capacity_share"] == 0.0
    assert out["profile_at_capacity"] == {"share": 0.9}


def test_a_ladder_where_every_rate_held_gives_a_lower_bound() -> None:
    out = FakeLadder().run((0.25, 0.5), bisect_steps=2)
    assert out["live_capacity_share"] == 0.5
    assert out["live_capacity_is_lower_bound"]


def test_the_cpu_ceiling_is_where_the_cores_run_out() -> None:
    """At 300 texts/s the daemon kept 1.2 cores busy and the broker and load generator 0.3 together: a text
    costs 4 + 1 ms of CPU, so two cores are all busy at 400 texts/s, and at 500 without the rig."""
    c = cpu_ceiling({"daemon": 1.2, "broker": 0.2, "load_generator": 0.1}, 300.0, 800.0, 2)
    assert c is not None
    assert c["daemon_cpu_ms_per_text"] == pytest.approx(4.0) and c["rig_cpu_ms_per_text"] == pytest.approx(1.0)
    assert c["ceiling_texts_per_s"] == pytest.approx(400.0) and c["ceiling_share"] == pytest.approx(0.5)
    assert c["ceiling_without_rig_texts_per_s"] == pytest.approx(500.0)
    assert c["ceiling_without_rig_share"] == pytest.approx(0.625)
    assert cpu_ceiling({"daemon": None, "broker": 0.2}, 300.0, 800.0, 2) is None, "the daemon's CPU unknown"
    assert cpu_ceiling({"daemon": 1.0, "broker": None}, 300.0, 800.0, 2)["rig_cpu_ms_per_text"] == 0.0
    assert cpu_ceiling({"daemon": 1.0}, 0.0, 800.0, 2) is None, "nothing sent: no cost a text"


def test_the_report_renders_both_builds() -> None:
    from pipeline.tooling.bench_report import render

    profile = {
        "loop_share": {"fetch": 0.5, "parse": 0.1, "produce": 0.1, "checkpoint": 0.1, "other": 0.2},
        "loop_ms_per_text": {"fetch": 5.0, "parse": 1.0, "produce": 1.0, "checkpoint": 1.0, "other": 2.0},
        "latency_ms": {"event_to_scored": 80.0, "read": 30.0, "model": 20.0, "waiting": 30.0},
        "model_ms_per_text": 3.0,
        "mean_batch_size": 4.0,
        "cores_busy": {"daemon": 1.25, "broker": 0.3, "load_generator": None},
    }
    ladder = FakeLadder().run((0.25, 0.5, 0.7), bisect_steps=0)
    ladder["profile_at_capacity"] = profile
    ladder["cpu_ceiling"] = cpu_ceiling(profile["cores_busy"], 500.0, 800.0, 2)
    build = {
        "commit": "abc",
        "imports_from": "/x",
        "end_to_end_texts_per_s": 800.0,
        "end_to_end_vs_model_alone": 0.9,
        "peak_rss_mb": 200.0,
        "scoring_workers": 2,
        "threads": 1,
        "latency": ladder,
    }
    old = {
        **build,
        "commit": "def",
        "latency": {**ladder, "profile_at_capacity": {**profile, "loop_share": {"fetch": None}}},
    }
    report = {
        "cpu": "AMD EPYC",
        "cpus": 2,
        "load_average_at_start": [1.0, 1.0, 1.0],
        "load_average_at_end": [1.0, 1.0, 1.0],
        "model_alone_texts_per_s": 900.0,
        "scoring_workers": 2,
        "threads": 1,
        "tokeniser_ms_per_text": 0.1,
        "fetch_max_wait_ms": 50,
        "builds": {"new": build, "previous": old},
    }
    text = render(report)
    assert "AMD EPYC" in text
    assert "live capacity: 50% of the backlog throughput (500 texts/s)" in text
    assert "mean 80.0 ms event -> scored = read 30.00 ms + model 20.00 ms + waiting 30.00 ms" in text
    assert "not timed by this build" in text
    assert "new build abc (imports from /x, 2 workers x 1 threads):" in text
    assert "cores busy:    daemon 1.25, broker 0.30  (while the texts arrived" in text
    assert "CPU a text:    daemon 2.50 ms, test broker and load generator 0.60 ms" in text
    assert "2 cores all busy at 645 texts/s (81% of the backlog throughput)" in text
    assert "800 texts/s (100%) for the daemon alone" in text


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="CPU time of other processes is read from /proc")
def test_cores_busy_tell_a_spinning_process_from_a_sleeping_one() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])  # noqa: S607
    try:
        time.sleep(0.1)
        pids = {"me": os.getpid(), "sleeper": sleeper.pid, "gone": 2**22 + 7}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started, cpu0 = time.monotonic(), time.process_time()
        # spin until this process has burnt 0.3 s of CPU, however loaded the machine (at most 20 s)
        while time.process_time() - cpu0 < 0.3 and time.monotonic() - started < 20:
            pass
        cores = cpu_used(pids, before, time.monotonic() - started)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert cores["me"] is not None and cores["me"] >= 0.3 / 20
    assert cores["sleeper"] is not None and cores["sleeper"] < cores["me"] / 3
    assert cores["gone"] is None  # no such process: not a figure
    assert cpu_seconds(None) is None


def test_a_stall_shows_in_the_timeline_where_it_happened() -> None:
    latencies = [40.0] * 100 + [900.0, 700.0, 500.0, 300.0] + [40.0] * 96  # 200 texts at 100/s
    line = timeline(latencies, rate=100.0)
    assert line["bucket_s"] == 0.5 and len(line["max_ms"]) == 4
    assert line["max_ms"] == [40.0, 40.0, 900.0, 40.0]
    assert line["mean_ms"][2] == (900 + 700 + 500 + 300 + 40 * 46) / 50

"""Prometheus metrics of the daemon, all owned by one object on a given registry."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from pipeline.alerts import AlertRecord, ClosedWindow
from pipeline.incidents import SPECIFICITY, Incident
from pipeline.schema import REASONS

# where the loop thread's time goes (non-overlapping): blocked in the consumer's poll (fetch responses,
# including any time the broker holds a fetch for fetch_max_wait_ms), parsing records, handing scored
# events to the producer and flushing it, the store transaction of a checkpoint. The model's time is
# the scoring workers' (finsent_scoring_duration_seconds).
STAGES = ("fetch", "parse", "produce", "checkpoint")


class PipelineMetrics:
    """Every ``finsent_*`` metric. Nothing is registered at import time."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumed = Counter(
            "finsent_messages_consumed", "Records read from the input topics.", ["topic"], registry=registry
        )
        self.scored = Counter(
            "finsent_messages_scored", "Messages scored by the model.", ["sentiment", "topic_label"], registry=registry
        )
        self.invalid = Counter(
            "finsent_messages_invalid", "Records sent to the dead-letter topic.", ["reason"], registry=registry
        )
        for reason in REASONS:
            self.invalid.labels(reason=reason)
        self.late = Counter(
            "finsent_late_events",
            "Events whose window had already closed: counted in the window's n_late, not in n.",
            registry=registry,
        )
        self.watermark = Gauge(
            "finsent_window_watermark_timestamp_seconds",
            "Global event-time progress: windows ending (plus grace) before it are closed.",
            registry=registry,
        )
        self.repeats = Counter(
            "finsent_repeat_stories", "Messages whose story was already seen recently.", registry=registry
        )
        self.batch_size = Histogram(
            "finsent_scoring_batch_size",
            "Texts per scoring batch.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )
        self.scoring_seconds = Histogram(
            "finsent_scoring_duration_seconds",
            "Time to score one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.company_passes = Counter(
            "finsent_company_passes",
            "Extra model passes for the companies of multi-company messages (one per company, at most "
            "FINSENT_MAX_TARGETS a message): the model's work beyond one pass per text.",
            registry=registry,
        )
        self.event_latency = Histogram(
            "finsent_event_latency_seconds",
            "Scored time minus event time.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        self.lag = Gauge(
            "finsent_consumer_lag",
            "High-water mark minus next offset, per partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.window_ratio = Gauge(
            "finsent_window_negative_ratio",
            "Negative ratio of the last closed window.",
            ["dimension", "key"],
            registry=registry,
        )
        self.window_baseline = Gauge(
            "finsent_window_negative_baseline",
            "Spike threshold of the last closed window.",
            ["dimension", "key"],
            registry=registry,
        )
        self.windows_closed = Counter("finsent_windows_closed", "Windows closed (dimension all).", registry=registry)
        self.alerts = Counter(
            "finsent_alerts", "Negative-sentiment spike alerts raised.", ["dimension", "severity"], registry=registry
        )
        self.incidents = Counter(
            "finsent_incidents",
            "Incidents started: alerts of one story grouped under their root alert.",
            ["root_dimension"],
            registry=registry,
        )
        for dimension in SPECIFICITY:  # present from the start, so that increase() sees the first one
            self.incidents.labels(root_dimension=dimension)
        self.commits = Counter("finsent_commits", "Checkpoints committed to the store.", registry=registry)
        self.commit_failures = Counter(
            "finsent_commit_failures", "Checkpoint commits that failed and were retried.", ["reason"], registry=registry
        )
        self.model_reloads = Counter("finsent_model_reloads", "Hot model reloads.", ["outcome"], registry=registry)
        self.model_info = Info("finsent_model", "The model being served.", registry=registry)
        self.assigned_partitions = Gauge(
            "finsent_assigned_partitions", "Input partitions assigned to this daemon.", registry=registry
        )
        self.last_commit = Gauge(
            "finsent_last_commit_timestamp_seconds", "When the last checkpoint was committed.", registry=registry
        )
        self.read_delay = Histogram(
            "finsent_read_delay_seconds",
            "Record timestamp (the producer's send time) to the loop reading it: producer, broker, fetch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
            registry=registry,
        )
        self.stage_seconds = Counter(
            "finsent_stage_seconds",
            "Time the consume loop spent per stage: fetch (blocked in poll), parse, produce, checkpoint (store).",
            ["stage"],
            registry=registry,
        )
        # the loop times every record's parse and produce: look each stage's child up once, not per record
        self._stages = {stage: self.stage_seconds.labels(stage=stage) for stage in STAGES}

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the wall time of the block to ``finsent_stage_seconds{stage}`` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            child = self._stages.get(stage) or self.stage_seconds.labels(stage=stage)
            child.inc(time.perf_counter() - started)

    def observe_closed(
        self, closed: Iterable[ClosedWindow], alerts: Iterable[AlertRecord], watchlist: frozenset[str]
    ) -> None:
        """Closed windows and new alerts of one commit; ratio gauges only for bounded keys (topics, watchlist)."""
        for w in closed:
            if w.dimension == "all":
                self.windows_closed.inc()
            if w.dimension in ("all", "topic") or (w.dimension == "ticker" and w.key in watchlist):
                self.window_ratio.labels(dimension=w.dimension, key=w.key).set(w.negative_ratio)
                if w.verdict is not None:
                    self.window_baseline.labels(dimension=w.dimension, key=w.key).set(w.verdict.baseline.threshold)
        for alert in alerts:
            self.alerts.labels(dimension=alert.dimension, severity=alert.severity).inc()

    def observe_incidents(self, incidents: Iterable[Incident]) -> None:
        """New incidents of one commit (joined alerts start none)."""
        for incident in incidents:
            self.incidents.labels(root_dimension=incident.root_dimension).inc()

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the lag gauges of partitions this daemon no longer owns."""
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):
                self.lag.remove(topic, str(partition))

"""finsent_incidents_total counts new incidents per root dimension, present from the start."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from pipeline.incidents import Incident
from pipeline.metrics import PipelineMetrics


def test_incidents_are_counted_by_root_dimension() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    read = metrics.registry.get_sample_value
    assert read("finsent_incidents_total", {"root_dimension": "ticker"}) == 0.0, "present before the first one"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    metrics.observe_incidents(
        [Incident("i1", start, "ticker", "NVDA", ["a1", "a2"]), Incident("i2", start, "topic", "IPO", ["a3"])]
    )
    metrics.observe_incidents([])
    assert read("finsent_incidents_total", {"root_dimension": "ticker"}) == 1.0
    assert read("finsent_incidents_total", {"root_dimension": "topic"}) == 1.0
    assert read("finsent_incidents_total", {"root_dimension": "source"}) == 0.0

"""Wiring: the one place that builds the daemon's components, and closes them.

``run_daemon`` builds metrics, scorer, store, sink and source in the order the daemon
needs them (the store first, waited for; Kafka after), runs the loop under signal
handlers, and closes everything it opened with one ``ExitStack``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from pipeline.alerts import SpikeDetector
from pipeline.config import Settings
from pipeline.daemon import Clock, Daemon
from pipeline.http import HealthServer
from pipeline.linker import default_linker
from pipeline.metrics import PipelineMetrics
from pipeline.scorer import ModelWatcher, OnnxScorer, Scorer
from pipeline.sinks import KafkaSink
from pipeline.source import KafkaSource
from pipeline.spikes import SpikeRule
from pipeline.store import Store
from pipeline.upkeep import Upkeep

log = logging.getLogger(__name__)


def spike_rule(settings: Settings) -> SpikeRule:
    return SpikeRule(
        min_count=settings.spike_min_count,
        z=settings.spike_z,
        floor=settings.spike_floor,
        cold_start_ratio=settings.spike_cold_start_ratio,
        min_history=settings.spike_min_history,
        min_std=settings.spike_min_std,
        cooldown_s=settings.spike_cooldown_s,
    )


def build_store(settings: Settings) -> Store:
    detector = SpikeDetector(spike_rule(settings), settings.window_size_ms, settings.spike_history_windows)
    return Store(
        settings.store_url.get_secret_value(),
        window_size_ms=settings.window_size_ms,
        grace_ms=settings.grace_ms,
        claim_ttl_ms=settings.idle_claim_ttl_ms,
        detector=detector,
        incident_span_windows=settings.incident_span_windows,
    )


def build_daemon(
    settings: Settings, *, registry: CollectorRegistry, clock: Clock = time.time, scorer: Scorer | None = None
) -> Daemon:
    """Model, store and metrics, wired into a daemon. Raises ``ModelError`` / ``StoreError`` early.

    Kafka is not touched here: ``connect`` builds the sink and source once the store is reachable.
    """
    metrics = PipelineMetrics(registry)
    watcher = None
    if scorer is None:
        options: dict[str, Any] = {
            "threads": settings.resolved_threads,
            "provider": settings.provider,
            "max_targets": settings.max_targets,
        }
        scorer = OnnxScorer(settings.model_dir, **options)
        watcher = ModelWatcher(
            settings.model_dir,
            scorer.version,
            settings.reload_check_s,
            serving_card=scorer.model.card,
            max_drop=settings.model_gate_max_drop,
            **options,
        )
    metrics.model_info.info({"version": scorer.version, "precision": scorer.precision, "provider": scorer.provider})
    store = build_store(settings)
    upkeep = Upkeep(settings, metrics, store, watcher)
    linker = default_linker() if settings.link_company_names else None
    return Daemon(settings, metrics=metrics, store=store, scorer=scorer, linker=linker, upkeep=upkeep, clock=clock)


def connect(settings: Settings) -> tuple[KafkaSink, KafkaSource]:
    """The Kafka side: one producer for every output topic, one consumer group member."""
    return KafkaSink(settings), KafkaSource(settings)


EARLY_STOP = threading.Event()


def catch_early_signals() -> None:
    """Record SIGTERM/SIGINT that arrive before the daemon exists, so start-up never dies half-way."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: EARLY_STOP.set())


@contextlib.contextmanager
def stop_on_signals(daemon: Daemon) -> Iterator[None]:
    """SIGTERM and SIGINT ask the loop to stop; the previous handlers come back afterwards."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        log.info("received %s: finishing the batch in hand, committing, exiting", signal.Signals(signum).name)
        daemon.stop()

    for sig in previous:
        signal.signal(sig, handler)
    if EARLY_STOP.is_set():  # a signal arrived while we were still starting up
        daemon.stop()
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_daemon(settings: Settings, *, registry: CollectorRegistry | None = None) -> None:
    """Build, serve metrics, consume until a signal, commit, close everything."""
    registry = registry or CollectorRegistry()
    daemon = build_daemon(settings, registry=registry)
    log.info("starting with settings %s", settings.describe())
    log.info(
        "scoring: %d workers side by side, %d ONNX Runtime thread(s) each, batches of at most %d",
        settings.resolved_scoring_workers,
        settings.resolved_threads,
        settings.batch_size,
    )
    with contextlib.ExitStack() as stack:
        stack.callback(daemon.store.close)
        stack.enter_context(stop_on_signals(daemon))
        server = HealthServer(
            settings.metrics_host, settings.metrics_port, registry, daemon.readiness, daemon.liveness
        ).start()
        stack.callback(server.close)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
        try:
            daemon.with_store_retry("reach the store", daemon.store.create_schema)
        except SQLAlchemyError:
            if daemon.stopping:  # asked to stop while still waiting for the store: nothing to commit
                log.info("stopped before the store was reachable")
                return
            raise
        daemon.store.claim_group(settings.group_id)  # a second group on these tables stops here, before Kafka
        sink, source = connect(settings)
        stack.callback(sink.close)
        stack.callback(source.close)
        daemon.start(sink, source)
        daemon.run()
    log.info("stopped cleanly")

"""Wiring: one place builds the daemon from settings; ``run_daemon`` runs it under signals."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry

from pipeline.config import Settings
from pipeline.daemon import Clock, Daemon
from pipeline.http import HealthServer
from pipeline.metrics import PipelineMetrics
from pipeline.scorer import ModelWatcher, OnnxScorer, Scorer
from pipeline.sinks import KafkaSink
from pipeline.source import KafkaSource
from pipeline.spikes import SpikeRule
from pipeline.store import Store

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


def build_daemon(
    settings: Settings, *, registry: CollectorRegistry, clock: Clock = time.time, scorer: Scorer | None = None
) -> Daemon:
    """Model, store, metrics, sinks and source, wired. Raises ``ModelError`` / ``StoreError`` early."""
    metrics = PipelineMetrics(registry)
    watcher = None
    if scorer is None:
        options: dict[str, Any] = {"threads": settings.threads, "provider": settings.provider}
        scorer = OnnxScorer(settings.model_dir, **options)
        watcher = ModelWatcher(settings.model_dir, scorer.version, settings.reload_check_s, **options)
    metrics.model_info.info({"version": scorer.version, "precision": scorer.precision, "provider": scorer.provider})
    store = Store(
        settings.store_url.get_secret_value(),
        window_size_ms=settings.window_size_ms,
        grace_ms=settings.grace_ms,
        claim_ttl_ms=settings.idle_claim_ttl_ms,
        rule=spike_rule(settings),
        history_windows=settings.spike_history_windows,
    )
    return Daemon(
        settings,
        metrics=metrics,
        store=store,
        scorer=scorer,
        watcher=watcher,
        clock=clock,
        sink=lambda: KafkaSink(settings),
        source=lambda d: KafkaSource(settings, d.on_assigned, d.on_revoked),
    )


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
    with contextlib.ExitStack() as stack:
        stack.enter_context(stop_on_signals(daemon))
        server = HealthServer(
            settings.metrics_host, settings.metrics_port, registry, daemon.readiness, daemon.liveness
        ).start()
        stack.callback(server.close)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
        stack.callback(daemon.store.close)
        daemon.start()
        if daemon.sink is not None:
            stack.callback(daemon.sink.close)
        if daemon.src is not None:
            stack.callback(daemon.src.close)
        daemon.run()
    log.info("stopped cleanly")

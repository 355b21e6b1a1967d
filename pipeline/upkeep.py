"""The daemon's periodic work beside the loop: model hot reload, consumer lag, pruning old data."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from models.card import ModelError
from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.scorer import ModelWatcher
from pipeline.store import Store
from pipeline.tables import from_ms

if TYPE_CHECKING:
    from pipeline.daemon import Daemon

log = logging.getLogger(__name__)

LAG_EVERY_MS = 1000  # consumer-lag gauges refresh
HOUSEKEEPING_EVERY_MS = 600_000  # pruning of old messages, stories and windows


class Upkeep:
    def __init__(
        self, settings: Settings, metrics: PipelineMetrics, store: Store, watcher: ModelWatcher | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.watcher = watcher
        self.last_lag_ms = 0
        self.last_prune_ms: int | None = None

    def tick(self, daemon: Daemon, now: int) -> None:
        self.maybe_reload(daemon)
        self.update_lag(daemon, now)
        self.housekeeping(daemon, now)

    def maybe_reload(self, daemon: Daemon) -> None:
        """Swap in a new model when its card changes; a broken one is refused and the old one kept."""
        if self.watcher is None:
            return
        try:
            scorer = self.watcher.poll()
        except ModelError as exc:
            self.metrics.model_reloads.labels(outcome="refused").inc()
            log.error("new model refused, keeping %s: %s", daemon.scorer.version, exc)
            return
        if scorer is None:
            return
        daemon.score_batch()  # the batch in hand is scored by the model it was read under
        old, daemon.scorer = daemon.scorer.version, scorer
        self.metrics.model_reloads.labels(outcome="loaded").inc()
        self.metrics.model_info.info(
            {"version": scorer.version, "precision": scorer.precision, "provider": scorer.provider}
        )
        log.info("model reloaded: %s -> %s", old, scorer.version)

    def update_lag(self, daemon: Daemon, now: int) -> None:
        if daemon.src is None or now - self.last_lag_ms < LAG_EVERY_MS:
            return
        self.last_lag_ms = now
        for (topic, partition), lag in daemon.src.lag(daemon.partitions.positions()):
            self.metrics.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def housekeeping(self, daemon: Daemon, now: int) -> None:
        if self.last_prune_ms is None:
            self.last_prune_ms = now
        if now - self.last_prune_ms < HOUSEKEEPING_EVERY_MS:
            return
        self.last_prune_ms = now
        horizon_ms = self.settings.novelty_horizon_s * 1000
        mark = min(daemon.watermark or now, now)
        daemon.novelty.forget_before(mark - horizon_ms)
        wall = datetime.fromtimestamp(now / 1000, tz=UTC)
        try:
            self.store.prune(
                wall - timedelta(seconds=self.settings.messages_retention_s),
                from_ms(mark - horizon_ms),
                wall - timedelta(seconds=self.settings.windows_retention_s),
            )
        except SQLAlchemyError as exc:
            log.warning("pruning old data failed: %s", exc)

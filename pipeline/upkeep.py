"""The daemon's periodic work beside the loop: model hot reload and its history, consumer lag, pruning old data."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from models.card import ModelCard, ModelError
from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.model_history import ModelHistory, event_for
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
        self,
        settings: Settings,
        metrics: PipelineMetrics,
        store: Store,
        watcher: ModelWatcher | None,
        history: ModelHistory | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.watcher = watcher
        self.history = history or ModelHistory(store.engine)
        self.started = False
        self.last_lag_ms = 0
        self.last_prune_ms: int | None = None

    def tick(self, daemon: Daemon, now: int) -> None:
        if not self.started:
            self.started = True
            self.record_start(daemon)
        self.maybe_reload(daemon)
        self.history.flush()
        self.update_lag(daemon, now)
        self.housekeeping(daemon, now)

    def record_start(self, daemon: Daemon) -> None:
        """The model the daemon started with: the operator's choice, served without the gate."""
        card: ModelCard | None = self.watcher.serving_card if self.watcher else None
        if card is None:
            card = getattr(getattr(daemon.scorer, "model", None), "card", None)
        reason = "served from start-up (the operator's choice: --model or FINSENT_MODEL_DIR; not gated)"
        self.history.add(event_for(card, daemon.scorer.version, "loaded", reason, datetime.now(UTC)))

    def maybe_reload(self, daemon: Daemon) -> None:
        """Swap in a new model when its card changes and it passes every check; else keep the old one and say why."""
        if self.watcher is None:
            return
        try:
            scorer = self.watcher.poll()
        except ModelError as exc:
            candidate = self.watcher.candidate
            name = f"model {candidate.version}" if candidate else f"the model card at {self.watcher.card}"
            self.metrics.model_reloads.labels(outcome="refused").inc()
            log.error("%s refused, still serving %s: %s", name, daemon.scorer.version, exc)
            version = candidate.version if candidate else "(unreadable card)"
            self.history.add(event_for(candidate, version, "refused", str(exc), datetime.now(UTC)))
            return
        if scorer is None:
            return
        daemon.score_batch()  # the batch in hand is scored by the model it was read under
        old, daemon.scorer = daemon.scorer.version, scorer
        self.metrics.model_reloads.labels(outcome="loaded").inc()
        self.metrics.model_info.info(
            {"version": scorer.version, "precision": scorer.precision, "provider": scorer.provider}
        )
        log.info("model reloaded: %s -> %s (%s)", old, scorer.version, self.watcher.verdict)
        self.history.add(
            event_for(scorer.model.card, scorer.version, "loaded", self.watcher.verdict, datetime.now(UTC))
        )

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

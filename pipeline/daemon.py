"""The consume-score-window-commit loop of ``finsent run``.

One thread owns the consumer, the model and the window state. Signal handlers only
call ``stop()``. A checkpoint is the numbered sequence in ``checkpoint()``; when it
cannot complete (output not delivered, partitions taken over by another daemon),
the pending work is dropped and every partition is rewound to the store's offsets,
so each record is counted exactly once in the windows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import TopicPartition
from sqlalchemy.exc import SQLAlchemyError

from models.card import ModelError
from pipeline.batching import batch_due, checkpoint_due
from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.novelty import NoveltyFilter
from pipeline.schema import Event, Origin, Rejected, parse_record
from pipeline.scorer import ModelWatcher, Score, Scorer
from pipeline.sinks import DeliveryError, KafkaSink, iso_ms
from pipeline.source import KafkaSource
from pipeline.store import Checkpoint, CommitResult, FencedError, Store
from pipeline.tables import from_ms
from pipeline.windows import WindowKey, WindowTracker, dimension_keys, window_start

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TP = tuple[str, int]


@dataclass
class Pending:
    """Work read since the last checkpoint."""

    batch: list[Event] = field(default_factory=list)
    batch_started_ms: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    story_windows: dict[str, list[WindowKey]] = field(default_factory=dict)
    records: int = 0


class Daemon:
    """Wired by ``pipeline.app.build_daemon``; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: PipelineMetrics,
        store: Store,
        scorer: Scorer,
        sink: Callable[[], KafkaSink],
        source: Callable[[Daemon], KafkaSource],
        watcher: ModelWatcher | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.scorer = scorer
        self.make_sink = sink
        self.make_source = source
        self.watcher = watcher
        self.clock = clock
        self.windows = WindowTracker(settings.window_size_ms, settings.grace_ms, settings.idle_partition_s * 1000)
        self.novelty = NoveltyFilter(settings.novelty_horizon_s * 1000)
        self.watchlist = frozenset(settings.watchlist)
        self.pending = Pending()
        self.positions: dict[TP, int] = {}  # next offset to read, per assigned partition
        self.expected: dict[TP, int | None] = {}  # the store's next offset as we last saw it
        self.sink: KafkaSink | None = None
        self.src: KafkaSource | None = None
        self.store_ok = False
        self.assigned = False
        self.last_commit_ms = self.now_ms()
        self._stop = threading.Event()
        self._last_lag_ms = 0
        self._last_prune_ms = self.now_ms()

    # ---- lifecycle -------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit and return (safe from signal handlers)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def readiness(self) -> dict[str, bool]:
        return {
            "model_loaded": self.scorer is not None,
            "store_reachable": self.store_ok,
            "partitions_assigned": self.assigned,
        }

    def start(self) -> None:
        """Open the store (waiting while it is down), restore window state, connect to Kafka."""
        self._with_store_retry("create the schema", self.store.create_schema)
        horizon_from = self.now_ms() - max(self.settings.novelty_horizon_s * 1000, 2 * 86_400_000)
        self.windows.closed_starts = self._with_store_retry(
            "load closed windows", lambda: self.store.window_starts(closed=True, since_ms=horizon_from)
        )
        self.windows.open_starts = self._with_store_retry(
            "load open windows", lambda: self.store.window_starts(closed=False)
        )
        self.novelty = NoveltyFilter(
            self.settings.novelty_horizon_s * 1000, self._with_store_retry("load story hashes", self.store.story_hashes)
        )
        self.store_ok = True
        self.sink = self.make_sink()
        self.publish_alerts()
        self.src = self.make_source(self)

    def run(self) -> None:
        """Consume until ``stop()``; then a last checkpoint."""
        assert self.src is not None, "call start() first"
        while not self.stopping:
            self.step()
        self.shutdown_checkpoint()

    def shutdown_checkpoint(self) -> None:
        for attempt in range(3):
            try:
                self.checkpoint(force=True)
                return
            except (DeliveryError, SQLAlchemyError) as exc:
                log.warning("final checkpoint attempt %d failed: %s", attempt + 1, exc)
                time.sleep(0.5)
        log.error("stopping without a final checkpoint: uncommitted records will be read again on restart")

    # ---- the loop --------------------------------------------------------------------------
    def step(self) -> None:
        """One turn: poll, parse, score when due, commit when due, reload the model when changed."""
        assert self.src is not None
        now = self.now_ms()
        wait = self.settings.max_wait_ms if self.pending.batch else 200
        for record in self.src.poll(timeout_ms=wait, max_records=self.settings.batch_size * 4):
            self.handle(record)
        now = self.now_ms()
        if batch_due(
            len(self.pending.batch),
            self.pending.batch_started_ms,
            now,
            max_size=self.settings.batch_size,
            max_wait_ms=self.settings.max_wait_ms,
        ):
            self.score_batch()
        if checkpoint_due(
            self.pending.records,
            self.last_commit_ms,
            now,
            interval_ms=self.settings.commit_interval_ms,
            windows_due=bool(self.windows.due(now)) and now - self.last_commit_ms >= 200,
        ):
            self.try_checkpoint()
        self.maybe_reload()
        self.update_lag(now)
        self.housekeeping(now)

    def handle(self, record: Any) -> None:
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp, record.key)
        self.metrics.consumed.labels(topic=record.topic).inc()
        tp = (record.topic, record.partition)
        if tp not in self.positions:  # a record of a partition we no longer own (rebalance race)
            return
        self.positions[tp] = record.offset + 1
        self.pending.records += 1
        parsed = parse_record(
            record.value,
            origin,
            now_ms=self.now_ms(),
            max_bytes=self.settings.max_message_bytes,
            max_future_ms=self.settings.max_future_s * 1000,
            watchlist=self.watchlist,
        )
        if isinstance(parsed, Rejected):
            self.dead_letter(parsed)
            return
        if not self.pending.batch:
            self.pending.batch_started_ms = self.now_ms()
        self.pending.batch.append(parsed)
        if len(self.pending.batch) >= self.settings.batch_size:
            self.score_batch()

    def dead_letter(self, rejected: Rejected) -> None:
        assert self.sink is not None
        self.sink.dead_letter(rejected)
        self.metrics.invalid.labels(reason=rejected.reason).inc()
        o = rejected.origin
        log.warning(
            "rejected %s[%d] offset=%d: %s (%s)", o.topic, o.partition, o.offset, rejected.reason, rejected.detail
        )

    def score_batch(self) -> None:
        events, self.pending.batch, self.pending.batch_started_ms = self.pending.batch, [], None
        if not events:
            return
        started = time.perf_counter()
        scores = self.scorer.score([e.text for e in events])
        self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(events))
        scored_at = self.now_ms()
        for event, score in zip(events, scores, strict=True):
            self.account(event, score, scored_at)

    def account(self, event: Event, score: Score, scored_at_ms: int) -> None:
        """Windows, metrics, outputs and the drill-down row for one scored message."""
        assert self.sink is not None
        repeat = self.novelty.is_repeat(event.text, event.event_time_ms)
        keys = list(dimension_keys(score.topic, event.tickers, event.source))
        o = event.origin
        if not self.windows.add(
            event.event_time_ms,
            scored_at_ms,
            keys,
            score.sentiment,
            score.p_negative,
            unique=not repeat,
            partition=(o.topic, o.partition),
        ):
            self.metrics.late.inc()
        elif not repeat:
            start = window_start(event.event_time_ms, self.settings.window_size_ms)
            self.pending.story_windows[self.novelty.last_hash] = [(d, k, start) for d, k in keys]
        if repeat:
            self.metrics.repeats.inc()
        self.metrics.scored.labels(sentiment=score.sentiment, topic_label=score.topic).inc()
        self.metrics.event_latency.observe(max(0.0, (scored_at_ms - event.event_time_ms) / 1000))
        self.sink.scored(
            event.id,
            {
                **event.fields,
                "id": event.id,
                "sentiment": score.sentiment,
                "p_negative": score.p_negative,
                "p_neutral": score.p_neutral,
                "p_positive": score.p_positive,
                "topic": score.topic,
                "p_topic": score.p_topic,
                "tickers": event.tickers,
                "kind": event.kind,
                "is_repeat": repeat,
                "event_time": iso_ms(event.event_time_ms),
                "model_version": self.scorer.version,
                "scored_at": iso_ms(scored_at_ms),
                "input": {"topic": o.topic, "partition": o.partition, "offset": o.offset},
            },
        )
        self.pending.messages.append(
            {
                "id": event.id,
                "event_time": from_ms(event.event_time_ms),
                "scored_at": from_ms(scored_at_ms),
                "text": event.text,
                "source": event.source,
                "kind": event.kind,
                "tickers": "," + ",".join(event.tickers) + "," if event.tickers else "",
                "topic_label": score.topic,
                "p_topic": score.p_topic,
                "sentiment": score.sentiment,
                "p_negative": score.p_negative,
                "p_neutral": score.p_neutral,
                "p_positive": score.p_positive,
                "is_repeat": repeat,
                "model_version": self.scorer.version,
                "input_topic": o.topic,
                "input_partition": o.partition,
                "input_offset": o.offset,
            }
        )

    # ---- checkpoints -------------------------------------------------------------------------
    def try_checkpoint(self) -> bool:
        """A checkpoint that survives a store outage (pause and retry) and a fence (rewind)."""
        try:
            self.checkpoint()
            return True
        except SQLAlchemyError as exc:
            self.metrics.commit_failures.labels(reason="store").inc()
            if self.store_ok:
                log.error("store unreachable, pausing consumption until it is back: %s", str(exc).splitlines()[0])
            self.store_ok = False
            if self.src is not None:
                self.src.pause()
            self._stop.wait(1.0)
        except DeliveryError as exc:
            self.metrics.commit_failures.labels(reason="delivery").inc()
            log.warning("output not delivered (%s): re-reading from the last checkpoint", exc)
            self.rewind()
        except FencedError as exc:
            self.metrics.commit_failures.labels(reason="fenced").inc()
            log.warning("%s: dropping uncommitted work and re-reading from the store's offsets", exc)
            self.rewind()
        return False

    def checkpoint(self, force: bool = False) -> CommitResult | None:
        """Commit, in this order:

        1. score the batch in hand;
        2. flush the producer: every scored event and dead letter is delivered (at least once);
        3. ONE store transaction: fenced offsets, window deltas, messages, story hashes,
           closed windows and their alerts;
        4. publish the new alerts (outbox: marked published once delivered);
        5. mirror the offsets into Kafka for lag tooling.
        """
        assert self.sink is not None
        self.score_batch()
        now = self.now_ms()
        due = self.windows.due(now)
        if not (self.pending.records or due or force):
            return None
        self.sink.flush()
        cp = Checkpoint(
            group_id=self.settings.group_id,
            offsets=dict(self.positions),
            expected=dict(self.expected),
            deltas=self.windows.deltas,
            messages=self.pending.messages,
            stories=self.novelty.pending,
            story_windows=self.pending.story_windows,
            close_starts=due,
        )
        result = self.store.commit_checkpoint(cp)
        # committed: the pending state is now the store's
        self.windows.take_deltas()
        self.windows.mark_closed(due)
        self.novelty.take_pending()
        self.pending = Pending(batch=self.pending.batch, batch_started_ms=self.pending.batch_started_ms)
        self.expected.update(cp.offsets)
        self.last_commit_ms = now
        if not self.store_ok:
            log.info("store reachable again, resuming consumption")
            self.store_ok = True
            if self.src is not None:
                self.src.resume()
        self.metrics.commits.inc()
        self.metrics.last_commit.set(now / 1000)
        self.observe_closed(result)
        if result.alerts:
            self.publish_alerts()
        if self.src is not None:
            self.src.commit_async(cp.offsets)
        return result

    def observe_closed(self, result: CommitResult) -> None:
        watch = self.watchlist
        for w in result.closed:
            if w.dimension == "all":
                self.metrics.windows_closed.inc()
            if w.dimension in ("all", "topic") or (w.dimension == "ticker" and w.key in watch):
                self.metrics.window_ratio.labels(dimension=w.dimension, key=w.key).set(w.negative_ratio)
                if w.verdict is not None:
                    self.metrics.window_baseline.labels(dimension=w.dimension, key=w.key).set(
                        w.verdict.baseline.threshold
                    )
        for alert in result.alerts:
            self.metrics.alerts.labels(dimension=alert.dimension, severity=alert.severity).inc()
            log.warning(
                "ALERT %s %s=%s window %s: negative ratio %.2f over threshold %.2f (n=%d)",
                alert.severity,
                alert.dimension,
                alert.key,
                alert.window_start.isoformat(),
                alert.negative_ratio,
                alert.threshold,
                alert.n,
            )

    def publish_alerts(self) -> None:
        """Send stored alerts not yet on the alerts topic, then mark them published."""
        assert self.sink is not None
        try:
            alerts = self.store.unpublished_alerts()
            for alert in alerts:
                self.sink.alert(alert.id, alert.to_json())
            if alerts:
                self.sink.flush()
                self.store.mark_published([a.id for a in alerts])
        except (DeliveryError, SQLAlchemyError) as exc:
            log.warning("alerts not published yet (%s); will retry", exc)

    def rewind(self) -> None:
        """Drop uncommitted work and seek every owned partition back to the store's offsets."""
        self.windows.take_deltas()
        self.novelty.discard_pending()
        self.pending = Pending()
        if self.sink is not None:
            self.sink.forget()
        if self.src is not None:
            self.seek_to_stored([TopicPartition(t, p) for t, p in self.positions])

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        assert self.src is not None
        stored = self._with_store_retry(
            "load offsets",
            lambda: self.store.load_offsets(self.settings.group_id, [(tp.topic, tp.partition) for tp in partitions]),
        )
        for tp in partitions:
            next_offset = stored[(tp.topic, tp.partition)]
            self.src.seek(tp, next_offset)
            self.expected[(tp.topic, tp.partition)] = next_offset
            self.positions[(tp.topic, tp.partition)] = next_offset if next_offset is not None else 0

    # ---- rebalancing (called from inside poll) ---------------------------------------------------
    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        if partitions and (self.pending.records or self.pending.batch):
            try:
                self.checkpoint()
            except (DeliveryError, FencedError, SQLAlchemyError) as exc:
                log.warning("could not commit before giving up partitions (%s); they will be re-read", exc)
        self.windows.take_deltas()
        self.novelty.discard_pending()
        self.pending = Pending()
        if self.sink is not None:
            self.sink.forget()
        self.windows.revoke((tp.topic, tp.partition) for tp in partitions)
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            self.expected.pop((tp.topic, tp.partition), None)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(tp.topic, str(tp.partition))
        self.assigned = bool(self.positions)
        self.metrics.assigned_partitions.set(len(self.positions))
        log.info("partitions revoked: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none")

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.seek_to_stored(partitions)
        self.windows.assign(((tp.topic, tp.partition) for tp in partitions), self.now_ms())
        self.assigned = bool(self.positions)
        self.metrics.assigned_partitions.set(len(self.positions))
        log.info(
            "partitions assigned: %s",
            ", ".join(f"{tp.topic}[{tp.partition}]@{self.expected[(tp.topic, tp.partition)]}" for tp in partitions)
            or "none",
        )

    # ---- periodic work -----------------------------------------------------------------------------
    def maybe_reload(self) -> None:
        if self.watcher is None:
            return
        try:
            scorer = self.watcher.poll()
        except ModelError as exc:
            self.metrics.model_reloads.labels(outcome="refused").inc()
            log.error("new model refused, keeping %s: %s", self.scorer.version, exc)
            return
        if scorer is None:
            return
        self.score_batch()  # the batch in hand is scored by the model it was read under
        old, self.scorer = self.scorer.version, scorer
        self.metrics.model_reloads.labels(outcome="loaded").inc()
        self.metrics.model_info.info(
            {"version": scorer.version, "precision": scorer.precision, "provider": scorer.provider}
        )
        log.info("model reloaded: %s -> %s", old, scorer.version)

    def update_lag(self, now: int) -> None:
        if self.src is None or now - self._last_lag_ms < 1000:
            return
        self._last_lag_ms = now
        for (topic, partition), lag in self.src.lag(self.positions):
            self.metrics.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def housekeeping(self, now: int) -> None:
        if now - self._last_prune_ms < 600_000:
            return
        self._last_prune_ms = now
        horizon_ms = self.settings.novelty_horizon_s * 1000
        mark = self.windows.watermark(now) or now
        self.novelty.forget_before(mark - horizon_ms)
        self.windows.forget_closed_before(mark - 2 * 86_400_000)
        wall = datetime.fromtimestamp(now / 1000, tz=UTC)
        try:
            self.store.prune(wall - timedelta(seconds=self.settings.messages_retention_s), from_ms(mark - horizon_ms))
        except SQLAlchemyError as exc:
            log.warning("pruning old messages failed: %s", exc)

    def _with_store_retry(self, what: str, fn: Callable[[], Any]) -> Any:
        delay = 0.5
        while True:
            try:
                return fn()
            except SQLAlchemyError as exc:
                if self.stopping:
                    raise
                log.error("store unreachable (%s), retrying in %.1fs: %s", what, delay, str(exc).splitlines()[0])
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

"""The consume-score-window-commit loop of ``finsent run``.

One thread owns the consumer, the model and the pending work. Signal handlers only
call ``stop()``. A checkpoint is the numbered sequence in ``checkpoint()``; when it
cannot complete (output not delivered, partitions taken over by another daemon),
the pending work is dropped and every partition is rewound to the store's offsets,
so each record is counted exactly once in the windows.

No record can stop the loop: the parser rejects what it can see is unusable, and a
record that still fails later — in the model, in serialisation, in the producer or in
the store — is isolated (the batch is split until the failing record is alone) and
dead-lettered with reason ``unprocessable``; the rest go on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from models.card import ModelError
from pipeline.batching import batch_due, checkpoint_due
from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.novelty import NoveltyFilter
from pipeline.schema import Event, Origin, Reason, Rejected, parse_record
from pipeline.scorer import ModelWatcher, Score, Scorer
from pipeline.sinks import DeliveryError, KafkaSink, RecordFailure, encode_json, iso_ms, max_output_bytes
from pipeline.source import KafkaSource
from pipeline.store import Checkpoint, CommitResult, FencedError, RecordError, RecordRows, Store
from pipeline.tables import from_ms
from pipeline.windows import Counts, PartitionProgress, WindowKey, dimension_keys, is_window_closed, window_start

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TP = tuple[str, int]

IDLE_POLL_MS = 200  # poll wait when no batch is waiting to be scored
HOUSEKEEPING_EVERY_MS = 600_000  # pruning of old messages, stories and windows
OUTBOX_BACKOFF_MAX_S = 60.0  # longest wait between two tries to publish stored alerts
RECORD_RETRIES = 5  # rounds of isolating unstorable records before the commit counts as a store failure


@dataclass
class Accounted:
    """One scored record since the last checkpoint: what it adds to the store, and how to dead-letter it."""

    event: Event
    value: bytes | None
    start: int
    keys: list[tuple[str, str]]
    sentiment: str
    p_negative: float
    unique: bool
    late: bool
    story: str | None  # the story hash when this record was its first sighting
    message: dict[str, Any]
    dropped: bool = False

    def deltas(self) -> dict[WindowKey, Counts]:
        out: dict[WindowKey, Counts] = {}
        for dimension, key in self.keys:
            out.setdefault((dimension, key, self.start), Counts()).add(
                self.sentiment, self.p_negative, self.unique, self.late
            )
        return out


@dataclass
class Pending:
    """Work read since the last checkpoint."""

    batch: list[tuple[Event, bytes | None]] = field(default_factory=list)
    batch_started_ms: int | None = None
    accounted: list[Accounted] = field(default_factory=list)
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
        self.novelty = NoveltyFilter(settings.novelty_horizon_s * 1000, max_stories=settings.novelty_max_stories)
        self.watchlist = frozenset(settings.watchlist)
        self.output_limit = max_output_bytes(settings)
        self.pending = Pending()
        self.positions: dict[TP, int] = {}  # next offset to read, per assigned partition
        self.expected: dict[TP, int | None] = {}  # the store's next offset as we last saw it
        self.event_ms: dict[TP, int | None] = {}  # newest event time read, per assigned partition
        self.stored_event_ms: dict[TP, int | None] = {}  # the same, as the store holds it
        self.last_record_ms: dict[TP, int] = {}  # wall clock of the last record (or of the assignment)
        self.watermark: int | None = None  # the global watermark as of our last commit
        self.sink: KafkaSink | None = None
        self.src: KafkaSource | None = None
        self.store_ok = False
        self.assigned = False
        self.last_commit_ms = self.now_ms()
        self._stop = threading.Event()
        self._last_lag_ms = 0
        self._last_prune_ms = self.now_ms()
        self._last_beat = time.monotonic()
        self._outbox_due = True
        self._outbox_next_try = 0.0
        self._outbox_backoff_s = 1.0

    # ---- lifecycle -------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit and return (safe from signal handlers)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def beat(self) -> None:
        """The loop is turning (or waiting on purpose): liveness is measured from the last beat."""
        self._last_beat = time.monotonic()

    def liveness(self) -> dict[str, Any]:
        """For ``/healthz``: alive while the loop turned within ``liveness_timeout_s``."""
        age = time.monotonic() - self._last_beat
        return {"alive": age <= self.settings.liveness_timeout_s, "seconds_since_loop_turned": round(age, 1)}

    def readiness(self) -> dict[str, bool]:
        return {
            "model_loaded": self.scorer is not None,
            "store_reachable": self.store_ok,
            "partitions_assigned": self.assigned,
        }

    def start(self) -> None:
        """Open the store (waiting while it is down), restore state, connect to Kafka."""
        self._with_store_retry("create the schema", self.store.create_schema)
        self.watermark = self._with_store_retry(
            "load the watermark", lambda: self.store.watermark(self.settings.group_id)
        )
        known = self._with_store_retry(
            "load story hashes", lambda: self.store.story_hashes(self.settings.novelty_max_stories)
        )
        self.novelty = NoveltyFilter(
            self.settings.novelty_horizon_s * 1000, known, max_stories=self.settings.novelty_max_stories
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
        """Commit what was delivered; never commit offsets past outputs that were not."""
        for attempt in range(3):
            try:
                self.checkpoint(force=True)
                return
            except (DeliveryError, FencedError) as exc:
                log.warning("final checkpoint: %s; dropping uncommitted work (it is read again on restart)", exc)
                self.rewind(seek=False)
            except SQLAlchemyError as exc:
                log.warning("final checkpoint attempt %d failed: %s", attempt + 1, str(exc).splitlines()[0])
                time.sleep(0.5)
        log.error("stopping without a final checkpoint: uncommitted records will be read again on restart")

    # ---- the loop --------------------------------------------------------------------------
    def step(self) -> None:
        """One turn: poll, parse, score when due, commit when due, reload the model when changed."""
        assert self.src is not None
        self.beat()
        wait = self.settings.max_wait_ms if self.pending.batch else IDLE_POLL_MS
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
            windows_due=bool(self.positions) and now - self.last_commit_ms >= self.settings.progress_interval_ms,
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
        now = self.now_ms()
        self.positions[tp] = record.offset + 1
        self.last_record_ms[tp] = now
        self.pending.records += 1
        parsed = parse_record(
            record.value,
            origin,
            now_ms=now,
            max_bytes=self.settings.max_message_bytes,
            max_future_ms=self.settings.max_future_s * 1000,
            watchlist=self.watchlist,
        )
        if isinstance(parsed, Rejected):
            self.dead_letter(parsed)
            return
        newest = self.event_ms.get(tp)
        if newest is None or parsed.event_time_ms > newest:
            self.event_ms[tp] = parsed.event_time_ms
        if not self.pending.batch:
            self.pending.batch_started_ms = now
        self.pending.batch.append((parsed, record.value))
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

    def reject(self, event: Event, value: bytes | None, reason: Reason, error: BaseException | str) -> None:
        """Dead-letter a record that parsed but failed later; ``error`` says where and why."""
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {str(error)[:300]}"
        self.dead_letter(Rejected(value, reason, detail, event.origin))

    def score_batch(self) -> None:
        batch, self.pending.batch, self.pending.batch_started_ms = self.pending.batch, [], None
        if not batch:
            return
        started = time.perf_counter()
        scored = self.score_isolated(batch)
        self.metrics.scoring_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        scored_at = self.now_ms()
        for (event, value), score in scored:
            try:
                self.account(event, value, score, scored_at)
            except Exception as exc:  # a record we cannot serialise or count: it alone is dead-lettered
                self.reject(event, value, "unprocessable", exc)

    def score_isolated(
        self, batch: Sequence[tuple[Event, bytes | None]]
    ) -> list[tuple[tuple[Event, bytes | None], Score]]:
        """Score the batch; when the model fails, split it until each failing record is alone and dead-letter those."""
        try:
            scores = self.scorer.score([event.text for event, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                event, value = batch[0]
                self.reject(event, value, "unprocessable", exc)
                return []
            mid = len(batch) // 2
            return self.score_isolated(batch[:mid]) + self.score_isolated(batch[mid:])
        return list(zip(batch, scores, strict=True))

    def account(self, event: Event, value: bytes | None, score: Score, scored_at_ms: int) -> None:
        """Build the scored event and the drill-down row, then count the message in its windows."""
        assert self.sink is not None
        start = window_start(event.event_time_ms, self.settings.window_size_ms)
        late = is_window_closed(start, self.settings.window_size_ms, self.settings.grace_ms, self.watermark)
        repeat = self.novelty.is_repeat(event.text, event.event_time_ms)
        first_sighting = None if repeat else self.novelty.last_hash
        o = event.origin
        payload = encode_json(
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
                "late": late,
                "event_time": iso_ms(event.event_time_ms),
                "model_version": self.scorer.version,
                "scored_at": iso_ms(scored_at_ms),
                "input": {"topic": o.topic, "partition": o.partition, "offset": o.offset},
            }
        )
        if len(payload) > self.output_limit:
            if first_sighting is not None:
                self.novelty.forget(first_sighting)
            self.reject(
                event, value, "too_large", f"the scored event would be {len(payload)} bytes (limit {self.output_limit})"
            )
            return
        accounted = Accounted(
            event=event,
            value=value,
            start=start,
            keys=list(dimension_keys(score.topic, event.tickers, event.source)),
            sentiment=score.sentiment,
            p_negative=score.p_negative,
            unique=not repeat,
            late=late,
            story=first_sighting,
            message=self.message_row(event, score, repeat, scored_at_ms),
        )
        self.sink.scored(event.id, payload, tag=accounted)
        self.pending.accounted.append(accounted)
        if late:
            self.metrics.late.inc()
            log.info(
                "late event %s[%d] offset=%d: its window %s had closed", o.topic, o.partition, o.offset, iso_ms(start)
            )
        if repeat:
            self.metrics.repeats.inc()
        self.metrics.scored.labels(sentiment=score.sentiment, topic_label=score.topic).inc()
        self.metrics.event_latency.observe(max(0.0, (scored_at_ms - event.event_time_ms) / 1000))

    def message_row(self, event: Event, score: Score, repeat: bool, scored_at_ms: int) -> dict[str, Any]:
        o = event.origin
        return {
            "id": event.id,
            "event_time": from_ms(event.event_time_ms),
            "scored_at": from_ms(scored_at_ms),
            "text": event.text[: self.settings.max_stored_text_chars],
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

    def drop(self, accounted: Accounted, error: BaseException | str) -> None:
        """Take a scored record back out of the pending work and dead-letter it instead."""
        if accounted.dropped:
            return
        accounted.dropped = True
        if accounted.story is not None:
            self.novelty.forget(accounted.story)
        self.reject(accounted.event, accounted.value, "unprocessable", error)

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

    def deliver(self) -> None:
        """Flush the producer; a record the producer or broker refuses is dead-lettered, and we flush again."""
        assert self.sink is not None
        failures: list[RecordFailure] = self.sink.flush()
        while failures:
            for failure in failures:
                if isinstance(failure.tag, Accounted):
                    self.drop(failure.tag, failure.error)
                else:
                    log.error("a dead letter or alert could not be produced: %s", failure.describe())
            failures = self.sink.flush()

    def checkpoint(self, force: bool = False) -> CommitResult | None:
        """Commit, in this order:

        1. score the batch in hand;
        2. flush the producer: every scored event and dead letter is delivered (at least once);
        3. ONE store transaction: fenced offsets with each partition's event-time progress, window
           deltas, messages, story hashes, the global watermark, closed windows and their alerts;
           a record the store refuses is isolated and dead-lettered, and the rest committed;
        4. publish stored alerts not yet on the alerts topic (outbox, with back-off);
        5. mirror the offsets into Kafka for lag tooling.
        """
        assert self.sink is not None
        self.score_batch()
        now = self.now_ms()
        if not (self.pending.records or self.positions or force):
            return None
        self.deliver()
        for _ in range(RECORD_RETRIES):
            cp = self.build_checkpoint(now)
            try:
                result = self.store.commit_checkpoint(cp)
                break
            except RecordError as exc:
                if not self.isolate_unstorable(exc):
                    raise
                self.deliver()
        else:
            raise RecordError("records kept failing to store after isolating the ones refused")
        # committed: the pending state is now the store's
        self.novelty.take_pending()
        self.pending = Pending(batch=self.pending.batch, batch_started_ms=self.pending.batch_started_ms)
        self.expected.update(cp.offsets)
        self.stored_event_ms.update({tp: p.event_ms for tp, p in cp.progress.items()})
        self.last_commit_ms = now
        if not self.store_ok:
            log.info("store reachable again, resuming consumption")
            self.store_ok = True
            if self.src is not None:
                self.src.resume()
        self.metrics.commits.inc()
        self.metrics.last_commit.set(now / 1000)
        self.observe(result)
        if result.alerts:
            self._outbox_due, self._outbox_next_try = True, 0.0
        self.publish_alerts()
        if self.src is not None:
            self.src.commit_async(cp.offsets)
        return result

    def build_checkpoint(self, now: int) -> Checkpoint:
        live = [a for a in self.pending.accounted if not a.dropped]
        deltas: dict[WindowKey, Counts] = {}
        story_windows: dict[str, list[WindowKey]] = {}
        for a in live:
            for key, counts in a.deltas().items():
                deltas.setdefault(key, Counts()).merge(counts)
            if a.story is not None and not a.late:
                story_windows[a.story] = [(d, k, a.start) for d, k in a.keys]
        return Checkpoint(
            group_id=self.settings.group_id,
            offsets=dict(self.positions),
            expected=dict(self.expected),
            deltas=deltas,
            messages=[a.message for a in live],
            stories=dict(self.novelty.pending),
            story_windows=story_windows,
            progress={tp: self.progress_of(tp, now) for tp in self.positions},
            partitions=self.src.input_partitions() if self.src is not None else None,
        )

    def progress_of(self, tp: TP, now: int) -> PartitionProgress:
        """Newest event time read (never past the wall clock), and an idle claim when caught up and quiet."""
        newest = self.event_ms.get(tp)
        quiet_since = self.last_record_ms.get(tp, now)
        idle = (
            self.src is not None
            and now - quiet_since >= self.settings.idle_partition_s * 1000
            and self.src.caught_up(tp, self.positions[tp])
        )
        return PartitionProgress(None if newest is None else min(newest, now), quiet_since if idle else None)

    def isolate_unstorable(self, error: RecordError) -> bool:
        """Find the records the store refuses (each tried alone, rolled back) and dead-letter them."""
        live = [a for a in self.pending.accounted if not a.dropped]
        rows = [RecordRows(a.message, a.deltas(), (a.story, a.event.event_time_ms) if a.story else None) for a in live]
        bad = self.store.unstorable(rows)
        for i in bad:
            self.drop(live[i], f"the store refused it: {error}")
        if not bad:
            log.error("the store refused a checkpoint but no single record: %s", error)
        return bool(bad)

    def observe(self, result: CommitResult) -> None:
        if result.watermark_ms is not None:
            if self.watermark is None or result.watermark_ms > self.watermark:
                self.watermark = result.watermark_ms
            self.metrics.watermark.set(self.watermark / 1000)
        if result.moved_late:
            self.metrics.late.inc(result.moved_late)
            log.warning("%d events reached the store after their window closed: counted as late", result.moved_late)
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
        """Outbox: send stored alerts not yet on the alerts topic, then mark them published; back off on failure."""
        assert self.sink is not None
        if not self._outbox_due or time.monotonic() < self._outbox_next_try:
            return
        try:
            alerts = self.store.unpublished_alerts()
            for alert in alerts:
                self.sink.alert(alert.id, alert.to_json())
            if alerts:
                self.deliver()
                self.store.mark_published([a.id for a in alerts])
        except (DeliveryError, KafkaError, SQLAlchemyError) as exc:
            self.sink.forget()
            log.warning("alerts not published yet (%s); retrying in %.0fs", exc, self._outbox_backoff_s)
            self._outbox_next_try = time.monotonic() + self._outbox_backoff_s
            self._outbox_backoff_s = min(self._outbox_backoff_s * 2, OUTBOX_BACKOFF_MAX_S)
            return
        self._outbox_due = False
        self._outbox_backoff_s = 1.0

    def drop_pending(self) -> None:
        """Forget uncommitted work: its records will be read again."""
        self.novelty.discard_pending()
        self.pending = Pending()
        if self.sink is not None:
            self.sink.forget()

    def rewind(self, seek: bool = True) -> None:
        """Drop uncommitted work and seek every owned partition back to the store's offsets."""
        self.drop_pending()
        if seek and self.src is not None:
            self.seek_to_stored([TopicPartition(t, p) for t, p in self.positions])
        else:
            for tp in self.positions:
                self.positions[tp] = self.expected.get(tp) or 0
                self.event_ms[tp] = self.stored_event_ms.get(tp)

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        assert self.src is not None
        stored = self._with_store_retry(
            "load offsets",
            lambda: self.store.load_progress(self.settings.group_id, [(tp.topic, tp.partition) for tp in partitions]),
        )
        now = self.now_ms()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            next_offset, event_ms = stored[key]
            self.src.seek(tp, next_offset)
            self.expected[key] = next_offset
            self.positions[key] = next_offset if next_offset is not None else 0
            self.event_ms[key] = self.stored_event_ms[key] = event_ms
            self.last_record_ms[key] = now

    # ---- rebalancing (called from inside poll) ---------------------------------------------------
    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        if partitions and (self.pending.records or self.pending.batch):
            try:
                self.checkpoint()
            except (DeliveryError, FencedError, RecordError, SQLAlchemyError) as exc:
                log.warning("could not commit before giving up partitions (%s); they will be re-read", exc)
        self.drop_pending()
        for tp in partitions:
            key = (tp.topic, tp.partition)
            for state in (self.positions, self.expected, self.event_ms, self.stored_event_ms, self.last_record_ms):
                state.pop(key, None)  # type: ignore[attr-defined]
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(tp.topic, str(tp.partition))
        self.assigned = bool(self.positions)
        self.metrics.assigned_partitions.set(len(self.positions))
        log.info("partitions revoked: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none")

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        self.seek_to_stored(partitions)
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
        if now - self._last_prune_ms < HOUSEKEEPING_EVERY_MS:
            return
        self._last_prune_ms = now
        horizon_ms = self.settings.novelty_horizon_s * 1000
        mark = min(self.watermark or now, now)
        self.novelty.forget_before(mark - horizon_ms)
        wall = datetime.fromtimestamp(now / 1000, tz=UTC)
        try:
            self.store.prune(
                wall - timedelta(seconds=self.settings.messages_retention_s),
                from_ms(mark - horizon_ms),
                wall - timedelta(seconds=self.settings.windows_retention_s),
            )
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
                self.beat()  # waiting on purpose is not being stuck
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

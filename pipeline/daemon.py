"""The consume-score-window-commit loop of ``finsent run``.

One thread owns the consumer and the pending work. Signal handlers only call ``stop()``;
the model runs on scoring worker threads beside the loop (``pipeline.scoring``).
A checkpoint is the numbered sequence in ``checkpoint()``; when it
cannot complete (output not delivered, partitions taken over by another daemon),
the pending work is dropped and every partition is rewound to the store's offsets,
so each record is counted exactly once in the windows.

No record can stop the loop: the parser rejects what it can see is unusable, and a
record that still fails later — in the model, in serialisation, in the producer or in
the store — is isolated (the batch is split until the failing record is alone) and
dead-lettered with reason ``unprocessable``; the rest go on.

The components (store, scorer, sink, source, metrics) are built and closed by
``pipeline.app``; the daemon only uses them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pipeline.assignment import AssignmentProtocol
from pipeline.batching import checkpoint_due
from pipeline.checkpointing import fatal
from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.novelty import NoveltyFilter
from pipeline.outbox import AlertOutbox
from pipeline.partitions import OwnedPartitions
from pipeline.pending import Accounted, Pending
from pipeline.schema import Event, Origin, Reason, Rejected, parse_record
from pipeline.scored import ScoredMessage, iso_ms
from pipeline.scorer import Score, Scorer, score_with_targets
from pipeline.scoring import Scored, ScoringWorker
from pipeline.sinks import DeliveryError, KafkaSink, encode_json, record_bytes
from pipeline.source import KafkaSource
from pipeline.store import FencedError, RecordError, Store
from pipeline.targets import batch_targets, first_batch, passes
from pipeline.tickers import NameLinker
from pipeline.upkeep import Upkeep
from pipeline.windows import dimension_keys, is_window_closed, window_start

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TP = tuple[str, int]

IDLE_POLL_MS = 200  # poll wait when nothing is waiting for the model
BUSY_POLL_MS = 5  # poll wait while the model works: collect its results promptly
RECORD_RETRIES = 5  # rounds of isolating unstorable records before the commit counts as a store failure
STORE_PAUSE_S = 1.0  # wait between checkpoint attempts while the store is unreachable
BACKPRESSURE_WAIT_S = 1.0  # one wait for a worker while a full batch is waiting (liveness beats between waits)
RETRY_MAX_S = 10.0  # longest wait between two attempts to reach the store at start-up or on assignment


class Daemon(AssignmentProtocol):
    """Wired by ``pipeline.app``; ``start(sink, source)`` then ``run()``, which blocks until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: PipelineMetrics,
        store: Store,
        scorer: Scorer,
        linker: NameLinker | None = None,
        upkeep: Upkeep | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.scorer = scorer
        self.linker = linker
        self.upkeep = upkeep or Upkeep(settings, metrics, store, watcher=None)
        self.clock = clock
        self.novelty = NoveltyFilter(settings.novelty_horizon_s * 1000, max_stories=settings.novelty_max_stories)
        self.watchlist = frozenset(settings.watchlist)
        self.pending = Pending()
        self.partitions = OwnedPartitions(
            settings.idle_partition_s * 1000, settings.idle_claim_ttl_ms, self.caught_up_at, settings.grace_ms
        )
        self.worker = ScoringWorker(settings.resolved_scoring_workers)
        self.watermark: int | None = None  # the global watermark as of our last commit
        self.sink: KafkaSink | None = None
        self.src: KafkaSource | None = None
        self.outbox: AlertOutbox | None = None
        self.model_ok = False
        self.store_ok = False
        self.last_commit_ms = self.now_ms()
        self._stop = threading.Event()
        self._last_beat = time.monotonic()

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
        """For ``/healthz``: alive while the loop turned, and the model answered, within ``liveness_timeout_s``."""
        age = time.monotonic() - self._last_beat
        model_age = self.worker.busy_for()
        limit = self.settings.liveness_timeout_s
        return {
            "alive": age <= limit and model_age <= limit,
            "seconds_since_loop_turned": round(age, 1),
            "seconds_in_model": round(model_age, 1),
        }

    def readiness(self) -> dict[str, bool]:
        return {
            "model_loaded": self.model_ok,
            "store_reachable": self.store_ok,
            "partitions_assigned": bool(self.partitions),
        }

    def start(self, sink: KafkaSink, source: KafkaSource) -> None:
        """Check the model, open the store (waiting while it is down), restore state, join the group."""
        self.scorer.score(["warm-up: the model answers"])
        self.model_ok = True
        self.with_store_retry("create the schema", self.store.create_schema)
        self.with_store_retry("claim the store", lambda: self.store.claim_group(self.settings.group_id))
        self.watermark = self.with_store_retry(
            "load the watermark", lambda: self.store.watermark(self.settings.group_id)
        )
        known = self.with_store_retry(
            "load story hashes", lambda: self.store.story_hashes(self.settings.novelty_max_stories)
        )
        self.novelty = NoveltyFilter(
            self.settings.novelty_horizon_s * 1000, known, max_stories=self.settings.novelty_max_stories
        )
        self.store_ok = True
        self.sink, self.src = sink, source
        self.outbox = AlertOutbox(self.store, sink, self.deliver)
        self.outbox.publish()
        source.subscribe(self.on_assigned, self.on_revoked)

    def run(self) -> None:
        """Consume until ``stop()``; then a last checkpoint."""
        if self.src is None:
            raise RuntimeError("call start() before run()")
        try:
            while not self.stopping:
                self.step()
            self.shutdown_checkpoint()
        finally:
            self.worker.close()

    def shutdown_checkpoint(self) -> None:
        """Commit what was delivered; never commit offsets past outputs that were not."""
        for attempt in range(3):
            try:
                self.checkpoint(force=True, drain=True)
                return
            except (DeliveryError, FencedError) as exc:
                log.warning("final checkpoint: %s; dropping uncommitted work (it is read again on restart)", exc)
                self.drop_pending()
                self.partitions.rewind()
            except (SQLAlchemyError, RecordError) as exc:
                log.warning("final checkpoint attempt %d failed: %s", attempt + 1, str(exc).splitlines()[0])
                time.sleep(STORE_PAUSE_S / 2)
            except Exception as exc:
                raise fatal(exc) from exc
        log.error("stopping without a final checkpoint: uncommitted records will be read again on restart")

    # ---- the loop --------------------------------------------------------------------------
    def step(self) -> None:
        """One turn: poll and parse, collect scores, feed the model, commit when due, then the upkeep."""
        src = self.connected()[1]
        self.beat()
        busy = not self.worker.idle or bool(self.pending.batch)
        wait = BUSY_POLL_MS if busy else IDLE_POLL_MS
        with self.metrics.timed("fetch"):
            records = src.poll(timeout_ms=wait, max_records=self.settings.batch_size * 4)
        for record in records:
            self.handle(record)
        self.account_results(self.worker.collect())
        self.feed_model()
        now = self.now_ms()
        if checkpoint_due(
            self.pending.records,
            self.last_commit_ms,
            now,
            interval_ms=self.settings.commit_interval_ms,
            windows_due=bool(self.partitions) and now - self.last_commit_ms >= self.settings.progress_interval_ms,
        ):
            self.try_checkpoint()
        elif not self.partitions and not self.pending.records and self.outbox is not None:
            self.outbox.publish()  # a member without partitions drains stranded alerts too (nothing else in flight)
        self.upkeep.tick(self, now)

    def handle(self, record: Any) -> None:
        origin = Origin(record.topic, record.partition, record.offset, record.timestamp, record.key)
        self.metrics.consumed.labels(topic=record.topic).inc()
        tp = (record.topic, record.partition)
        if tp not in self.partitions:  # a record of a partition we no longer own (rebalance race)
            return
        now = self.now_ms()
        if record.timestamp is not None and record.timestamp > 0:
            self.metrics.read_delay.observe(max(0.0, (now - record.timestamp) / 1000))
        self.partitions.read(tp, record.offset)
        self.pending.records += 1
        with self.metrics.timed("parse"):
            parsed = parse_record(
                record.value,
                origin,
                now_ms=now,
                max_bytes=self.settings.max_message_bytes,
                max_future_ms=self.settings.max_future_s * 1000,
                watchlist=self.watchlist,
                linker=self.linker,
            )
        if isinstance(parsed, Rejected):
            self.dead_letter(parsed)
            return
        self.pending.batch.append((parsed, record.value))
        # back-pressure: a full batch waits for a free worker instead of reading further ahead; a model
        # that never answers is reported by liveness through its time in the model
        while len(self.pending.batch) >= self.settings.batch_size and not self.worker.free and not self.stopping:
            self.account_results(self.worker.collect(wait_s=BACKPRESSURE_WAIT_S))
            self.feed_model()
            self.beat()

    def dead_letter(self, rejected: Rejected) -> None:
        self.connected()[0].dead_letter(rejected)
        self.metrics.invalid.labels(reason=rejected.reason).inc()
        o = rejected.origin
        log.warning(
            "rejected %s[%d] offset=%d: %s (%s)", o.topic, o.partition, o.offset, rejected.reason, rejected.detail
        )

    def reject(self, event: Event, value: bytes | None, reason: Reason, error: BaseException | str) -> None:
        """Dead-letter a record that parsed but failed later; ``error`` says where and why."""
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {str(error)[:300]}"
        self.dead_letter(Rejected(value, reason, detail, event.origin))

    def feed_model(self) -> None:
        """Latency-aware batching: what is waiting goes to the scoring workers as soon as one is free —
        one text at low load, up to ``batch_size`` under backlog — shared evenly among the free
        workers by the model passes it takes (a multi-company text takes one per company more),
        so that two half batches finish sooner than one whole, and at the same time."""
        costs = [passes(event, self.scorer) for event, _ in self.pending.batch] if self.worker.free else []
        while self.worker.free and self.pending.batch:
            size = first_batch(costs, self.worker.free_workers, self.settings.batch_size)
            batch, self.pending.batch = self.pending.batch[:size], self.pending.batch[size:]
            costs = costs[size:]
            targets = batch_targets(self.scorer, [e for e, _ in batch], self.linker)
            self.worker.submit(self.scorer, batch, [event.text for event, _ in batch], targets)

    def score_batch(self) -> None:
        """Score everything read so far (before a final checkpoint, a model swap or a rebalance)."""
        self.account_results(self.worker.drain())
        while self.pending.batch:
            self.feed_model()
            self.account_results(self.worker.drain())

    def account_results(self, results: Sequence[Scored]) -> None:
        for result in results:
            self.metrics.scoring_seconds.observe(result.seconds)
            self.metrics.batch_size.observe(len(result.items))
            if result.error is None and result.scores is not None:
                self.metrics.company_passes.inc(sum(len(score.targets) for score in result.scores))
                scored = list(zip(result.items, result.scores, strict=True))
            else:
                scored = self.isolate(result.items, result.error)
            scored_at = self.now_ms()
            for (event, value), score in scored:
                try:
                    self.account(event, value, score, scored_at)
                except Exception as exc:  # a record we cannot serialise or count: it alone is dead-lettered
                    self.reject(event, value, "unprocessable", exc)

    def isolate(
        self, batch: Sequence[tuple[Event, bytes | None]], error: BaseException | None
    ) -> list[tuple[tuple[Event, bytes | None], Score]]:
        """The model failed on ``batch``: split it until each failing record is alone, dead-letter those."""
        if len(batch) == 1:
            event, value = batch[0]
            self.reject(event, value, "unprocessable", error or "the model failed")
            return []
        mid = len(batch) // 2
        return self.score_isolated(batch[:mid]) + self.score_isolated(batch[mid:])

    def score_isolated(
        self, batch: Sequence[tuple[Event, bytes | None]]
    ) -> list[tuple[tuple[Event, bytes | None], Score]]:
        try:
            texts, targets = [e.text for e, _ in batch], batch_targets(self.scorer, [e for e, _ in batch], self.linker)
            scores = score_with_targets(self.scorer, texts, targets) if targets else self.scorer.score(texts)
        except Exception as exc:
            return self.isolate(batch, exc)
        self.metrics.company_passes.inc(sum(len(score.targets) for score in scores))
        return list(zip(batch, scores, strict=True))

    def account(self, event: Event, value: bytes | None, score: Score, scored_at_ms: int) -> None:
        """Publish the scored event, keep its drill-down row, and count it in its windows (on time or late)."""
        sink = self.connected()[0]
        o = event.origin
        self.partitions.saw_event(
            (o.topic, o.partition), event.event_time_ms, scored_at_ms, self.watermark, o.timestamp_ms
        )
        start = window_start(event.event_time_ms, self.settings.window_size_ms)
        late = is_window_closed(start, self.settings.window_size_ms, self.settings.grace_ms, self.watermark)
        repeat = self.novelty.is_repeat(event.text, event.event_time_ms)
        first_sighting = None if repeat else self.novelty.last_hash
        message = ScoredMessage(event, score, self.scorer.version, scored_at_ms, repeat, late)
        payload = encode_json(message.payload())
        if not sink.fits(event.id.encode("utf-8"), payload):
            if first_sighting is not None:
                self.novelty.forget(first_sighting)
            size = record_bytes(event.id.encode("utf-8"), payload)
            detail = f"the scored event would be a record of {size} bytes (the output topics take {sink.limit})"
            self.reject(event, value, "too_large", detail)
            return
        accounted = Accounted(
            event=event,
            value=value,
            start=start,
            keys=list(dimension_keys(score.topic, event.tickers, event.source)),
            tickers=message.ticker_scores(),
            sentiment=score.sentiment,
            p_negative=score.p_negative,
            p_positive=score.p_positive,
            unique=not repeat,
            late=late,
            story=first_sighting,
            message=message.row(self.settings.max_stored_text_chars),
        )
        with self.metrics.timed("produce"):
            sink.scored(event.id, payload, tag=accounted)
        self.pending.accounted.append(accounted)
        if late:
            self.metrics.late.inc()
            o = event.origin
            log.info("late event %s[%d] offset=%d: window %s had closed", o.topic, o.partition, o.offset, iso_ms(start))
        if repeat:
            self.metrics.repeats.inc()
        self.metrics.scored.labels(sentiment=score.sentiment, topic_label=score.topic).inc()
        self.metrics.event_latency.observe(max(0.0, (scored_at_ms - event.event_time_ms) / 1000))

    def connected(self) -> tuple[KafkaSink, KafkaSource]:
        if self.sink is None or self.src is None:
            raise RuntimeError("the daemon is not connected to Kafka: call start() first")
        return self.sink, self.src

    def with_store_retry(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, retried with back-off while the store is unreachable (a stop request ends the wait)."""
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
                delay = min(delay * 2, RETRY_MAX_S)

"""The checkpoint protocol of the daemon: deliver outputs, commit one transaction, or rewind.

A checkpoint either commits everything scored since the last one — outputs delivered first,
then offsets, progress, window deltas, messages and stories in ONE store transaction — or
drops it and re-reads from the store's offsets. Offsets stop at each partition's oldest record
still waiting for the model, so the model need not stop for a commit. Records the producer or the store refuse
are taken out one by one and dead-lettered, so they never block a commit.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from kafka import TopicPartition
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import Settings
from pipeline.metrics import PipelineMetrics
from pipeline.novelty import NoveltyFilter
from pipeline.outbox import AlertOutbox
from pipeline.partitions import OwnedPartitions
from pipeline.pending import Accounted, Pending
from pipeline.scoring import Scored, ScoringWorker
from pipeline.sinks import DeadLetter, DeliveryError, KafkaSink, RecordFailure
from pipeline.source import KafkaSource
from pipeline.store import Checkpoint, ClosingError, CommitResult, FencedError, RecordError, Store

if TYPE_CHECKING:
    from pipeline.schema import Event, Reason

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint failed for a reason that is neither the store's, a record's nor delivery's (a bug, or a
    setting that cannot work): retrying would fail the same way, so the daemon stops."""


RECORD_RETRIES = 5  # rounds of isolating unstorable records before the commit counts as a store failure
STORE_PAUSE_S = 1.0  # wait between checkpoint attempts while the store is unreachable


class CheckpointProtocol:
    """Mixed into ``Daemon``: the attributes below are the daemon's."""

    settings: Settings
    metrics: PipelineMetrics
    store: Store
    sink: KafkaSink | None
    src: KafkaSource | None
    outbox: AlertOutbox | None
    novelty: NoveltyFilter
    pending: Pending
    partitions: OwnedPartitions
    worker: ScoringWorker
    watermark: int | None
    watchlist: frozenset[str]
    store_ok: bool
    last_commit_ms: int
    _stop: threading.Event

    def now_ms(self) -> int:
        raise NotImplementedError

    def score_batch(self) -> None:
        raise NotImplementedError

    def account_results(self, results: Sequence[Scored]) -> None:
        raise NotImplementedError

    def feed_model(self) -> None:
        raise NotImplementedError

    def reject(self, event: Event, value: bytes | None, reason: Reason, error: BaseException | str) -> None:
        raise NotImplementedError

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        raise NotImplementedError

    def try_checkpoint(self) -> bool:
        """A checkpoint that survives a store outage (pause and retry) and a fence (rewind).

        A store that refuses the commit without any single record to blame (``RecordError`` left
        after isolation) is treated like an outage: pause and retry, never exit. Anything else — a
        window that cannot be closed, a bug — raises ``CheckpointError``: nothing was committed, and
        the daemon stops instead of closing the same windows again and again.
        """
        try:
            self.checkpoint()
            return True
        except (SQLAlchemyError, RecordError) as exc:
            self.metrics.commit_failures.labels(reason="store").inc()
            if self.store_ok:
                log.error("store unreachable, pausing consumption until it is back: %s", str(exc).splitlines()[0])
            self.store_ok = False
            if self.src is not None:
                self.src.pause()
            self._stop.wait(STORE_PAUSE_S)
        except DeliveryError as exc:
            self.metrics.commit_failures.labels(reason="delivery").inc()
            log.warning("output not delivered (%s): re-reading from the last checkpoint", exc)
            self.rewind()
        except FencedError as exc:
            self.metrics.commit_failures.labels(reason="fenced").inc()
            log.warning("%s: dropping uncommitted work and re-reading from the store's offsets", exc)
            self.rewind()
        except Exception as exc:
            self._stop.set()  # nothing more is committed: not on a revocation, not on the way out
            raise fatal(exc) from exc
        return False

    def deliver(self) -> list[RecordFailure]:
        """Flush the producer. A scored record the producer or broker refuses is dead-lettered instead; a dead
        letter refused is sent again as a short copy, and one refused even so fails the delivery
        (``DeliveryError``): no offset moves past a record that went nowhere. Returns the refused alerts."""
        if self.sink is None:
            raise RuntimeError("no sink: the daemon was not started")
        refused: list[RecordFailure] = []
        failures = self.sink.flush()
        while failures:
            for failure in failures:
                tag = failure.tag
                if isinstance(tag, Accounted):
                    self.drop(tag, failure.error)
                elif isinstance(tag, DeadLetter):
                    o = tag.rejected.origin
                    where = f"{o.topic}[{o.partition}] offset={o.offset}"
                    if tag.last_resort:
                        raise DeliveryError(f"the dead letter of {where} was refused even as a short copy")
                    log.error("the dead letter of %s was refused (%s): sending a short copy", where, failure.describe())
                    self.sink.dead_letter(tag.rejected, last_resort=True)
                else:
                    log.error("an alert could not be produced: %s", failure.describe())
                    refused.append(failure)
            failures = self.sink.flush()
        return refused

    def checkpoint(self, force: bool = False, drain: bool = False) -> CommitResult | None:
        """Commit, in this order:

        1. take the scores that came back and hand the model what waits; with ``drain`` (a final
           checkpoint, a rebalance) wait until everything read is scored. Records still waiting
           for the model are not committed: each partition's offset stops at its oldest one;
        2. flush the producer: every scored event and dead letter is delivered (at least once);
        3. ONE store transaction: fenced offsets with each partition's event-time progress, window
           deltas, messages, story hashes, the global watermark, closed windows and their alerts;
           a record the store refuses is isolated and dead-lettered, and the rest committed;
        4. publish stored alerts not yet on the alerts topic (outbox, with back-off);
        5. mirror the offsets into Kafka for lag tooling.
        """
        if self.sink is None or self.outbox is None:
            raise RuntimeError("no sink: the daemon was not started")
        if drain:
            self.score_batch()
        else:
            self.account_results(self.worker.collect())
            self.feed_model()  # the model works while the store commits
        now = self.now_ms()
        if not (self.pending.records or self.partitions or force):
            return None
        with self.metrics.timed("produce"):
            self.deliver()
        for _ in range(RECORD_RETRIES):
            held = self.unscored_offsets()
            cp = self.build_checkpoint(now, held)
            try:
                with self.metrics.timed("checkpoint"):
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
        self.pending = Pending(batch=self.pending.batch, records=sum(1 for _ in self.unscored()))
        self.partitions.committed(cp.offsets, cp.progress)
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
            self.outbox.raised()
        self.outbox.publish()
        if self.src is not None:
            self.src.commit_async(cp.offsets)
        return result

    def unscored(self) -> Iterator[tuple[Event, bytes | None]]:
        """Records read and parsed whose scores are not counted yet: in the model, then waiting for it."""
        return itertools.chain(self.worker.unscored(), self.pending.batch)

    def unscored_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the offset of its oldest record not scored yet: where its commit must stop."""
        held: dict[tuple[str, int], int] = {}
        for event, _ in self.unscored():
            o = event.origin
            tp = (o.topic, o.partition)
            held[tp] = min(o.offset, held.get(tp, o.offset))
        return held

    def build_checkpoint(self, now: int, held: dict[tuple[str, int], int] | None = None) -> Checkpoint:
        deltas, story_windows, messages = self.pending.totals()
        if self.src is not None:  # every record read was handled: the consumer's positions step over markers
            self.partitions.skip_to({tp: self.src.position(tp) for tp in self.partitions.owned})
        return Checkpoint(
            group_id=self.settings.group_id,
            offsets=self.partitions.positions(held),
            expected=self.partitions.expected(),
            deltas=deltas,
            messages=messages,
            stories=dict(self.novelty.pending),
            story_windows=story_windows,
            progress=self.partitions.progress(now, held),
            partitions=self.src.input_partitions() if self.src is not None else None,
            epochs=self.partitions.epochs(),
        )

    def isolate_unstorable(self, error: RecordError) -> bool:
        """Find the records the store refuses (each tried alone, rolled back) and dead-letter them."""
        live = self.pending.live()
        bad = self.store.unstorable([a.rows() for a in live])
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
        self.metrics.observe_closed(result.closed, result.alerts, self.watchlist)
        self.metrics.observe_incidents(result.incidents)
        for alert in result.alerts:
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

    def drop_pending(self) -> None:
        """Forget uncommitted work: its records will be read again."""
        self.worker.drain()  # scores of dropped records are dropped too
        self.novelty.discard_pending()
        self.pending = Pending()
        if self.sink is not None:
            self.sink.forget()

    def rewind(self) -> None:
        """Drop uncommitted work and seek every owned partition back to the store's offsets."""
        self.drop_pending()
        if self.src is not None:
            self.seek_to_stored([TopicPartition(t, p) for t, p in self.partitions.positions()])

    def drop(self, accounted: Accounted, error: BaseException | str) -> None:
        """Take a scored record back out of the pending work and dead-letter it instead."""
        if accounted.dropped:
            return
        accounted.dropped = True
        if accounted.story is not None:
            self.novelty.forget(accounted.story)
        self.reject(accounted.event, accounted.value, "unprocessable", error)


def fatal(exc: BaseException) -> CheckpointError:
    """The one sentence a checkpoint that cannot succeed ends the daemon with (and logs)."""
    what = str(exc) if isinstance(exc, ClosingError) else f"{type(exc).__name__}: {str(exc)[:300]}"
    message = (
        f"checkpoint failed, and retrying cannot help ({' '.join(what.split())}): a bug or a setting that cannot "
        "work; nothing of it was committed and its records are read again on restart"
    )
    log.critical("%s", message)
    return CheckpointError(message)

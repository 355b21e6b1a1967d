"""Partitions moving in and out (called from inside ``poll``), and rewinds to what the store holds.

On assignment the daemon takes each partition over in the store — raising its owner epoch, which
fences whoever held it before, a frozen member included — and seeks to the stored offset; the
partition's quiet spell goes on from the stored one. A rewind seeks back to the stored offsets and
progress without taking anything over: if another member took a partition meanwhile, our writes
stay fenced until the group tells us.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka import TopicPartition
from sqlalchemy.exc import SQLAlchemyError

from pipeline.checkpointing import CheckpointProtocol
from pipeline.sinks import DeliveryError
from pipeline.store import FencedError, RecordError

if TYPE_CHECKING:
    from pipeline.sinks import KafkaSink
    from pipeline.source import KafkaSource

log = logging.getLogger(__name__)

TP = tuple[str, int]


class AssignmentProtocol(CheckpointProtocol):
    """Mixed into ``Daemon``: rebalance callbacks and rewinds."""

    if TYPE_CHECKING:

        def connected(self) -> tuple[KafkaSink, KafkaSource]: ...

        def with_store_retry(self, what: str, fn: Callable[[], Any]) -> Any: ...

    def on_revoked(self, partitions: list[TopicPartition]) -> None:
        if partitions and not self._stop.is_set() and (self.pending.records or self.pending.batch):
            try:
                self.checkpoint(drain=True)
            except (DeliveryError, FencedError, RecordError, SQLAlchemyError) as exc:
                log.warning("could not commit before giving up partitions (%s); they will be re-read", exc)
        self.drop_pending()
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self.partitions.revoke(tps)
        if self.src is not None:
            self.src.forget(tps)
        self.metrics.forget_partitions(tps)
        self.metrics.assigned_partitions.set(len(self.partitions))
        log.info("partitions revoked: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none")

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Take the partitions over in the store (new owner epochs), seek to the stored offsets."""
        src = self.connected()[1]
        tps = [(tp.topic, tp.partition) for tp in partitions]
        src.forget(tps)
        stored = self.with_store_retry(
            "take partitions over", lambda: self.store.assign_partitions(self.settings.group_id, tps)
        )
        now = self.now_ms()
        for tp in partitions:
            s = stored[(tp.topic, tp.partition)]
            src.seek(tp, s.next_offset)
            self.partitions.assign((tp.topic, tp.partition), s, now)
        self.metrics.assigned_partitions.set(len(self.partitions))
        log.info(
            "partitions assigned: %s",
            ", ".join(f"{t}[{p}]@{stored[(t, p)].next_offset} (epoch {stored[(t, p)].epoch})" for t, p in tps)
            or "none",
        )

    def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        """Rewind: seek back to the stored offsets and restore the stored progress, keeping our epochs."""
        src = self.connected()[1]
        tps = [(tp.topic, tp.partition) for tp in partitions]
        stored = self.with_store_retry("load offsets", lambda: self.store.load_partitions(self.settings.group_id, tps))
        now = self.now_ms()
        for tp in partitions:
            s = stored[(tp.topic, tp.partition)]
            src.seek(tp, s.next_offset)
            self.partitions.restore((tp.topic, tp.partition), s, now)

    def caught_up_at(self, tp: TP) -> int | None:
        """When a fetch response last showed ``tp`` read to its log end (``pipeline.source``)."""
        return None if self.src is None else self.src.caught_up_at(tp)

"""The Kafka source: a consumer group member whose offsets come from the store.

Offsets in the store are the source of truth: on assignment each partition is
sought to its stored next offset (or the beginning when there is none). Kafka
offsets are committed too, after the store, for standard lag tooling.

"Caught up" is measured where Kafka puts it: the consumer's position (which steps over
transaction markers and records retention deleted) against the high-water mark of a fetch
response. Each response's high-water mark is taken, with the time, after every poll and
cleared in the consumer, so a partition whose fetches stop answering (a frozen member, a
leader it cannot reach) has no fresh evidence of being caught up, however its old mark reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from pipeline.config import Settings

log = logging.getLogger(__name__)

Assigned = Callable[[list[TopicPartition]], None]
Revoked = Callable[[list[TopicPartition]], None]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, on_assigned: Assigned, on_revoked: Revoked) -> None:
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.on_revoked(sorted(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.on_assigned(sorted(assigned))


def consumer_options(settings: Settings) -> dict[str, Any]:
    """kafka-python consumer settings: manual offsets, quick group joins, bounded reconnect back-off."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "group_id": settings.group_id,
        "client_id": f"{settings.client_id}-consumer",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "reconnect_backoff_max_ms": 1000,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "request_timeout_ms": max(30000, settings.session_timeout_ms + 5000),
        "fetch_max_bytes": max(52428800, settings.max_message_bytes * 2),
        "max_partition_fetch_bytes": max(1048576, settings.max_message_bytes + 65536),
        **settings.kafka_security(),
    }


class KafkaSource:
    """Subscribe, poll, seek, pause, and report lag."""

    def __init__(self, settings: Settings, consumer: KafkaConsumer | None = None) -> None:
        self.topics = list(settings.input_topics)
        self.consumer = consumer or KafkaConsumer(**consumer_options(settings))
        self.highwater: dict[tuple[str, int], tuple[int, int]] = {}  # (high-water mark, seen no earlier than: ms)
        self.observed_since_ms = wall_ms()
        self.blind = False  # the client keeps its partition state where we cannot read it

    def subscribe(self, on_assigned: Assigned, on_revoked: Revoked) -> None:
        """Join the group; the callbacks run inside ``poll`` when partitions move."""
        self.consumer.subscribe(topics=self.topics, listener=_Listener(on_assigned, on_revoked))

    def poll(self, timeout_ms: int, max_records: int) -> list[Any]:
        """Records from every assigned partition, in offset order per partition."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        self.observe_highwater()
        return [record for records in batches.values() for record in records]

    def observe_highwater(self) -> None:
        """Take the high-water marks fetch responses reported since the last call, and clear them.

        kafka-python keeps only the last mark a fetch response carried, with no time; clearing it
        (its own partition state, read by nothing but ``highwater()`` and lag sensors) makes the next
        response's mark a fresh observation, made after the previous call.
        """
        now = wall_ms()
        try:
            states = dict(self.consumer._subscription.assignment)
        except AttributeError:  # another client release: no observation, so no partition is ever claimed idle
            if not self.blind:
                log.error("cannot read high-water marks from this kafka-python: no partition will be claimed idle")
            self.blind = True
            states = {}
        for tp, state in states.items():
            high = getattr(state, "highwater", None)
            if high is not None:
                self.highwater[(tp.topic, tp.partition)] = (high, self.observed_since_ms)
                state.highwater = None
        self.observed_since_ms = now

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop what was observed of partitions that move: a new owner observes them afresh."""
        for tp in partitions:
            self.highwater.pop(tp, None)

    def position(self, tp: tuple[str, int]) -> int | None:
        """The consumer's next offset for ``tp`` (past transaction markers), ``None`` when unknown."""
        try:
            return self.consumer.position(TopicPartition(*tp), timeout_ms=0)
        except Exception:  # not assigned any more (a rebalance in flight), or no position yet
            return None

    def seek(self, tp: TopicPartition, next_offset: int | None) -> None:
        if next_offset is None:
            self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, next_offset)

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def input_partitions(self) -> frozenset[tuple[str, int]] | None:
        """Every partition of the input topics, owned by us or not; ``None`` while metadata is unknown."""
        out: set[tuple[str, int]] = set()
        for topic in self.topics:
            partitions = self.consumer.partitions_for_topic(topic)
            if not partitions:
                return None
            out.update((topic, p) for p in partitions)
        return frozenset(out)

    def caught_up_at(self, tp: tuple[str, int]) -> int | None:
        """When (wall clock, ms) a fetch response last showed ``tp`` read to its log end; ``None`` when the
        latest response showed records still to read, none came, or the partition is paused."""
        if TopicPartition(*tp) in self.consumer.paused():
            return None
        seen = self.highwater.get(tp)
        position = self.position(tp)
        if seen is None or position is None:
            return None
        high, at = seen
        return at if position >= high else None

    def pause(self) -> None:
        self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        self.consumer.resume(*self.consumer.paused())

    def commit_async(self, offsets: dict[tuple[str, int], int]) -> None:
        """Mirror the store's offsets into Kafka (best effort: the store stays the truth)."""
        owned = self.assignment()
        payload = {
            TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
            for (t, p), o in offsets.items()
            if TopicPartition(t, p) in owned
        }
        if payload:
            try:
                self.consumer.commit_async(payload)
            except Exception as exc:  # a rebalance in flight; the next commit catches up
                log.debug("Kafka offset commit skipped: %s", exc)

    def lag(self, positions: dict[tuple[str, int], int]) -> Iterable[tuple[tuple[str, int], int]]:
        """(partition, high-water mark minus next offset) for partitions whose high-water mark is known."""
        for tp, next_offset in positions.items():
            seen = self.highwater.get(tp)
            if seen is not None:
                yield tp, max(0, seen[0] - next_offset)

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def wall_ms() -> int:
    return int(time.time() * 1000)

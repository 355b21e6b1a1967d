"""The Kafka source: a consumer group member whose offsets come from the store.

Offsets in the store are the source of truth: on assignment each partition is
sought to its stored next offset (or the beginning when there is none). Kafka
offsets are committed too, after the store, for standard lag tooling.
"""

from __future__ import annotations

import logging
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

    def subscribe(self, on_assigned: Assigned, on_revoked: Revoked) -> None:
        """Join the group; the callbacks run inside ``poll`` when partitions move."""
        self.consumer.subscribe(topics=self.topics, listener=_Listener(on_assigned, on_revoked))

    def poll(self, timeout_ms: int, max_records: int) -> list[Any]:
        """Records from every assigned partition, in offset order per partition."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [record for records in batches.values() for record in records]

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

    def caught_up(self, tp: tuple[str, int], next_offset: int) -> bool:
        """Read up to the log end as the last fetch reported it, and not paused (a paused one is never idle).

        Uses the fetch responses' high-water mark, never ``end_offsets()`` (wrong on some brokers).
        """
        partition = TopicPartition(*tp)
        if partition in self.consumer.paused():
            return False
        try:
            high = self.consumer.highwater(partition)
        except Exception:  # not assigned any more (a rebalance in flight)
            return False
        return high is not None and next_offset >= high

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
        for (topic, partition), next_offset in positions.items():
            high = self.consumer.highwater(TopicPartition(topic, partition))
            if high is not None:
                yield (topic, partition), max(0, high - next_offset)

    def close(self) -> None:
        self.consumer.close(autocommit=False)

"""Kafka sinks: scored events, dead letters with their original bytes, and alerts."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from pipeline.config import Settings
from pipeline.schema import Rejected

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """Some output records were not delivered: the checkpoint must not be committed."""


def producer_options(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "client_id": f"{settings.client_id}-producer",
        "acks": "all",
        "linger_ms": 5,
        "retries": 2**31 - 1,
        "max_request_size": settings.max_message_bytes + (1 << 20),
        "reconnect_backoff_max_ms": 1000,
        "request_timeout_ms": 30000,
        **settings.kafka_security(),
    }


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dlq_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    o = rejected.origin
    return [
        ("finsent-error", rejected.reason.encode()),
        ("finsent-error-detail", rejected.detail.encode("utf-8", "replace")[:1000]),
        ("finsent-source-topic", o.topic.encode()),
        ("finsent-source-partition", str(o.partition).encode()),
        ("finsent-source-offset", str(o.offset).encode()),
    ]


class KafkaSink:
    """One producer for every output topic; ``flush`` is the at-least-once barrier before a commit."""

    def __init__(self, settings: Settings, producer: KafkaProducer | None = None) -> None:
        self.settings = settings
        self.producer = producer or KafkaProducer(**producer_options(settings))
        self.futures: list[Any] = []

    def scored(self, event_id: str, payload: dict[str, Any]) -> None:
        self._send(
            self.settings.scored_topic,
            key=event_id.encode("utf-8"),
            value=json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8"),
        )

    def dead_letter(self, rejected: Rejected) -> None:
        self._send(
            self.settings.dlq_topic, key=rejected.origin.key, value=rejected.value, headers=dlq_headers(rejected)
        )

    def alert(self, alert_id: str, payload: dict[str, Any]) -> None:
        self._send(
            self.settings.alerts_topic, key=alert_id.encode(), value=json.dumps(payload, default=str).encode("utf-8")
        )

    def _send(self, topic: str, **kwargs: Any) -> None:
        self.futures.append(self.producer.send(topic, **kwargs))

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every record sent since the last flush; ``DeliveryError`` if any failed."""
        try:
            self.producer.flush(timeout=timeout_s)
        except Exception as exc:  # KafkaTimeoutError and friends
            raise DeliveryError(f"producer flush failed: {exc}") from exc
        futures, self.futures = self.futures, []
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            first = failed[0].exception if failed[0].is_done else "not completed"
            raise DeliveryError(f"{len(failed)} of {len(futures)} records not delivered (first: {first})")

    def forget(self) -> None:
        """Stop tracking records whose work is being redone anyway."""
        self.futures = []

    def close(self) -> None:
        self.producer.close(timeout=5)

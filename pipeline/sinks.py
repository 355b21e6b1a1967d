"""Kafka sinks: scored events, dead letters with their original bytes, and alerts.

Every send is tracked until a ``flush`` has seen it delivered. A send that fails
because of the record itself (too large for the producer or the broker) is reported
per record, so the daemon can dead-letter that record and go on; any other failure
(broker unreachable, timeouts) is a ``DeliveryError``, and the caller redoes the work
from its last checkpoint. A failed send is never forgotten by a later flush: only
``forget`` (the caller dropping the work) clears it.

Outputs are sized against the output topics' limit (``broker_max_message_bytes``, Kafka's
max.message.bytes, default 1,048,588), key, headers and record framing included, the way
the producer and the broker count them; the producer's ``max_request_size`` is that limit.
A dead letter that would not fit carries the first bytes of the original and a header
saying how long it was; one the broker refuses anyway is sent again as a short copy, and
if even that is refused the flush fails, so no offset moves past a record that went nowhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from kafka.record.default_records import DefaultRecordBatchBuilder

from pipeline.config import Settings
from pipeline.schema import Rejected

log = logging.getLogger(__name__)

# Errors that are about the record, not the broker: retrying the same record can never succeed.
RECORD_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
    TypeError,
    ValueError,
)
FLUSH_TIMEOUT_S = 30.0  # a flush that takes longer is a delivery failure: the loop rewinds and keeps turning
MAX_BLOCK_MS = 10_000  # how long send() may wait for metadata or buffer space before failing
DLQ_DETAIL_BYTES = 1000
LAST_RESORT_BYTES = 1000  # the copy of a dead letter the broker refused at its full (or fitted) size


class DeliveryError(RuntimeError):
    """Some output records were not delivered: the checkpoint must not be committed."""


@dataclass(frozen=True)
class DeadLetter:
    """The tag of a dead letter: what to send again, shorter, if the broker refuses it."""

    rejected: Rejected
    last_resort: bool = False


@dataclass(frozen=True)
class AlertTag:
    """The tag of an alert: published only once delivered."""

    alert_id: str


@dataclass(frozen=True)
class RecordFailure:
    """A send that failed because of the record: ``tag`` is what the caller passed with it."""

    tag: Any
    error: Exception

    def describe(self) -> str:
        return f"{type(self.error).__name__}: {str(self.error)[:300]}"


def producer_options(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "client_id": f"{settings.client_id}-producer",
        "acks": "all",
        "linger_ms": 5,
        "retries": 2**31 - 1,
        "max_request_size": settings.broker_max_message_bytes,
        "max_block_ms": MAX_BLOCK_MS,
        "reconnect_backoff_max_ms": 1000,
        "request_timeout_ms": 30000,
        **settings.kafka_security(),
    }


def record_bytes(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> int:
    """The size of one record as the producer and the broker count it (record batch format v2)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or []))


def encode_json(payload: dict[str, Any]) -> bytes:
    """Strict, compact JSON (no NaN), UTF-8. Raises ``ValueError``/``TypeError``/``RecursionError`` if it cannot."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str).encode("utf-8")


def dlq_headers(rejected: Rejected, truncated_from: int | None = None) -> list[tuple[str, bytes]]:
    o = rejected.origin
    headers = [
        ("finsent-error", rejected.reason.encode()),
        ("finsent-error-detail", rejected.detail.encode("utf-8", "replace")[:DLQ_DETAIL_BYTES]),
        ("finsent-source-topic", o.topic.encode("utf-8", "replace")),
        ("finsent-source-partition", str(o.partition).encode()),
        ("finsent-source-offset", str(o.offset).encode()),
    ]
    if truncated_from is not None:
        headers.append(("finsent-truncated-from", str(truncated_from).encode()))
    return headers


class KafkaSink:
    """One producer for every output topic; ``flush`` is the at-least-once barrier before a commit."""

    def __init__(self, settings: Settings, producer: KafkaProducer | None = None) -> None:
        self.settings = settings
        self.producer = producer or KafkaProducer(**producer_options(settings))
        self.limit = settings.broker_max_message_bytes
        self.futures: list[tuple[Any, Any]] = []  # (future, tag) not yet seen delivered
        self.failed: list[RecordFailure] = []  # record-level failures not yet collected
        self.broken: Exception | None = None  # a transient failure: the work since the last flush is void

    def fits(self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> bool:
        return record_bytes(key, value, headers) <= self.limit

    def scored(self, event_id: str, value: bytes, tag: Any = None) -> None:
        self._send(self.settings.scored_topic, tag, key=event_id.encode("utf-8"), value=value)

    def dead_letter(self, rejected: Rejected, last_resort: bool = False) -> None:
        """The original bytes, or as many of their first bytes as fit (said in a header) when they do not;
        ``last_resort``: a short copy without the key, for a dead letter the broker refused."""
        key, value = rejected.origin.key, rejected.value
        headers = dlq_headers(rejected)
        if last_resort or not self.fits(key, value, headers):
            if last_resort:
                key = None
            headers = dlq_headers(rejected, len(value) if value is not None else 0)
            room = self.limit - record_bytes(key, b"", headers) - 8  # 8: the value's length, as a varint
            if room < 0:  # a key larger than the limit: the copy goes without it
                key, room = None, self.limit - record_bytes(None, b"", headers) - 8
            value = (value or b"")[: min(room, LAST_RESORT_BYTES) if last_resort else room]
        if value is None and key is None:
            value = b""  # a tombstone without a key: Kafka needs one of the two
        tag = DeadLetter(rejected, last_resort)
        self._send(self.settings.dlq_topic, tag, key=key, value=value, headers=headers)

    def alert(self, alert_id: str, payload: dict[str, Any]) -> bool:
        """Send an alert (tagged with its id); ``False`` when it cannot fit on the topic at all."""
        key, value = alert_id.encode(), encode_json(payload)
        if not self.fits(key, value):
            return False
        self._send(self.settings.alerts_topic, AlertTag(alert_id), key=key, value=value)
        return True

    def _send(self, topic: str, tag: Any, **kwargs: Any) -> None:
        try:
            future = self.producer.send(topic, **kwargs)
        except RECORD_ERRORS as exc:
            self.failed.append(RecordFailure(tag, exc))
        except KafkaError as exc:  # KafkaTimeoutError (no metadata, buffer full) and friends
            self.broken = self.broken or exc
        else:
            self.futures.append((future, tag))

    def flush(self, timeout_s: float | None = FLUSH_TIMEOUT_S) -> list[RecordFailure]:
        """Wait for every record sent since the last flush; return the sends that failed for the record's sake.

        Raises ``DeliveryError`` when anything else went wrong; the caller must then redo the
        work (and call ``forget``): the failed sends are kept until then.
        """
        try:
            self.producer.flush(timeout=timeout_s)
        except Exception as exc:  # KafkaTimeoutError and friends
            self.broken = self.broken or exc
        pending: list[tuple[Any, Any]] = []
        for future, tag in self.futures:
            if not future.is_done:
                pending.append((future, tag))
            elif future.failed():
                error = future.exception
                if isinstance(error, RECORD_ERRORS):
                    self.failed.append(RecordFailure(tag, error))
                else:
                    self.broken = self.broken or error
                    pending.append((future, tag))
        self.futures = pending
        if self.broken is not None or pending:
            first = self.broken if self.broken is not None else "not completed in time"
            raise DeliveryError(f"{len(pending)} records not delivered (first: {first})")
        failed, self.failed = self.failed, []
        return failed

    def forget(self) -> None:
        """Stop tracking records whose work is being redone anyway."""
        self.futures = []
        self.failed = []
        self.broken = None

    def close(self) -> None:
        self.producer.close(timeout=5)

"""The alert outbox: stored alerts not yet on the alerts topic are sent, then marked published.

Tried after every checkpoint that raised alerts, and drained from the store every few seconds
whatever this daemon raised: an alert committed by a daemon SIGKILLed before it published, or by
a commit whose acknowledgement was lost, is published by whichever daemon drains next. After a
failure it backs off, so an alert is never lost to a broker outage and a broken broker is not
hammered. Only alerts seen delivered are marked published: one the producer refuses stays in the
store, and is tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from pipeline.sinks import AlertTag, DeliveryError, KafkaSink, RecordFailure
from pipeline.store import Store

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
DRAIN_EVERY_S = 5.0  # unpublished alerts are looked for in the store this often, new or not


class AlertOutbox:
    def __init__(self, store: Store, sink: KafkaSink, deliver: Callable[[], Collection[RecordFailure]]) -> None:
        self.store = store
        self.sink = sink
        self.deliver = deliver  # flush, dead-lettering what the producer refuses; returns the refused alerts
        self.due = True  # unpublished alerts may exist (always at start-up)
        self.next_try = 0.0
        self.backoff_s = FIRST_BACKOFF_S
        self.drained_at = time.monotonic()

    def raised(self) -> None:
        """New alerts were stored: publish at the next chance, whatever the back-off."""
        self.due, self.next_try = True, 0.0

    def publish(self) -> None:
        """Send what the store holds unpublished, when due (new alerts, or the drain timer) and not backing off."""
        now = time.monotonic()
        if now - self.drained_at >= DRAIN_EVERY_S:
            self.due = True
        if not self.due or now < self.next_try:
            return
        self.drained_at = now
        try:
            alerts = self.store.unpublished_alerts()
            refused = {a.id for a in alerts if not self.sink.alert(a.id, a.to_json())}
            if alerts:
                failures = self.deliver()
                refused |= {f.tag.alert_id for f in failures if isinstance(f.tag, AlertTag)}
                self.store.mark_published([a.id for a in alerts if a.id not in refused])
        except (DeliveryError, KafkaError, SQLAlchemyError) as exc:
            self.sink.forget()
            self.back_off(f"alerts not published yet ({exc})")
            return
        if refused:
            self.back_off(f"{len(refused)} alerts refused by the producer or too large for the alerts topic")
            return
        self.due = False
        self.backoff_s = FIRST_BACKOFF_S

    def back_off(self, why: str) -> None:
        log.warning("%s; retrying in %.0fs", why, self.backoff_s)
        self.next_try = time.monotonic() + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)

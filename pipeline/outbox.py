"""The alert outbox: stored alerts not yet on the alerts topic are sent, then marked published.

Tried on every checkpoint while anything is unpublished, backing off after a failure, so
an alert is never lost to a broker outage and a broken broker is not hammered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from pipeline.sinks import DeliveryError, KafkaSink
from pipeline.store import Store

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0


class AlertOutbox:
    def __init__(self, store: Store, sink: KafkaSink, deliver: Callable[[], None]) -> None:
        self.store = store
        self.sink = sink
        self.deliver = deliver  # flush, dead-lettering what the producer refuses
        self.due = True  # unpublished alerts may exist (always at start-up)
        self.next_try = 0.0
        self.backoff_s = FIRST_BACKOFF_S

    def raised(self) -> None:
        """New alerts were stored: publish at the next chance, whatever the back-off."""
        self.due, self.next_try = True, 0.0

    def publish(self) -> None:
        if not self.due or time.monotonic() < self.next_try:
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
            log.warning("alerts not published yet (%s); retrying in %.0fs", exc, self.backoff_s)
            self.next_try = time.monotonic() + self.backoff_s
            self.backoff_s = min(self.backoff_s * 2, MAX_BACKOFF_S)
            return
        self.due = False
        self.backoff_s = FIRST_BACKOFF_S

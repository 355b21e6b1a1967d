"""Which models each daemon served or refused, and why: the ``model_versions`` table.

Events wait in a short queue and are written on the next tick the store answers, so a store
outage never stops the loop; writing the same event again rewrites its row (the key is daemon,
version and outcome), so retries never duplicate anything.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from models.card import ModelCard
from pipeline import tables as t

log = logging.getLogger(__name__)

Outcome = Literal["loaded", "refused"]
RETRY_S = 5.0  # after a failed write, the store is left alone this long
MAX_PENDING = 100  # events kept while the store is down (the oldest go first)


@dataclass(frozen=True)
class ModelEvent:
    """One model loaded or refused by this daemon."""

    version: str
    outcome: Outcome
    at: datetime
    reason: str | None = None
    precision: str | None = None
    model_sha256: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def served_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The card's test-set figures per task and variant (and the CPU they were measured on), nothing else."""
    kept: dict[str, Any] = {}
    for task in ("sentiment", "topic"):
        variants = metrics.get(task)
        if isinstance(variants, Mapping):
            kept[task] = {
                variant: {k: variants[variant].get(k) for k in ("n", "accuracy", "macro_f1", "ece")}
                for variant in ("test", "test_dedup")
                if isinstance(variants.get(variant), Mapping)
            }
    if "evaluated_on" in metrics:
        kept["evaluated_on"] = metrics["evaluated_on"]
    return kept


def event_for(card: ModelCard | None, version: str, outcome: Outcome, reason: str | None, at: datetime) -> ModelEvent:
    """The event of ``version`` (described by ``card`` when one could be read)."""
    if card is None:
        return ModelEvent(version, outcome, at, reason)
    return ModelEvent(
        version,
        outcome,
        at,
        reason,
        precision=card.precision,
        model_sha256=card.files.get(card.model_file),
        metrics=served_figures(card.metrics),
    )


def daemon_identity() -> str:
    """``host:pid``: which daemon (pod, machine) made the decision."""
    return f"{socket.gethostname()}:{os.getpid()}"[:255]


class ModelHistory:
    """Queues model events and writes them to ``model_versions`` when the store answers."""

    def __init__(self, engine: Engine, daemon: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.daemon = daemon or daemon_identity()
        self.clock = clock
        self.pending: deque[ModelEvent] = deque(maxlen=MAX_PENDING)
        self.retry_at = 0.0

    def add(self, event: ModelEvent) -> None:
        self.pending.append(event)

    def flush(self) -> bool:
        """Write what is queued; ``False`` (and a WARNING) when the store refused, to be retried later."""
        if not self.pending or self.clock() < self.retry_at:
            return not self.pending
        try:
            with self.engine.begin() as conn:
                for event in self.pending:
                    row = {
                        "daemon": self.daemon,
                        "version": event.version[:128],
                        "outcome": event.outcome,
                        "loaded_at": event.at,
                        "reason": event.reason,
                        "precision": event.precision,
                        "model_sha256": event.model_sha256,
                        "metrics": event.metrics,
                    }
                    stmt = t.insert_for(conn, t.model_versions).values(**row)
                    conn.execute(
                        stmt.on_conflict_do_update(
                            index_elements=["daemon", "version", "outcome"],
                            set_={k: stmt.excluded[k] for k in row if k not in ("daemon", "version", "outcome")},
                        )
                    )
        except SQLAlchemyError as exc:
            self.retry_at = self.clock() + RETRY_S
            log.warning(
                "recording model versions failed (%d waiting, retried in %.0fs): %s", len(self.pending), RETRY_S, exc
            )
            return False
        self.pending.clear()
        return True

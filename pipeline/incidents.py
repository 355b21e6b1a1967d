"""Which alerts tell one story: grouping alerts into incidents, pure (no store, Kafka or metrics).

One burst of negative messages pushes every dimension those messages touch over its threshold:
a ticker, its topics, its sources. The store hands this module, window by window, each new alert
with its evidence — the ids of the window's negative messages about its key — and the incidents
still open in the span; what comes back it persists in the checkpoint transaction.

* **Root.** Among alerts not yet in an incident, the root is the one whose evidence covers the
  largest share of the others' evidence (summed over the others: ``coverage``); ties go to the
  more specific dimension (ticker, topic, source, all), then to the smaller evidence, then to the
  key. The ``all`` dimension counts every message, so it covers anything trivially: it is a root
  only when no other alert is left.
* **Members.** Every other alert whose evidence overlaps the root's substantially: an overlap
  coefficient ``|A ∩ B| / min(|A|, |B|)`` of at least ``min_overlap``. The root then takes the next
  unassigned alerts the same way, so two unrelated bursts make two incidents.
* **Later windows.** An alert of a later window of the span joins an open incident when at least
  ``min_overlap`` of its evidence is about the incident's root (the store passes the root key's
  negative messages in that window); an alert on the root key itself always joins. Resolved
  incidents are never joined; acknowledged ones are (the store then does not publish the alert).

An incident's id is a hash of its root alert's id: re-processing never duplicates it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Status = Literal["open", "acknowledged", "resolved"]
STATUSES: tuple[Status, ...] = ("open", "acknowledged", "resolved")
SPECIFICITY = ("ticker", "topic", "source", "all")  # most specific first
default_min_overlap = 0.5


def incident_id(root_alert_id: str) -> str:
    """Deterministic incident id: the same root alert always gives the same id."""
    return f"incident-{hashlib.sha256(root_alert_id.encode()).hexdigest()[:24]}"


@dataclass(frozen=True)
class Candidate:
    """A new alert and its evidence: the ids of its window's negative messages about its key."""

    alert_id: str
    dimension: str
    key: str
    messages: frozenset[str]


@dataclass(frozen=True)
class OpenIncident:
    """An incident that may still take alerts; ``messages``: its root key's evidence in the window grouped."""

    id: str
    root_dimension: str
    root_key: str
    status: Status
    messages: frozenset[str]


@dataclass
class Incident:
    """A new incident of one window: its root and member alerts (the root first)."""

    id: str
    window_start: datetime
    root_dimension: str
    root_key: str
    alert_ids: list[str] = field(default_factory=list)
    status: Status = "open"

    @property
    def n_alerts(self) -> int:
        return len(self.alert_ids)


@dataclass
class Grouped:
    """The outcome for one window's new alerts: incidents they start, and alerts joining open ones."""

    new: list[Incident]
    joined: dict[str, str]  # alert id -> id of the open incident it joins


def coverage(a: frozenset[str], b: frozenset[str]) -> float:
    """The share of ``b``'s messages that ``a`` holds (0 when ``b`` is empty)."""
    return len(a & b) / len(b) if b else 0.0


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap coefficient: shared messages over the smaller set (0 when either is empty)."""
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def specificity(dimension: str) -> int:
    return SPECIFICITY.index(dimension) if dimension in SPECIFICITY else len(SPECIFICITY)


def choose_root(candidates: Sequence[Candidate]) -> Candidate:
    """The alert that explains the others best (see the module docstring for the order)."""

    def rank(c: Candidate) -> tuple[bool, float, int, int, str]:
        explained = sum(coverage(c.messages, o.messages) for o in candidates if o is not c)
        return (c.dimension == "all", -round(explained, 9), specificity(c.dimension), len(c.messages), c.key)

    return min(candidates, key=rank)


def join_open(candidate: Candidate, incidents: Sequence[OpenIncident], min_overlap: float) -> str | None:
    """The open incident a later window's alert belongs to, if any."""
    best: tuple[float, str] | None = None
    for incident in incidents:
        if incident.status == "resolved":
            continue
        if (candidate.dimension, candidate.key) == (incident.root_dimension, incident.root_key):
            share = 1.0
        else:
            share = coverage(incident.messages, candidate.messages)
        if share >= min_overlap and (best is None or share > best[0]):
            best = (share, incident.id)
    return None if best is None else best[1]


def group_window(
    window_start: datetime,
    candidates: Sequence[Candidate],
    incidents: Sequence[OpenIncident] = (),
    *,
    min_overlap: float = default_min_overlap,
) -> Grouped:
    """Group one window's new alerts: join open incidents first, then root-first among the rest."""
    joined: dict[str, str] = {}
    rest: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: c.alert_id):
        found = join_open(c, incidents, min_overlap)
        if found is None:
            rest.append(c)
        else:
            joined[c.alert_id] = found
    new: list[Incident] = []
    while rest:
        root = choose_root(rest)
        members = [c for c in rest if c is not root and overlap(root.messages, c.messages) >= min_overlap]
        new.append(
            Incident(
                incident_id(root.alert_id),
                window_start,
                root.dimension,
                root.key,
                [root.alert_id, *(m.alert_id for m in members)],
            )
        )
        taken = {root.alert_id, *(m.alert_id for m in members)}
        rest = [c for c in rest if c.alert_id not in taken]
    return Grouped(new, joined)

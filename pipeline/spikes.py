"""Spike detection on closed windows: pure functions, no I/O.

A closed window is a spike when it has at least ``min_count`` messages and its
negative ratio exceeds the key's threshold:

* with at least ``min_history`` earlier windows (each of ``min_count`` or more):
  ``max(floor, mean + z * max(std, min_std))`` of their negative ratios;
* with less history (a new key): ``max(floor, cold_start_ratio)``.

An alert's id is a hash of (dimension, key, window_start): re-processing never
duplicates it. Severity is ``critical`` when the ratio exceeds the threshold by
``critical_margin`` (default 0.2) or more, ``warning`` otherwise. Within ``cooldown_s``
after an alert on a key, no new alert is raised for that key.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class SpikeRule:
    min_count: int = 20
    z: float = 3.0
    floor: float = 0.35
    cold_start_ratio: float = 0.6
    min_history: int = 5
    min_std: float = 0.05
    cooldown_s: int = 600
    critical_margin: float = 0.2


@dataclass(frozen=True)
class Baseline:
    mean: float
    std: float
    windows: int
    threshold: float


@dataclass(frozen=True)
class Verdict:
    """The outcome for one closed window; ``is_spike`` says whether to alert."""

    is_spike: bool
    ratio: float
    baseline: Baseline
    score: float
    severity: Severity | None
    reason: str


def alert_id(dimension: str, key: str, window_start_ms: int) -> str:
    """Deterministic alert id: the same window always gives the same id."""
    digest = hashlib.sha256(f"{dimension}\x1f{key}\x1f{window_start_ms}".encode()).hexdigest()
    return f"alert-{digest[:24]}"


def baseline_of(history_ratios: Sequence[float], rule: SpikeRule) -> Baseline:
    """Threshold from the negative ratios of earlier qualifying windows."""
    if len(history_ratios) < max(rule.min_history, 1):
        mean = statistics.fmean(history_ratios) if history_ratios else 0.0
        std = statistics.pstdev(history_ratios) if len(history_ratios) > 1 else 0.0
        return Baseline(mean, std, len(history_ratios), max(rule.floor, rule.cold_start_ratio))
    mean = statistics.fmean(history_ratios)
    std = statistics.pstdev(history_ratios)
    return Baseline(mean, std, len(history_ratios), max(rule.floor, mean + rule.z * max(std, rule.min_std)))


def judge(
    n: int, n_negative: int, history_ratios: Sequence[float], rule: SpikeRule, *, in_cooldown: bool = False
) -> Verdict:
    """Decide whether a closed window with ``n`` messages, ``n_negative`` of them negative, is a spike."""
    ratio = n_negative / n if n else 0.0
    base = baseline_of(history_ratios, rule)
    spread = max(base.std, rule.min_std)
    score = (ratio - base.mean) / spread
    if n < rule.min_count:
        return Verdict(False, ratio, base, score, None, f"volume {n} < min_count {rule.min_count}")
    if ratio <= base.threshold:
        return Verdict(False, ratio, base, score, None, f"ratio {ratio:.3f} <= threshold {base.threshold:.3f}")
    if in_cooldown:
        return Verdict(False, ratio, base, score, None, "key is in cooldown after a recent alert")
    severity: Severity = "critical" if ratio - base.threshold >= rule.critical_margin else "warning"
    return Verdict(True, ratio, base, score, severity, f"ratio {ratio:.3f} > threshold {base.threshold:.3f}")

from __future__ import annotations

import pytest

from pipeline.spikes import SpikeRule, alert_id, baseline_of, judge

RULE = SpikeRule(min_count=20, z=3.0, floor=0.35, cold_start_ratio=0.6, min_history=5, min_std=0.05)
CALM = [0.10, 0.12, 0.08, 0.11, 0.09, 0.10]


@pytest.mark.parametrize(
    ("n", "n_negative", "history", "cooldown", "spike", "severity"),
    [
        (100, 60, CALM, False, True, "critical"),  # 0.60 vs threshold 0.35 (floor)
        (100, 40, CALM, False, True, "warning"),  # 0.40 just over the floor
        (100, 30, CALM, False, False, None),  # 0.30: over mean+3*min_std (0.25) but under the floor
        (10, 9, CALM, False, False, None),  # too few messages
        (100, 60, CALM, True, False, None),  # cooldown
        (100, 55, [0.1, 0.1], False, False, None),  # new key: cold-start threshold 0.6
        (100, 70, [0.1, 0.1], False, True, "warning"),
        (100, 60, [0.5, 0.55, 0.45, 0.5, 0.52], False, False, None),  # a key that is always negative
    ],
)
def test_judge_table(
    n: int, n_negative: int, history: list[float], cooldown: bool, spike: bool, severity: str | None
) -> None:
    verdict = judge(n, n_negative, history, RULE, in_cooldown=cooldown)
    assert verdict.is_spike is spike, verdict.reason
    assert verdict.severity == severity


def test_baseline_uses_std_floor() -> None:
    base = baseline_of([0.2] * 10, RULE)
    assert base.mean == pytest.approx(0.2) and base.std == 0
    assert base.threshold == pytest.approx(0.35)  # max(floor, 0.2 + 3 * 0.05)
    noisy = baseline_of([0.1, 0.3] * 5, RULE)
    assert noisy.threshold == pytest.approx(0.2 + 3 * 0.1)


def test_alert_id_is_deterministic_and_distinct() -> None:
    assert alert_id("ticker", "AAPL", 60_000) == alert_id("ticker", "AAPL", 60_000)
    assert (
        len(
            {alert_id("ticker", "AAPL", 60_000), alert_id("ticker", "AAPL", 120_000), alert_id("topic", "AAPL", 60_000)}
        )
        == 3
    )

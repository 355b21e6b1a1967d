"""The rollup arithmetic (``pipeline.rollups.add_windows``): counts add per hour and per UTC day, baselines are
weighted by their windows' messages with thresholds capped at 1, and a later addition to the same bucket adds."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from pipeline import rollups
from pipeline import tables as t
from pipeline.windows import COUNT_FIELDS

DAY_START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def counts(n: int, negative: int, late: int = 0) -> dict[str, float]:
    return {name: 0 for name in COUNT_FIELDS} | {"n": n, "n_negative": negative, "n_late": late, "sum_index": n / 10}


def test_windows_add_into_their_hour_and_day_with_weighted_baselines() -> None:
    engine = create_engine("sqlite://")
    t.metadata.create_all(engine, tables=[t.window_rollups])
    minute = 60_000
    with engine.begin() as conn:
        rollups.add_windows(
            conn,
            [
                ("ticker", "NVDA", DAY_START_MS + 5 * minute, counts(10, 2), 0.2, 0.5),
                ("ticker", "NVDA", DAY_START_MS + 50 * minute, counts(30, 3), 0.1, 1.7),  # threshold capped at 1
                ("ticker", "NVDA", DAY_START_MS + 70 * minute, counts(4, 4), None, None),  # no baseline: counts only
            ],
        )
        rollups.add_windows(conn, [("ticker", "NVDA", DAY_START_MS + 5 * minute, counts(0, 0, late=2), 0.2, 0.5)])
    with engine.connect() as conn:
        rows = {(x.grain_s, x.bucket_s): x for x in conn.execute(select(t.window_rollups))}
    hour0, day = DAY_START_MS // 1000, DAY_START_MS // 1000
    assert set(rows) == {(3600, hour0), (3600, hour0 + 3600), (86400, day)}
    first = rows[(3600, hour0)]
    assert (first.n, first.n_negative, first.n_late, first.base_n) == (40, 5, 2, 40)
    assert first.base_sum == pytest.approx(0.2 * 10 + 0.1 * 30)
    assert first.thr_sum == pytest.approx(0.5 * 10 + 1.0 * 30)
    assert first.latest_s == hour0 + 50 * 60
    second = rows[(3600, hour0 + 3600)]
    assert (second.n, second.base_n, second.base_sum, second.latest_s) == (4, 0, 0.0, None)
    whole = rows[(86400, day)]
    assert (whole.n, whole.n_negative, whole.n_late, whole.base_n) == (44, 9, 2, 40)
    assert whole.sum_index == pytest.approx(4.4)
    assert whole.latest_s == hour0 + 50 * 60

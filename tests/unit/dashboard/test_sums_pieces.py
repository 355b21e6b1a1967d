"""Which part of a range the dashboard reads from the rollups and which from the windows (``dashboard.sums.pieces``):
every window of the range counted exactly once, open or closed, whatever the range's start and the column width."""

from __future__ import annotations

import random

import pytest

from dashboard.sums import Piece, pieces
from pipeline import tables as t

HOUR, DAY = 3600, 86400


def times(piece_list: list[Piece], at: int, closed: bool) -> int:
    """How many times the pieces count a window starting at ``at`` (epoch s)."""
    count = 0
    for p in piece_list:
        lo = p.start_s if p.start_s is not None else -(10**12)
        hi = p.end_s if p.end_s is not None else 10**12
        if p.source == "windows" or (p.source == "open" and not closed):
            count += lo <= at < hi
        elif p.source == "rollups" and closed:
            count += lo <= at // p.grain * p.grain < hi
    return count


@pytest.mark.parametrize("seed", range(40))
def test_every_window_in_the_range_counts_once_and_none_outside(seed: int) -> None:
    rng = random.Random(seed)
    column = rng.choice([60, 900, HOUR, 2 * HOUR, 6 * HOUR, DAY, 2 * DAY, 7 * DAY])
    start = rng.choice([None, 1_700_000_000 + rng.randrange(0, 3 * DAY, 60)])
    grain = DAY if column % DAY == 0 else HOUR
    base = start if start is not None else 1_700_000_000
    end = rng.choice([None, (base // grain + rng.randrange(1, 6)) * grain])
    plan = pieces(start, end, column)
    for piece in plan:
        assert piece.source != "rollups" or column % piece.grain == 0, "a rollup never straddles two columns"
    for at in range(base - 2 * DAY, base + 8 * DAY, 60 * 7):
        inside = (start is None or at >= start) and (end is None or at < end)
        for closed in (True, False):
            assert times(plan, at, closed) == int(inside), (plan, at, closed)


def test_short_columns_read_windows_and_long_ones_mostly_rollups() -> None:
    assert pieces(1000, None, 900) == [Piece("windows", 1000, None)]
    start = 10 * DAY + 5 * HOUR + 120  # 05:02 of a day
    assert pieces(start, None, 4 * DAY) == [
        Piece("windows", start, 10 * DAY + 6 * HOUR),
        Piece("rollups", 10 * DAY + 6 * HOUR, 11 * DAY, HOUR),
        Piece("rollups", 11 * DAY, None, DAY),
        Piece("open", 10 * DAY + 6 * HOUR, None),
    ]
    assert pieces(None, None, 2 * HOUR) == [Piece("rollups", None, None, HOUR), Piece("open", None, None)]
    assert set(t.ROLLUP_GRAINS_S) == {HOUR, DAY}


def test_an_end_off_the_grain_is_refused() -> None:
    with pytest.raises(ValueError, match="must end"):
        pieces(0, DAY + HOUR, DAY)

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.windows import (
    Counts,
    Progress,
    WindowTracker,
    combined_watermark,
    dimension_keys,
    is_window_closed,
    window_start,
)

MIN = 60_000


@pytest.mark.parametrize(
    ("ts", "size", "expected"),
    [(0, MIN, 0), (59_999, MIN, 0), (60_000, MIN, 60_000), (61_234, MIN, 60_000), (125_000, 30_000, 120_000)],
)
def test_window_start(ts: int, size: int, expected: int) -> None:
    assert window_start(ts, size) == expected


@pytest.mark.parametrize(
    ("start", "grace", "mark", "closed"),
    [
        (0, 0, None, False),
        (0, 0, 59_999, False),
        (0, 0, 60_000, True),
        (0, 30_000, 60_000, False),
        (0, 30_000, 89_999, False),
        (0, 30_000, 90_000, True),
    ],
)
def test_is_window_closed(start: int, grace: int, mark: int | None, closed: bool) -> None:
    assert is_window_closed(start, MIN, grace, mark) is closed


@pytest.mark.parametrize(
    ("progress", "now", "expected"),
    [
        ([], 5, None),
        ([(None, 0)], 5_000, None),  # assigned, nothing read yet, not idle: hold back
        ([(1000, 10_000)], 10_000, 1000),
        ([(1000, 10_000), (5000, 10_000)], 10_000, 1000),  # the slowest active partition decides
        ([(1000, 0), (5000, 10_000)], 11_000, 5000),  # partition 1 idle for 11 s: it no longer holds back
        ([(None, 0), (5000, 10_000)], 11_000, 5000),  # an empty partition stops holding back once idle
        ([(1000, 10_000), (5000, 10_000)], 25_000, 20_000),  # all idle: newest + wall time since last record
    ],
)
def test_combined_watermark(progress: list[tuple[int | None, int]], now: int, expected: int | None) -> None:
    assert combined_watermark([Progress(m, seen) for m, seen in progress], now, idle_ms=10_000) == expected


def test_a_partition_read_ahead_does_not_close_windows_of_the_others() -> None:
    tracker = WindowTracker(size_ms=MIN, grace_ms=0, idle_ms=10_000)
    tracker.assign([("t", 0), ("t", 1)], now_wall_ms=0)
    keys = [("all", "all")]
    for minute in range(10):  # partition 0 delivers ten minutes of backlog at once
        assert tracker.add(minute * MIN, 100, keys, "neutral", 0.0, True, partition=("t", 0))
    assert tracker.due(100) == [], "partition 1 has given nothing yet"
    assert tracker.add(5_000, 200, keys, "negative", 1.0, True, partition=("t", 1)), "not late"
    assert tracker.due(200) == []
    assert tracker.add(3 * MIN, 300, keys, "neutral", 0.0, True, partition=("t", 1))
    assert tracker.due(300) == [0, MIN, 2 * MIN]


def test_dimension_keys() -> None:
    assert list(dimension_keys("Earnings", ["AAPL", "MSFT"], "wire")) == [
        ("all", "all"),
        ("topic", "Earnings"),
        ("ticker", "AAPL"),
        ("ticker", "MSFT"),
        ("source", "wire"),
    ]
    assert list(dimension_keys("Macro", [], None)) == [("all", "all"), ("topic", "Macro")]


def test_tracker_late_events_and_closing() -> None:
    tracker = WindowTracker(size_ms=MIN, grace_ms=10_000)
    keys = [("all", "all")]
    assert tracker.add(5_000, 1_000_000, keys, "negative", 0.9, True)
    assert tracker.add(65_000, 1_000_000, keys, "neutral", 0.1, True)
    assert tracker.due(1_000_000) == []
    assert tracker.add(71_000, 1_000_000, keys, "positive", 0.0, False)  # watermark 71s closes window 0
    assert tracker.due(1_000_000) == [0]
    tracker.mark_closed([0])
    assert not tracker.add(30_000, 1_000_000, keys, "negative", 1.0, True), "late for a closed window"
    assert tracker.deltas[("all", "all", 60_000)] == Counts(2, 1, 0, 1, 1, 0.1)
    # quiet stream: 60 s of wall clock later the watermark has moved on and window 60s closes too
    assert tracker.due(1_060_000) == [60_000]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10 * MIN), st.sampled_from(["negative", "neutral", "positive"])), max_size=80))
def test_totals_conserved_and_each_event_in_one_window(events: list[tuple[int, str]]) -> None:
    tracker = WindowTracker(size_ms=MIN, grace_ms=100 * MIN)  # nothing is late
    for ts, sentiment in events:
        assert tracker.add(ts, 0, [("all", "all"), ("topic", "t")], sentiment, 0.5, True)
    for dim in ("all", "topic"):
        counts = [c for (d, _, _), c in tracker.deltas.items() if d == dim]
        assert sum(c.n for c in counts) == len(events)
        assert sum(c.n_negative + c.n_neutral + c.n_positive for c in counts) == len(events)
    for (_, _, start), c in tracker.deltas.items():
        assert c.n == sum(1 for ts, _ in events if start <= ts < start + MIN)

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.windows import (
    COUNT_FIELDS,
    Counts,
    dimension_keys,
    is_window_closed,
    sentiment_index,
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


def test_dimension_keys() -> None:
    assert list(dimension_keys("Earnings", ["AAPL", "MSFT"], "wire")) == [
        ("all", "all"),
        ("topic", "Earnings"),
        ("ticker", "AAPL"),
        ("ticker", "MSFT"),
        ("source", "wire"),
    ]
    assert list(dimension_keys("Macro", [], None)) == [("all", "all"), ("topic", "Macro")]


def test_late_counts_go_to_their_own_columns() -> None:
    c = Counts()
    c.add("negative", 0.9, True)
    c.add("neutral", 0.1, False)
    c.add("negative", 0.8, True, late=True)
    c.add("positive", 0.0, True, late=True)
    on_time = dataclasses.replace(c, sum_confidence=0.0, sum_index=0.0)
    assert on_time == Counts(
        n=2, n_unique=1, n_negative=1, n_neutral=1, sum_p_negative=1.0, n_late=2, n_late_negative=1
    )
    assert c.sum_confidence == pytest.approx(0.9 + 0.9), "late messages weigh nothing in the index"
    assert c.as_late() == Counts(n_late=4, n_late_negative=2)


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([], None),
        ([(0.9, 0.05)], (0.05 - 0.9)),  # one message: its own p_positive - p_negative
        ([(0.0, 1.0), (1.0, 0.0)], 0.0),
        ([(0.0, 1.0), (0.2, 0.1)], (1.0 * 1.0 + 0.7 * -0.1) / (1.0 + 0.7)),  # a confident message weighs more
        ([(0.1, 0.1)] * 3, 0.0),
    ],
)
def test_sentiment_index_is_the_confidence_weighted_mean(scores: list[tuple[float, float]], expected: float) -> None:
    c = Counts()
    for p_negative, p_positive in scores:
        c.add("neutral", p_negative, True, p_positive=p_positive)
    assert c.index == (None if expected is None else pytest.approx(expected))
    assert "sum_index" in COUNT_FIELDS and "sum_confidence" in COUNT_FIELDS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.booleans()), min_size=1, max_size=50))
def test_sentiment_index_stays_in_range_and_windows_add_up(scores: list[tuple[float, float, bool]]) -> None:
    parts = [Counts(), Counts()]
    whole = Counts()
    for i, (a, b, late) in enumerate(scores):
        p_negative, p_positive = a, b * (1 - a)  # the three probabilities sum to 1
        parts[i % 2].add("neutral", p_negative, True, late, p_positive=p_positive)
        whole.add("neutral", p_negative, True, late, p_positive=p_positive)
    merged = Counts()
    for part in parts:
        merged.merge(part)
    assert whole.index is None or -1.0 <= whole.index <= 1.0
    assert merged.index == (None if whole.index is None else pytest.approx(whole.index))
    assert sentiment_index(merged.sum_index, merged.sum_confidence) == merged.index


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10 * MIN), st.sampled_from(["negative", "neutral", "positive"]), st.booleans()),
        max_size=80,
    )
)
def test_every_event_counted_once_on_time_or_late(events: list[tuple[int, str, bool]]) -> None:
    windows: dict[int, Counts] = {}
    for ts, sentiment, late in events:
        windows.setdefault(window_start(ts, MIN), Counts()).add(sentiment, 0.5, True, late)
    assert sum(c.n + c.n_late for c in windows.values()) == len(events)
    assert sum(c.n_negative + c.n_neutral + c.n_positive for c in windows.values()) == sum(
        1 for e in events if not e[2]
    )
    merged = Counts()
    for c in windows.values():
        merged.merge(c)
    assert merged.n_late_negative == sum(1 for _, s, late in events if late and s == "negative")

"""The store on SQLite and on the real PostgreSQL: fenced offsets, additive deltas, spikes on close."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.spikes import SpikeRule, alert_id
from pipeline.store import Checkpoint, FencedError, Store
from pipeline.windows import Counts

pytestmark = pytest.mark.integration
MIN = 60_000


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(url, window_size_ms=MIN, rule=SpikeRule(min_count=5, min_history=2, floor=0.3, cold_start_ratio=0.6))
    s.create_schema()
    yield s
    s.close()


def test_offsets_are_fenced(store: Store) -> None:
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 10}, expected={("t", 0): None}))
    with pytest.raises(FencedError):  # a second owner that also thought the partition was new
        store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 4}, expected={("t", 0): None}))
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 20}, expected={("t", 0): 10}))
    with pytest.raises(FencedError):  # a stale owner
        store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 15}, expected={("t", 0): 10}))
    assert store.load_offsets("g", [("t", 0), ("t", 1)]) == {("t", 0): 20, ("t", 1): None}


def test_fenced_commit_writes_nothing(store: Store) -> None:
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 10}, expected={("t", 0): None}))
    stale = Checkpoint(
        "g", offsets={("t", 0): 12}, expected={("t", 0): 3}, deltas={("all", "all", 0): Counts(n=2, n_negative=2)}
    )
    with pytest.raises(FencedError):
        store.commit_checkpoint(stale)
    assert store.window_totals() == {}


def test_deltas_add_up_and_a_spike_raises_one_alert(store: Store) -> None:
    def window(start: int, n: int, neg: int) -> dict:  # type: ignore[type-arg]
        return {
            ("ticker", "ACME", start): Counts(
                n=n, n_unique=n, n_negative=neg, n_neutral=n - neg, sum_p_negative=float(neg)
            )
        }

    expected: dict[tuple[str, int], int | None] = {("t", 0): None}
    offset = 0
    for i, (n, neg) in enumerate([(10, 1), (10, 1), (10, 2), (10, 9)]):
        for half, neg_half in ((n // 2, neg // 2), (n - n // 2, neg - neg // 2)):  # two deltas must add up
            offset += half
            cp = Checkpoint(
                "g", offsets={("t", 0): offset}, expected=dict(expected), deltas=window(i * MIN, half, neg_half)
            )
            store.commit_checkpoint(cp)
            expected = {("t", 0): offset}
    result = store.commit_checkpoint(
        Checkpoint("g", offsets={("t", 0): offset}, expected=dict(expected), close_starts=[0, MIN, 2 * MIN, 3 * MIN])
    )
    assert [a.id for a in result.alerts] == [alert_id("ticker", "ACME", 3 * MIN)]
    totals = store.window_totals("ticker")
    assert [totals[("ACME", i * MIN)]["n"] for i in range(4)] == [10, 10, 10, 10]
    assert [totals[("ACME", i * MIN)]["n_negative"] for i in range(4)] == [1, 1, 2, 9]
    again = store.commit_checkpoint(
        Checkpoint("g", offsets={("t", 0): offset}, expected=dict(expected), close_starts=[3 * MIN])
    )
    assert again.alerts == [], "closing again never duplicates an alert"
    assert [a.id for a in store.unpublished_alerts()] == [alert_id("ticker", "ACME", 3 * MIN)]
    store.mark_published([alert_id("ticker", "ACME", 3 * MIN)])
    assert store.unpublished_alerts() == []

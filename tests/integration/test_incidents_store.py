"""Incidents on SQLite and PostgreSQL: created with their member alerts in the checkpoint transaction,
never duplicated by re-processing, joined from a later window, quiet while acknowledged; the index column."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update

from pipeline import migrate
from pipeline import tables as t
from pipeline.alerts import SpikeDetector
from pipeline.incidents import incident_id
from pipeline.progress import PartitionProgress
from pipeline.spikes import SpikeRule, alert_id
from pipeline.store import Checkpoint, CommitResult, Store
from pipeline.windows import Counts, WindowKey, dimension_keys, sentiment_index

pytestmark = pytest.mark.integration
MIN = 60_000
GRACE = 5_000
P0 = ("t", 0)
ONLY = frozenset({P0})
NVDA_INCIDENT = incident_id(alert_id("ticker", "NVDA", 0))


def make_store(url: str, cooldown_s: int) -> Store:
    rule = SpikeRule(min_count=5, min_history=2, floor=0.3, cold_start_ratio=0.6, cooldown_s=cooldown_s)
    s = Store(url, window_size_ms=MIN, grace_ms=GRACE, detector=SpikeDetector(rule, MIN, 60))
    s.create_schema()
    return s


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = make_store(url, cooldown_s=600)
    yield s
    s.close()


class Feed:
    """Messages committed checkpoint by checkpoint on one partition, with the deltas the daemon would send."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.offset = 0
        self.expected: int | None = None
        self.n = 0

    def commit(self, rows: list[tuple[int, list[str], str, str, str]], progress_ms: int) -> CommitResult:
        """``rows``: (event ms, tickers, topic, source, sentiment) per message."""
        deltas: dict[WindowKey, Counts] = {}
        messages: list[dict[str, Any]] = []
        for ms, tickers, topic, source, sentiment in rows:
            self.n += 1
            p_negative, p_positive = {"negative": (0.9, 0.02), "neutral": (0.1, 0.1), "positive": (0.02, 0.9)}[
                sentiment
            ]
            start = ms - ms % MIN
            for dimension, key in dimension_keys(topic, tickers, source):
                deltas.setdefault((dimension, key, start), Counts()).add(
                    sentiment, p_negative, True, p_positive=p_positive
                )
            messages.append(message(f"m{self.n}", ms, tickers, topic, source, sentiment, p_negative, p_positive))
        self.offset += len(rows)
        cp = Checkpoint(
            "g",
            {P0: self.offset},
            {P0: self.expected},
            deltas=deltas,
            messages=messages,
            progress={P0: PartitionProgress(progress_ms)},
            partitions=ONLY,
        )
        result = self.store.commit_checkpoint(cp)
        self.expected = self.offset
        return result


def message(
    id: str, ms: int, tickers: list[str], topic: str, source: str, sentiment: str, p_neg: float, p_pos: float
) -> dict[str, Any]:
    return {
        "id": id,
        "event_time": t.from_ms(ms),
        "scored_at": t.from_ms(ms),
        "text": id,
        "source": source,
        "kind": "news",
        "tickers": t.encode_tickers(tickers),
        "topic_label": topic,
        "p_topic": 0.9,
        "sentiment": sentiment,
        "p_negative": p_neg,
        "p_neutral": 1 - p_neg - p_pos,
        "p_positive": p_pos,
        "is_repeat": False,
        "model_version": "test",
        "input_topic": "t",
        "input_partition": 0,
        "input_offset": 0,
    }


def burst(
    window: int, topic: str = "Stock Movement", sources: tuple[str, str] = ("wire", "forum")
) -> list[tuple[int, list[str], str, str, str]]:
    """A window where NVDA turns negative (under ``topic``, from ``sources``) beside a calm Macro."""
    base = window * MIN
    rows = [(base + i * 1000, ["NVDA"], topic, sources[i % 2], "negative") for i in range(10)]
    rows.append((base + 10_000, ["NVDA"], topic, sources[0], "neutral"))
    rows += [(base + 11_000 + i * 1000, [], "Macro", "blog", "neutral") for i in range(10)]
    return rows


def calm(window: int) -> list[tuple[int, list[str], str, str, str]]:
    base = window * MIN
    return [(base + i * 1000, ["NVDA"] if i % 2 else [], "Macro", "blog", "neutral") for i in range(10)]


def incidents(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return conn.execute(select(t.incidents).order_by(t.incidents.c.window_start)).all()


def members(store: Store) -> dict[str, str | None]:
    return {f"{a.dimension}:{a.key}": a.incident_id for a in store.all_alerts()}


def test_one_burst_is_one_incident_with_its_alerts_in_the_same_transaction(store: Store) -> None:
    feed = Feed(store)
    assert feed.commit(burst(0), progress_ms=30_000).alerts == [], "window 0 still open"
    result = feed.commit(calm(1), progress_ms=MIN + GRACE)
    keys = sorted(f"{a.dimension}:{a.key}" for a in result.alerts)
    assert keys == ["source:forum", "source:wire", "ticker:NVDA", "topic:Stock Movement"]
    assert {a.incident_id for a in result.alerts} == {NVDA_INCIDENT}, "on finsent.alerts: the incident id"
    assert all(a.to_json()["incident_id"] == NVDA_INCIDENT for a in result.alerts)
    assert [(i.id, i.root_dimension, i.root_key, i.n_alerts) for i in result.incidents] == [
        (NVDA_INCIDENT, "ticker", "NVDA", 4)
    ]
    [row] = incidents(store)
    assert (row.id, row.root_dimension, row.root_key, row.n_alerts, row.status) == (
        NVDA_INCIDENT,
        "ticker",
        "NVDA",
        4,
        "open",
    )
    assert t.to_ms(row.window_start) == 0 and row.acknowledged_by is None
    assert set(members(store).values()) == {NVDA_INCIDENT}
    # re-processing: closing again never duplicates the incident
    again = feed.commit([], progress_ms=5 * MIN)
    assert again.incidents == [] and again.alerts == []
    assert len(incidents(store)) == 1 and incidents(store)[0].n_alerts == 4


def test_an_alert_of_the_next_window_joins_the_open_incident(store: Store) -> None:
    feed = Feed(store)
    feed.commit(burst(0), progress_ms=30_000)
    feed.commit([], progress_ms=MIN + GRACE)
    # the story goes on in window 1 under a new topic (NVDA, wire and forum are in cooldown)
    later = [(MIN + i * 1000, ["NVDA"], "Earnings", "reuters", "negative") for i in range(6)]
    result = feed.commit(later + calm(1)[:4], progress_ms=2 * MIN + GRACE)
    assert sorted((a.dimension, a.key) for a in result.alerts) == [("source", "reuters"), ("topic", "Earnings")]
    assert {a.incident_id for a in result.alerts} == {NVDA_INCIDENT}
    assert result.incidents == [], "joining starts no incident (and pages nobody)"
    assert incidents(store)[0].n_alerts == 6


def test_an_acknowledged_incident_stops_re_alerting_for_its_key_until_resolved(url: str) -> None:
    store = make_store(url, cooldown_s=0)
    try:
        feed = Feed(store)
        feed.commit(burst(0), progress_ms=30_000)
        feed.commit(calm(1), progress_ms=MIN + GRACE)
        store.mark_published([a.id for a in store.unpublished_alerts()])
        with store.engine.begin() as conn:
            conn.execute(update(t.incidents).values(status="acknowledged", acknowledged_by="ana", note="handling it"))
        # five windows on (past the span), NVDA turns negative again: stored, in the incident, not published
        result = feed.commit(burst(5), progress_ms=6 * MIN + GRACE)
        assert result.alerts == [] and result.incidents == []
        assert store.unpublished_alerts() == []
        renewed = [a for a in store.all_alerts() if t.to_ms(a.window_start) == 5 * MIN]
        assert renewed and {a.incident_id for a in renewed} == {NVDA_INCIDENT}
        assert renewed[0].id == alert_id(renewed[0].dimension, renewed[0].key, 5 * MIN), "ids stay deterministic"
        with store.engine.begin() as conn:
            conn.execute(update(t.incidents).values(status="resolved"))
        # resolved: the same story under new keys (NVDA's own baseline has learnt it) is a new incident again
        result = feed.commit(burst(8, "Earnings", ("reuters", "blog")), progress_ms=9 * MIN + GRACE)
        [incident] = result.incidents
        assert incident.id != NVDA_INCIDENT and incident.n_alerts == len(result.alerts) >= 2
        assert {a.incident_id for a in result.alerts} == {incident.id}
        assert len(store.unpublished_alerts()) == len(result.alerts), "published again"
    finally:
        store.close()


def test_the_window_index_is_stored_and_in_range(store: Store) -> None:
    feed = Feed(store)
    feed.commit(burst(0), progress_ms=30_000)
    with store.engine.connect() as conn:
        w = t.windows.c
        rows = {r.key: r for r in conn.execute(select(t.windows).where(w.window_start == t.from_ms(0)))}
    nvda = sentiment_index(rows["NVDA"].sum_index, rows["NVDA"].sum_confidence)
    assert nvda == pytest.approx((10 * 0.9 * (0.02 - 0.9) + 0.8 * 0.0) / (10 * 0.9 + 0.8))
    for row in rows.values():
        index = sentiment_index(row.sum_index, row.sum_confidence)
        assert index is not None and -1.0 <= index <= 1.0


def test_an_older_store_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the alerts and windows tables as an earlier release made them (abridged)
        conn.execute(text("CREATE TABLE alerts (id VARCHAR(64) PRIMARY KEY, published BOOLEAN)"))
        conn.execute(text("CREATE TABLE windows (dimension VARCHAR(16), key VARCHAR(128), n INTEGER)"))
        conn.execute(text("INSERT INTO windows VALUES ('all', 'all', 3)"))
    engine.dispose()
    store = Store(url)
    try:
        added = migrate.upgrade(store.engine)
        assert {"alerts.incident_id", "windows.sum_confidence", "windows.sum_index"} <= set(added)
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT sum_index, sum_confidence FROM windows")).one() == (0, 0)
            assert conn.execute(select(t.incidents)).all() == []
    finally:
        store.close()


def test_incident_times_are_utc(store: Store) -> None:
    feed = Feed(store)
    feed.commit(burst(0), progress_ms=30_000)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.commit_checkpoint(
        Checkpoint(
            "g", {P0: feed.offset}, {P0: feed.offset}, partitions=ONLY, progress={P0: PartitionProgress(MIN + GRACE)}
        ),
        now=now,
    )
    [row] = incidents(store)
    assert t.as_utc(row.updated_at) == now == t.as_utc(row.created_at)

"""The rollups on SQLite and on the real PostgreSQL: after closes, late counts, refused replays, repeated messages
and pruning, every hourly and daily rollup is the sum of the closed windows it covers and every ticker day the count
of the rows the dashboard's join finds; an older store is filled once on upgrade; the dashboard's long-range reads
(``dashboard.sums``) give the same sums from the rollups as from the windows."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from dashboard import sums
from pipeline import migrate
from pipeline import tables as t
from pipeline.alerts import SpikeDetector
from pipeline.progress import PartitionProgress
from pipeline.spikes import SpikeRule
from pipeline.store import Checkpoint, FencedError, Store
from pipeline.windows import COUNT_FIELDS, Counts

pytestmark = pytest.mark.integration
MIN = 60_000
GRACE = 5_000
P0 = ("news", 0)
BASE = datetime(2026, 3, 1, 22, 10, tzinfo=UTC)  # windows every 20 minutes cross an hour and a day
BASE_MS = round(BASE.timestamp() * 1000)
STEP = 20 * MIN
KEYS = (("all", "all"), ("ticker", "NVDA"), ("ticker", "AMD"), ("topic", "Earnings"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(
        url,
        window_size_ms=MIN,
        grace_ms=GRACE,
        detector=SpikeDetector(SpikeRule(min_count=2, min_history=2, floor=0.3), MIN, 60),
    )
    s.create_schema()
    yield s
    s.close()


def rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}


def expected_rollups(engine: Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rollups summed here from the closed windows, as ``pipeline.tables.window_rollups`` describes them."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(t.windows).where(t.windows.c.closed.is_(True))).mappings().all()
    for w in rows:
        start_s = t.to_ms(w["window_start"]) // 1000
        for grain in t.ROLLUP_GRAINS_S:
            key = (grain, w["dimension"], w["key"], start_s // grain * grain)
            row = out.setdefault(key, {name: 0 for name in (*COUNT_FIELDS, *t.BASELINE_SUMS)} | {"latest_s": None})
            for name in COUNT_FIELDS:
                row[name] += w[name]
            if w["baseline"] is not None:
                row["base_n"] += w["n"]
                row["base_sum"] += w["baseline"] * w["n"]
                row["thr_sum"] += min(w["threshold"], 1.0) * w["n"]
                row["latest_s"] = max(row["latest_s"] or start_s, start_s)
    return {k: rounded(v) for k, v in out.items()}


def stored_rollups(engine: Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.window_rollups)).mappings().all()
    return {
        (r["grain_s"], r["dimension"], r["key"], r["bucket_s"]): rounded(
            {k: v for k, v in r.items() if k not in ("grain_s", "dimension", "key", "bucket_s")}
        )
        for r in rows
    }


def expected_days(engine: Engine) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Per ticker, UTC day, source and topic: the message_tickers rows joined to their messages, and the negative."""
    mt, m = t.message_tickers.c, t.messages.c
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    with engine.connect() as conn:
        rows = conn.execute(
            select(mt.ticker, mt.event_time, mt.sentiment, m.source, m.topic_label).join_from(
                t.message_tickers, t.messages, m.id == mt.message_id
            )
        ).all()
    for r in rows:
        day = t.to_ms(r.event_time) // 1000 // 86400 * 86400
        counts = out[(r.ticker, day, t.NO_SOURCE if r.source is None else r.source, r.topic_label)]
        counts[0] += 1
        counts[1] += int(r.sentiment == "negative")
    return {k: (v[0], v[1]) for k, v in out.items()}


def stored_days(engine: Engine) -> dict[tuple[Any, ...], tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.ticker_days)).all()
    return {(r.ticker, r.day_s, r.source, r.topic_label): (r.messages, r.negative) for r in rows if r.messages}


def assert_in_step(store: Store, what: str) -> None:
    assert stored_rollups(store.engine) == expected_rollups(store.engine), what
    assert stored_days(store.engine) == expected_days(store.engine), what


def message(i: int, start_ms: int, tickers: dict[str, str], source: str | None = "wire") -> dict[str, Any]:
    when = t.from_ms(start_ms + 1000 * (i % 50))
    label = "negative" if "negative" in tickers.values() else "neutral"
    return {
        "id": f"m-{i}",
        "event_time": when,
        "scored_at": when,
        "text": f"message {i}",
        "source": source,
        "kind": "news",
        "tickers": t.encode_tickers(sorted(tickers)),
        "topic_label": "Earnings",
        "p_topic": 0.8,
        "sentiment": label,
        "p_negative": 0.8 if label == "negative" else 0.1,
        "p_neutral": 0.1,
        "p_positive": 0.1,
        "is_repeat": False,
        "model_version": "v1",
        "input_topic": "news",
        "input_partition": 0,
        "input_offset": i,
        t.TICKER_ROWS: [
            {"message_id": f"m-{i}", "ticker": k, "event_time": when, "sentiment": s, "method": "target"}
            for k, s in tickers.items()
        ],
    }


class Feed:
    """Checkpoints of one partition, as a daemon would commit them."""

    def __init__(self, store: Store) -> None:
        self.store, self.offset, self.expected, self.i = store, 0, None, 0

    def checkpoint(
        self, window: int, n: int, negative: int, progress_ms: int, source: str | None = "wire"
    ) -> Checkpoint:
        start = BASE_MS + window * STEP
        deltas: dict[tuple[str, str, int], Counts] = {}
        msgs = []
        for j in range(n):
            self.i += 1
            sentiment = "negative" if j < negative else "neutral"
            tickers = {"NVDA": sentiment} | ({"AMD": "positive"} if j % 3 == 0 else {})
            msgs.append(message(self.i, start, tickers, source))
            for dimension, key in KEYS:
                if dimension != "ticker" or key in tickers:
                    label = tickers.get(key, sentiment)
                    deltas.setdefault((dimension, key, start), Counts()).add(
                        label, 0.8 if label == "negative" else 0.1, True
                    )
        self.offset += n
        return Checkpoint(
            "g",
            {P0: self.offset},
            {P0: self.expected},
            deltas=deltas,
            messages=msgs,
            progress={P0: PartitionProgress(progress_ms)},
            partitions=frozenset({P0}),
        )

    def commit(self, cp: Checkpoint) -> None:
        self.store.commit_checkpoint(cp)
        self.expected = self.offset


def closes(window: int) -> int:
    """The partition's event time that closes every window up to ``window``."""
    return BASE_MS + window * STEP + MIN + GRACE


def test_rollups_follow_closes_late_counts_replays_and_pruning(store: Store) -> None:
    feed = Feed(store)
    for w in range(8):  # windows 22:10 .. 00:30 with a burst in window 5; each commit closes the one before
        feed.commit(
            feed.checkpoint(w, 6, 5 if w == 5 else 1, closes(w - 1) if w else BASE_MS, {3: None, 4: ""}.get(w, "wire"))
        )
        assert_in_step(store, f"after window {w}")
    with store.engine.connect() as conn:
        assert conn.execute(select(t.window_rollups.c.bucket_s).where(t.window_rollups.c.grain_s == 86400)).first()
        baselines = conn.execute(select(t.windows.c.baseline).where(t.windows.c.baseline.is_not(None))).all()
    assert baselines, "some windows were judged against a baseline: the weighted sums are exercised"

    late = feed.checkpoint(2, 3, 2, closes(6))  # counts for a window closed long ago: late, into its rollups
    feed.commit(late)
    assert_in_step(store, "after late counts")

    replay = dataclasses.replace(late, expected={P0: late.offsets[P0] - 3})  # a stale owner commits it again
    with pytest.raises(FencedError):
        store.commit_checkpoint(replay)
    assert_in_step(store, "after a refused replay")

    again = feed.checkpoint(2, 0, 0, closes(6))  # the same messages once more (a producer retry): rows exist
    again.messages, again.deltas = late.messages, {}
    feed.commit(again)
    assert_in_step(store, "after repeated messages")

    feed.commit(feed.checkpoint(12, 2, 0, closes(12)))  # closes everything, window 12 included
    assert_in_step(store, "after closing all")

    cut = t.from_ms(BASE_MS + 4 * STEP + 5 * MIN)  # inside an hour bucket, before midnight
    store.prune(cut, cut, cut)
    assert_in_step(store, "after pruning to mid-hour")
    with store.engine.connect() as conn:
        assert conn.execute(select(t.windows.c.key).where(t.windows.c.window_start < cut)).first() is None
        assert conn.execute(select(t.window_rollups.c.key)).first() is not None

    feed.commit(feed.checkpoint(3, 2, 1, closes(13)))  # late counts for a window pruned away: a new closed row
    assert_in_step(store, "after late counts into a pruned window")

    later = t.from_ms(BASE_MS + 7 * STEP)  # past midnight: a day is dropped, the next summed again
    store.prune(later, later, later)
    assert_in_step(store, "after pruning past midnight")


def test_an_older_store_is_filled_once_on_upgrade(store: Store) -> None:
    feed = Feed(store)
    for w in range(6):
        feed.commit(feed.checkpoint(w, 4, w % 3, closes(w - 1) if w else BASE_MS))
    filled = expected_rollups(store.engine), expected_days(store.engine)
    with store.engine.begin() as conn:  # as a store of the release before the rollups holds its data
        conn.execute(delete(t.window_rollups))
        conn.execute(delete(t.ticker_days))
    assert set(migrate.upgrade(store.engine)) == {"window_rollups", "ticker_days"}
    assert (stored_rollups(store.engine), stored_days(store.engine)) == filled
    assert migrate.upgrade(store.engine) == [], "a second upgrade fills nothing twice"
    assert (stored_rollups(store.engine), stored_days(store.engine)) == filled
    feed.commit(feed.checkpoint(6, 4, 1, closes(6)))
    assert_in_step(store, "the daemon goes on from the filled rollups")


def by_column(frame: Any) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {
        (r.key, int(r.bucket)): (
            int(r.n),
            int(r.n_negative),
            int(r.n_unique),
            int(r.base_n),
            round(float(r.base_sum), 6),
            round(float(r.thr_sum), 6),
            round(float(r.sum_index), 6),
            None if r.latest_closed is None or r.latest_closed != r.latest_closed else r.latest_closed,
        )
        for r in frame.itertuples()
    }


@pytest.mark.parametrize("column_s", [3600, 2 * 3600, 86400, 2 * 86400])
def test_the_dashboards_long_reads_equal_the_windows(store: Store, column_s: int) -> None:
    feed = Feed(store)
    for w in range(9):  # the last two windows stay open: the reads add them from the windows
        feed.commit(feed.checkpoint(w, 3 + w % 4, w % 3, closes(w - 2) if w > 1 else BASE_MS))
    starts = [None, BASE, BASE + timedelta(minutes=47), BASE + timedelta(hours=2, minutes=1)]
    with store.engine.connect() as conn:
        assert conn.execute(select(t.windows.c.key).where(t.windows.c.closed.is_(False))).first() is not None
        for start in starts:
            for dimension in ("all", "ticker", "topic"):
                start_s = t.to_ms(start) // 1000 if start is not None else None
                query = sums.piece_query(
                    sums.Piece("windows", start_s, None), dimension, None, column_s, conn.dialect.name
                )
                reference = sums.read_rows(conn, query, "windows")
                assert any(p.source == "rollups" for p in sums.pieces(start_s, None, column_s))
                got = sums.read(conn, dimension, column_s, start, None)
                assert by_column(got) == by_column(reference), (start, dimension)
                one = sums.read(conn, dimension, column_s, start, None, key="NVDA" if dimension == "ticker" else None)
                assert set(by_column(one)) <= set(by_column(got))

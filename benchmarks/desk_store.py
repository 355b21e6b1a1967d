"""A year of a desk's data in PostgreSQL for the dashboard benchmark (``benchmarks/dashboard.py``).

One million scored messages over 365 days (busier in market hours, quieter at weekends) about 50 tickers
(a few far more talked about than the rest), 20 topics and 5 sources, with scripted negative bursts on
single companies; one ``message_tickers`` row per message and ticker (15% of messages name two
companies); the 1-minute windows of all, topic, ticker and source that those messages make, each with a
baseline from its key's previous 60 windows and a threshold of the spike rule's shape (max(floor, mean + z·0.1));
an alert for every window of at least 10 messages above its threshold, and one incident per burst.

The schema is the daemon's (``pipeline.migrate.upgrade``). Rows are loaded with COPY with the secondary
indexes dropped, and the indexes are then created again, and the rollups filled from the windows and messages,
by ``upgrade`` itself, as on an older store.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine, inspect, make_url, text

from models.contract import TOPIC_LABELS
from pipeline import migrate
from pipeline import tables as t

END = datetime(2026, 12, 1, tzinfo=UTC)
MINUTES = 365 * 24 * 60
TICKERS = [
    "NVDA",
    "AAPL",
    "MSFT",
    "AMZN",
    "GOOGL",
    "META",
    "TSLA",
    "JPM",
    "XOM",
    "BAC",
    "WMT",
    "UNH",
    "JNJ",
    "V",
    "MA",
    "PG",
    "HD",
    "CVX",
    "KO",
    "PEP",
    "ABBV",
    "AVGO",
    "COST",
    "MRK",
    "ORCL",
    "CRM",
    "AMD",
    "INTC",
    "NFLX",
    "DIS",
    "CSCO",
    "ADBE",
    "PFE",
    "TMO",
    "ABT",
    "NKE",
    "MCD",
    "WFC",
    "GS",
    "MS",
    "BA",
    "CAT",
    "GE",
    "IBM",
    "QCOM",
    "TXN",
    "SBUX",
    "PYPL",
    "UBER",
    "SHOP",
]
SOURCES = ("reuters", "bloomberg", "twitter", "forum", "wire")
VERBS = [
    "beats",
    "misses",
    "raises",
    "cuts",
    "reaffirms",
    "announces",
    "expands",
    "delays",
    "files",
    "settles",
    "trims",
    "doubles",
]
OBJECTS = [
    "guidance",
    "earnings estimates",
    "dividend",
    "buyback plan",
    "full-year outlook",
    "supply deal",
    "chip orders",
    "price target",
    "data center plans",
    "layoffs",
    "capital spending",
    "margin forecast",
]
SUFFIXES = [
    "after a strong quarter",
    "as rates rise",
    "on weak demand",
    "ahead of the shareholder meeting",
    "as analysts turn cautious",
    "after regulators weigh in",
    "on currency headwinds",
    "as shipments recover",
]
BURSTS = 300
MIN_COUNT = 10
Z, FLOOR, SPREAD = 3.0, 0.35, 0.1  # the spike rule's shape, with a fixed spread: sparse keys have no std


def minute_start(minute: pd.Series) -> pd.Series:
    return pd.Timestamp(END) - pd.to_timedelta(MINUTES - minute.astype("int64"), unit="min")


def _minute_weights(rng: np.random.Generator) -> np.ndarray:
    minute = np.arange(MINUTES)
    start = END - timedelta(minutes=MINUTES)
    hour = (minute // 60 + start.hour) % 24
    weekday = ((minute // 1440) + start.weekday()) % 7
    profile = np.where((hour >= 13) & (hour < 21), 3.0, np.where((hour >= 7) & (hour < 23), 1.0, 0.25))
    return profile * np.where(weekday >= 5, 0.3, 1.0) * rng.uniform(0.8, 1.2, MINUTES)


def messages(n: int, seed: int = 20) -> pd.DataFrame:
    """The messages, oldest first: time, text, labels and probabilities, tickers."""
    rng = np.random.default_rng(seed)
    share = 1.0 / np.arange(1, len(TICKERS) + 1) ** 0.9
    share /= share.sum()
    burst_rows = []
    for b in range(BURSTS):
        ticker, start = TICKERS[rng.choice(len(TICKERS), p=share)], int(rng.integers(0, MINUTES - 60))
        for minute in range(start, start + int(rng.integers(15, 31))):
            burst_rows += [(minute, ticker, b)] * int(rng.integers(12, 25))
    bursts = pd.DataFrame(burst_rows, columns=["minute", "ticker", "burst"]).head(n // 5)
    weights = _minute_weights(rng)
    regular = pd.DataFrame({"minute": rng.choice(MINUTES, size=n - len(bursts), p=weights / weights.sum())})
    regular["ticker"] = np.array(TICKERS)[rng.choice(len(TICKERS), size=len(regular), p=share)]
    regular["burst"] = -1
    frame = pd.concat([regular, bursts], ignore_index=True)
    frame = frame.sort_values("minute", kind="stable").reset_index(drop=True)
    size, in_burst = len(frame), frame["burst"].to_numpy() >= 0
    second = np.array(TICKERS)[rng.choice(len(TICKERS), size=size, p=share)]
    two = (rng.random(size) < 0.15) & (second != frame["ticker"].to_numpy())
    frame["tickers"] = np.where(two, "," + frame["ticker"] + "," + second + ",", "," + frame["ticker"] + ",")
    frame["second"] = np.where(two, second, None)
    label = rng.choice(["negative", "neutral", "positive"], size=size, p=[0.18, 0.55, 0.27])
    frame["sentiment"] = np.where(in_burst & (rng.random(size) < 0.8), "negative", label)
    top = rng.uniform(0.55, 0.98, size)
    rest = (1 - top) * rng.uniform(0.2, 0.8, size)
    neg = np.where(frame["sentiment"] == "negative", top, rest)
    pos = np.where(
        frame["sentiment"] == "positive", top, np.where(frame["sentiment"] == "negative", rest, 1 - top - rest)
    )
    frame["p_negative"], frame["p_positive"] = neg, pos
    frame["p_neutral"] = 1 - neg - pos
    topics = np.array(TOPIC_LABELS)
    frame["topic_label"] = np.where(in_burst, "Stock Movement", topics[rng.integers(0, len(topics), size)])
    frame["source"] = np.array(SOURCES)[rng.integers(0, len(SOURCES), size)]
    frame["event_time"] = minute_start(frame["minute"]) + pd.to_timedelta(rng.integers(0, 60, size), unit="s")
    verbs, objects, suffixes = (np.array(x)[rng.integers(0, len(x), size)] for x in (VERBS, OBJECTS, SUFFIXES))
    regular_text = frame["ticker"] + " " + verbs + " " + objects + " " + suffixes
    burst_text = frame["ticker"] + " shares plunge after accounting irregularities reported, " + frame["source"]
    frame["text"] = np.where(in_burst, burst_text, regular_text) + " #" + frame.index.astype(str)
    frame["id"] = "m" + frame.index.astype(str)
    return frame


def windows(msgs: pd.DataFrame) -> pd.DataFrame:
    """The 1-minute windows those messages make, with baselines, thresholds and every one closed."""
    confidence = msgs[["p_negative", "p_positive", "p_neutral"]].max(axis=1)
    base = msgs.assign(
        neg=(msgs["sentiment"] == "negative").astype(int),
        neu=(msgs["sentiment"] == "neutral").astype(int),
        pos=(msgs["sentiment"] == "positive").astype(int),
        conf=confidence,
        idx=confidence * (msgs["p_positive"] - msgs["p_negative"]),
    )
    seconds = base.assign(key="all")
    parts = [seconds.assign(dimension="all")]
    parts += [base.assign(dimension=d, key=base[c]) for d, c in (("topic", "topic_label"), ("source", "source"))]
    parts += [base.assign(dimension="ticker", key=base["ticker"])]
    parts += [base[base["second"].notna()].assign(dimension="ticker", key=lambda f: f["second"])]
    rows = pd.concat(parts, ignore_index=True)
    agg = rows.groupby(["dimension", "key", "minute"], sort=True).agg(
        n=("neg", "size"),
        n_negative=("neg", "sum"),
        n_neutral=("neu", "sum"),
        n_positive=("pos", "sum"),
        sum_p_negative=("p_negative", "sum"),
        sum_confidence=("conf", "sum"),
        sum_index=("idx", "sum"),
    )
    agg = agg.reset_index()
    ratio = agg["n_negative"] / agg["n"]
    history = ratio.groupby([agg["dimension"], agg["key"]]).shift(1)
    rolling = history.groupby([agg["dimension"], agg["key"]]).rolling(60, min_periods=3)
    agg["baseline"] = rolling.mean().reset_index(level=[0, 1], drop=True)
    agg["threshold"] = np.maximum(FLOOR, agg["baseline"] + Z * SPREAD)
    agg["window_start"] = minute_start(agg["minute"])
    agg["window_end"] = agg["window_start"] + pd.Timedelta(minutes=1)
    return agg.assign(n_unique=agg["n"], n_late=0, n_late_negative=0, closed=True)


def alerts_and_incidents(wins: pd.DataFrame, msgs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ratio = wins["n_negative"] / wins["n"]
    hit = wins[(wins["n"] >= MIN_COUNT) & wins["baseline"].notna() & (ratio > wins["threshold"])].copy()
    hit["negative_ratio"] = ratio[hit.index]
    hit["id"] = [
        hashlib.sha256(f"{d}|{k}|{m}".encode()).hexdigest()[:32]
        for d, k, m in zip(hit["dimension"], hit["key"], hit["minute"], strict=True)
    ]
    hit["severity"] = np.where(hit["negative_ratio"] - hit["threshold"] > 0.2, "critical", "warning")
    hit["score"] = (hit["negative_ratio"] - hit["baseline"]) / 0.05
    spans = (
        msgs[msgs["burst"] >= 0]
        .groupby("burst")
        .agg(ticker=("ticker", "first"), first=("minute", "min"), last=("minute", "max"))
    )
    hit["incident_id"] = None
    rows = []
    for burst, span in spans.iterrows():
        members = hit[(hit["minute"] >= span["first"]) & (hit["minute"] <= span["last"]) & hit["incident_id"].isna()]
        if members.empty:
            continue
        incident = hashlib.sha256(f"incident|{burst}".encode()).hexdigest()[:32]
        hit.loc[members.index, "incident_id"] = incident
        age = MINUTES - int(span["first"])
        status = "open" if age < 3 * 1440 else ("acknowledged" if age < 10 * 1440 else "resolved")
        start = members["window_start"].min()
        rows.append(
            (incident, start, "ticker", span["ticker"], members["id"].iloc[0], len(members), status, start, start)
        )
    columns = ["id", "window_start", "root_dimension", "root_key", "root_alert_id", "n_alerts", "status"]
    incidents = pd.DataFrame(rows, columns=[*columns, "created_at", "updated_at"])
    incidents["acknowledged_by"] = np.where(incidents["status"] == "open", None, "desk@example.com")
    incidents["note"] = None
    return hit, incidents


def _copy(conn: psycopg.Connection, table: str, frame: pd.DataFrame, chunk: int = 200_000) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        for start in range(0, len(frame), chunk):
            buffer = io.StringIO()
            frame.iloc[start : start + chunk].to_csv(
                buffer, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S+00"
            )
            copy.write(buffer.getvalue())


SECONDARY = (
    "ix_messages_event_time",
    "ix_messages_text_search",
    "ix_message_tickers_ticker_time",
    "ix_windows_start",
    "ix_windows_closed_dim",
    "ix_windows_dim_start",
    "ix_alerts_key",
    "ix_alerts_incident",
)


def fill(engine: Engine, n: int, echo: Callable[[str], object] = print) -> dict[str, int]:
    """Create the schema, load a year of data, index it and fill its rollups with ``upgrade``; returns rows per
    table."""
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for index in SECONDARY:
            conn.execute(text(f"DROP INDEX IF EXISTS {index}"))
    echo(f"generating {n:,} messages over 365 days ...")
    msgs = messages(n)
    wins = windows(msgs)
    hit, incidents = alerts_and_incidents(wins, msgs)
    now = END
    url = make_url(engine.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        m = msgs.assign(
            scored_at=msgs["event_time"] + pd.Timedelta(seconds=1),
            kind="news",
            p_topic=0.8,
            is_repeat=False,
            model_version="finsent-v3",
            input_topic="finsent.news",
            input_partition=msgs.index % 6,
            input_offset=msgs.index,
        )
        echo(f"copying {len(m):,} messages ...")
        _copy(conn, "messages", m[[c.name for c in t.messages.columns]])
        pairs = pd.concat(
            [
                m[["id", "ticker", "event_time", "sentiment"]],
                m[m["second"].notna()][["id", "second", "event_time", "sentiment"]].set_axis(
                    ["id", "ticker", "event_time", "sentiment"], axis=1
                ),
            ]
        ).drop_duplicates(["id", "ticker"])
        pairs = pairs.rename(columns={"id": "message_id"}).assign(method="message")
        echo(f"copying {len(pairs):,} message_tickers rows and {len(wins):,} windows ...")
        _copy(conn, "message_tickers", pairs)
        _copy(conn, "windows", wins[[c.name for c in t.windows.columns]])
        a = hit.assign(example_ids="[]", created_at=hit["window_end"], published=True, n=hit["n"])
        _copy(conn, "alerts", a[[c.name for c in t.alerts.columns]])
        _copy(conn, "incidents", incidents[[c.name for c in t.incidents.columns]])
        with conn.cursor() as cur:  # the benchmark analyst follows the five most talked-about companies
            cur.executemany(
                "INSERT INTO watchlists (analyst, ticker, added_at) VALUES ('desk', %s, %s)",
                [(k, now) for k in TICKERS[:5]],
            )
        conn.commit()
    echo("indexing and rolling up (pipeline.migrate.upgrade re-creates the secondary indexes, fills the rollups) ...")
    added = migrate.upgrade(engine)
    echo(f"created: {', '.join(added)}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return counts(engine)


def counts(engine: Engine) -> dict[str, int]:
    names: Iterable[str] = (
        "messages",
        "message_tickers",
        "windows",
        "window_rollups",
        "ticker_days",
        "alerts",
        "incidents",
        "watchlists",
    )
    with engine.connect() as conn:
        return {name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()) for name in names}  # noqa: S608


def indexes(engine: Engine) -> dict[str, list[str]]:
    inspector = inspect(engine)
    return {
        name: sorted(str(ix["name"]) for ix in inspector.get_indexes(name))
        for name in ("messages", "message_tickers", "windows", "alerts", "incidents")
    }

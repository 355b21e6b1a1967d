"""The Overview's pieces: incidents marked on the timelines, and the sentiment index read from the windows table."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert

from dashboard import charts, data
from dashboard.views.overview import overall_index
from pipeline import migrate
from pipeline import tables as t
from pipeline.engine import create_store_engine
from pipeline.windows import sentiment_index
from tests.fixtures.seed_store import seed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
T0 = pd.Timestamp("2026-01-01T10:00:00Z")
MINUTE = pd.Timedelta(minutes=1)


def incidents_frame() -> pd.DataFrame:
    rows = [
        ("inc-nvda", T0, "ticker", "NVDA", 3, "open", None),
        ("inc-macro", T0, "topic", "Macro", 2, "acknowledged", "dana"),
        ("inc-tsla", T0 + 5 * MINUTE, "ticker", "TSLA", 1, "resolved", "lee"),
        ("inc-xom", T0 + 9 * MINUTE, "ticker", "XOM", 2, "open", None),
    ]
    columns = ["id", "window_start", "root_dimension", "root_key", "n_alerts", "status", "acknowledged_by"]
    return pd.DataFrame(rows, columns=columns)


def members_frame() -> pd.DataFrame:
    rows = [
        ("inc-nvda", "ticker", "NVDA"),
        ("inc-nvda", "topic", "Stock Movement"),
        ("inc-macro", "topic", "Macro"),
        ("inc-tsla", "ticker", "TSLA"),
        ("inc-xom", "ticker", "XOM"),
        ("inc-xom", "topic", "Energy"),
    ]
    return pd.DataFrame(rows, columns=["id", "dimension", "key"])


def test_a_chart_marks_incidents_rooted_in_its_keys_in_time_order_with_status_labels() -> None:
    marks = charts.incident_marks(incidents_frame(), members_frame(), "ticker", ["NVDA", "TSLA", "AAPL"])
    assert marks["id"].tolist() == ["inc-nvda", "inc-tsla"], "XOM is not on this chart; Macro is a topic"
    assert marks["label"].tolist() == ["INC NVDA · open", "INC TSLA · resolved"]
    assert marks["label_y"].tolist() == pytest.approx([0.97, 0.89]), "neighbours take different lanes"


def test_a_chart_marks_incidents_whose_member_alerts_are_on_it() -> None:
    marks = charts.incident_marks(incidents_frame(), members_frame(), "topic", ["Stock Movement", "Energy", "Macro"])
    assert marks["label"].tolist() == ["INC Macro · acknowledged", "INC NVDA · open", "INC XOM · open"]
    assert charts.incident_marks(incidents_frame(), members_frame(), "topic", ["Earnings"]).empty


def test_labels_cycle_through_four_lanes() -> None:
    many = pd.concat([incidents_frame()] * 2, ignore_index=True).assign(id=[f"i{n}" for n in range(8)])
    marks = charts.incident_marks(many, members_frame().iloc[:0], "ticker", ["NVDA", "TSLA", "XOM"])
    assert len(marks) == 6
    assert marks["label_y"].tolist() == pytest.approx([0.97, 0.89, 0.81, 0.73, 0.97, 0.89])


def test_no_incidents_no_marks() -> None:
    marks = charts.incident_marks(incidents_frame().iloc[:0], members_frame().iloc[:0], "ticker", ["NVDA"])
    assert marks.empty and {"label", "label_y", "status", "window_start"} <= set(marks.columns)


def ratio_frame() -> pd.DataFrame:
    starts = [T0 + i * MINUTE for i in range(10)]
    return pd.DataFrame(
        {
            "window_start": starts * 2,
            "key": ["NVDA"] * 10 + ["TSLA"] * 10,
            "n": 20,
            "n_unique": 20,
            "negative_ratio": 0.1,
            "threshold": 0.4,
            "baseline": 0.1,
        }
    )


def layers_of(chart: object, mark: str) -> list[dict]:  # type: ignore[type-arg]
    spec = chart.to_dict()  # type: ignore[attr-defined]
    return [layer for layer in spec["layer"] if layer["mark"]["type"] == mark]


def test_ratio_timeline_draws_a_coloured_rule_and_a_label_per_incident() -> None:
    marks = charts.incident_marks(incidents_frame(), members_frame(), "ticker", ["NVDA", "TSLA"])
    chart = charts.ratio_timeline(ratio_frame(), pd.DataFrame(), "ratio", marks)
    (rule,) = layers_of(chart, "rule")
    scale = rule["encoding"]["stroke"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == charts.INCIDENT_COLOURS
    early, late = layers_of(chart, "text")  # NVDA in the first half of the chart, TSLA in the second
    assert (early["mark"]["align"], late["mark"]["align"]) == ("left", "right"), "late labels stay on the chart"
    for label in (early, late):
        assert label["encoding"]["text"]["field"] == "label" and label["encoding"]["fill"]["field"] == "status"
    values = chart.to_dict()["datasets"]
    assert any(row.get("label") == "INC TSLA · resolved" for rows in values.values() for row in rows)
    assert not layers_of(charts.ratio_timeline(ratio_frame(), pd.DataFrame(), "ratio"), "rule"), "no incident, no rule"


def test_index_timeline_keeps_the_full_range_and_the_neutral_line() -> None:
    frame = ratio_frame().assign(sentiment_index=-0.2)
    chart = charts.index_timeline(frame, "index")
    (line,) = layers_of(chart, "line")
    assert line["encoding"]["y"]["field"] == "sentiment_index"
    assert line["encoding"]["y"]["scale"]["domain"] == [-1, 1]
    assert len(layers_of(chart, "rule")) == 1
    assert chart.to_dict()["padding"]["top"] >= 10, "fitted into 160 px, its title needs room above it"


def window_row(key: str, minute: int, *, n: int, sum_index: float, sum_confidence: float) -> dict[str, object]:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC) + timedelta(minutes=minute)
    return {
        "dimension": "ticker",
        "key": key,
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "n": n,
        "n_unique": n,
        "n_negative": 0,
        "n_neutral": n,
        "n_positive": 0,
        "sum_p_negative": 0.0,
        "sum_confidence": sum_confidence,
        "sum_index": sum_index,
        "n_late": 0 if n else 3,
        "closed": True,
    }


@pytest.fixture
def windows_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'windows.db'}"
    engine = create_store_engine(url)
    migrate.upgrade(engine)
    rows = [
        window_row("NVDA", 0, n=4, sum_index=-1.5, sum_confidence=3.0),
        window_row("NVDA", 1, n=0, sum_index=0.0, sum_confidence=0.0),  # only late messages: nothing to weigh
        window_row("TSLA", 0, n=2, sum_index=1.6000000001, sum_confidence=1.6),  # rounding past +1
        window_row("TSLA", 1, n=5, sum_index=0.9, sum_confidence=4.5),
    ]
    with engine.begin() as conn:
        conn.execute(insert(t.windows), rows)
    engine.dispose()
    return url


def test_sentiment_index_per_window_matches_the_daemons_definition(windows_url: str) -> None:
    frame = data.sentiment_timeline(windows_url, "ticker", None, "all")
    assert frame["window_start"].is_monotonic_increasing
    frame = frame.sort_values(["key", "window_start"])
    assert frame[["key", "n"]].values.tolist() == [["NVDA", 4], ["NVDA", 0], ["TSLA", 2], ["TSLA", 5]]
    assert str(frame["window_start"].dt.tz) == "UTC"
    for row in frame.itertuples():
        expected = sentiment_index(row.sum_index, row.sum_confidence)
        assert math.isnan(row.sentiment_index) if expected is None else row.sentiment_index == pytest.approx(expected)
    assert frame["sentiment_index"].iloc[[0, 2, 3]].tolist() == pytest.approx([-0.5, 1.0, 0.2]), "clipped to [-1, 1]"
    only_tsla = data.sentiment_timeline(windows_url, "ticker", ["TSLA"], "all")
    assert only_tsla["key"].unique().tolist() == ["TSLA"]


def test_a_window_without_weight_does_not_divide_by_zero(windows_url: str) -> None:
    frame = data.sentiment_timeline(windows_url, "ticker", ["NVDA"], "all")
    index = frame["sentiment_index"]
    assert math.isnan(index.iloc[1]) and not index.isin([math.inf, -math.inf]).any()
    assert overall_index(frame) == pytest.approx(-0.5), "pooled: the weightless window adds nothing"
    assert overall_index(frame.iloc[1:]) is None and overall_index(frame.iloc[:0]) is None


def test_incident_keys_lists_where_the_seeded_incident_shows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed(url).close()
    (incident,) = data.incidents(url, "all")["id"]
    keys = data.incident_keys(url, "all")
    assert set(keys["id"]) == {incident}
    assert set(zip(keys["dimension"], keys["key"], strict=True)) == {
        ("all", "all"),
        ("source", "wire"),
        ("ticker", "ACME"),
        ("topic", "Stock Movement"),
    }
    assert data.sentiment_timeline(url, "all", None, "all")["sentiment_index"].between(-1, 1).all()

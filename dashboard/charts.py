"""Altair charts of the dashboard: negative-ratio timelines with the baseline band, spikes and incidents, volume,
and the sentiment index. Times are drawn in the viewer's timezone (Vega's local time) with explicit formats
(``dashboard.timefmt``), so an axis reads "10:05" or "Jan 5 10:05", never ":45"."""

from __future__ import annotations

from typing import Literal

import altair as alt
import pandas as pd

INCIDENT_COLOURS = {"open": "#d62728", "acknowledged": "#ff7f0e", "resolved": "#2ca02c"}
MARK_COLUMNS = ["id", "window_start", "root_dimension", "root_key", "n_alerts", "status", "acknowledged_by", "label"]
LabelSide = tuple[pd.DataFrame, Literal["left", "right"], int]  # the marks, where their labels align, offset
LABEL_TOP, LABEL_STEP, LANES = 0.97, 0.08, 4  # incident labels take turns in 4 lanes below the top of the ratio axis
AXIS_FORMAT, TIP_FORMAT = "%H:%M", "%b %-d, %H:%M"


def time_axis(fmt: str = AXIS_FORMAT) -> alt.X:
    return alt.X("window_start:T", title=None, axis=alt.Axis(format=fmt, labelOverlap=True, labelFlush=False))


def incident_marks(incidents: pd.DataFrame, members: pd.DataFrame, dimension: str, keys: list[str]) -> pd.DataFrame:
    """The incidents to mark on a chart of ``dimension`` showing ``keys``: those whose root, or one of whose
    member alerts (``members``: id, dimension, key), is one of those keys. In time order, labels take turns
    in lanes (``label_y``) so that neighbours do not hide each other."""
    if incidents.empty:
        return pd.DataFrame(columns=[*MARK_COLUMNS, "label_y"])
    roots = incidents[["id", "root_dimension", "root_key"]].set_axis(["id", "dimension", "key"], axis=1)
    touches = pd.concat([roots, members[["id", "dimension", "key"]]])
    hit = touches[(touches["dimension"] == dimension) & touches["key"].isin(keys)]["id"]
    marks = incidents[incidents["id"].isin(hit)].sort_values(["window_start", "root_key"], kind="stable")
    marks = marks.assign(label="INC " + marks["root_key"].astype(str) + " · " + marks["status"].astype(str))
    marks = marks[MARK_COLUMNS].reset_index(drop=True)
    return marks.assign(label_y=LABEL_TOP - LABEL_STEP * (marks.index % LANES))


def incident_layers(marks: pd.DataFrame, midpoint: pd.Timestamp, tip: str = TIP_FORMAT) -> list[alt.Chart]:
    """A dashed vertical rule at each incident's first window and its label, coloured by status; labels of
    incidents after ``midpoint`` sit left of their rule, so that none runs off the chart."""
    status = alt.Scale(domain=list(INCIDENT_COLOURS), range=list(INCIDENT_COLOURS.values()))
    rule = (
        alt.Chart(marks)
        .mark_rule(strokeWidth=2, strokeDash=[6, 3])
        .encode(
            x="window_start:T",
            stroke=alt.Stroke("status:N", scale=status, legend=alt.Legend(title="incident", orient="right")),
            tooltip=[
                alt.Tooltip("label:N", title="incident"),
                alt.Tooltip("root_dimension:N", title="root"),
                alt.Tooltip("window_start:T", format=tip, title="first window"),
                alt.Tooltip("n_alerts:Q", title="alerts"),
                alt.Tooltip("acknowledged_by:N", title="by"),
            ],
        )
    )
    late = marks["window_start"] > midpoint
    sides: list[LabelSide] = [(marks[~late], "left", 10), (marks[late], "right", -10)]
    labels = [
        alt.Chart(side)
        .mark_text(align=align, baseline="middle", dx=dx, fontWeight="bold", limit=180)
        .encode(x="window_start:T", y="label_y:Q", text="label:N", fill=alt.Fill("status:N", scale=status, legend=None))
        for side, align, dx in sides
        if not side.empty
    ]
    return [rule, *labels]


def ratio_timeline(
    frame: pd.DataFrame,
    alerts: pd.DataFrame,
    title: str,
    incidents: pd.DataFrame | None = None,
    formats: tuple[str, str] = (AXIS_FORMAT, TIP_FORMAT),
) -> alt.LayerChart | alt.FacetChart:
    """Negative ratio per key over time; the spike threshold as a dashed band; alerts as red points;
    incidents (``incident_marks``) as rules with a label at their first window. ``formats``: axis, tooltip."""
    axis, tip = formats
    frame = frame.assign(threshold=frame["threshold"].clip(upper=1.0), baseline=frame["baseline"].clip(upper=1.0))
    base = alt.Chart(frame).encode(x=time_axis(axis))
    band = base.mark_area(opacity=0.12, color="#888").encode(
        y=alt.Y("baseline:Q", title="negative ratio", scale=alt.Scale(domain=[0, 1])), y2="threshold:Q", detail="key:N"
    )
    threshold = base.mark_line(strokeDash=[4, 3], opacity=0.6).encode(
        y="threshold:Q", color=alt.Color("key:N", legend=alt.Legend(title=None, orient="right", labelLimit=160))
    )
    ratio = base.mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        y="negative_ratio:Q",
        color="key:N",
        tooltip=[
            alt.Tooltip("key:N"),
            alt.Tooltip("window_start:T", format=tip, title="time"),
            alt.Tooltip("negative_ratio:Q", format=".0%"),
            alt.Tooltip("threshold:Q", format=".0%"),
            alt.Tooltip("n:Q", title="messages"),
            alt.Tooltip("n_unique:Q", title="unique stories"),
        ],
    )
    layers = [band, threshold, ratio]
    if not alerts.empty:
        spikes = (
            alt.Chart(alerts)
            .mark_point(shape="triangle-up", size=220, filled=True, color="#d62728")
            .encode(
                x="window_start:T",
                y="negative_ratio:Q",
                tooltip=[
                    alt.Tooltip("key:N"),
                    alt.Tooltip("severity:N"),
                    alt.Tooltip("negative_ratio:Q", format=".0%"),
                    alt.Tooltip("threshold:Q", format=".0%"),
                    alt.Tooltip("n:Q"),
                ],
            )
        )
        layers.append(spikes)
    if incidents is not None and not incidents.empty:
        start, end = frame["window_start"].min(), frame["window_start"].max()
        layers.extend(incident_layers(incidents, start + (end - start) / 2, tip))
    return alt.layer(*layers).properties(title=title, height=300)


def volume_bars(frame: pd.DataFrame, title: str, formats: tuple[str, str] = (AXIS_FORMAT, TIP_FORMAT)) -> alt.Chart:
    axis, tip = formats
    return (
        alt.Chart(frame)
        .mark_bar(opacity=0.8)
        .encode(
            x=time_axis(axis),
            y=alt.Y("sum(n):Q", title="messages"),
            color=alt.Color("key:N", legend=None),
            tooltip=[alt.Tooltip("key:N"), alt.Tooltip("window_start:T", format=tip, title="time"), alt.Tooltip("n:Q")],
        )
        .properties(title=title, height=300)
    )


INDEX_PADDING = {"top": 12, "left": 5, "right": 5, "bottom": 5}


def index_timeline(
    frame: pd.DataFrame, title: str, formats: tuple[str, str] = (AXIS_FORMAT, TIP_FORMAT)
) -> alt.LayerChart | alt.FacetChart:
    """Sentiment index per key over time on a fixed [-1, 1] axis, with the neutral line at 0."""
    axis, tip = formats
    base = alt.Chart(frame).encode(x=time_axis(axis))
    line = base.mark_line(point=alt.OverlayMarkDef(size=14)).encode(
        y=alt.Y("sentiment_index:Q", title="sentiment index", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("key:N", legend=None),
        tooltip=[
            alt.Tooltip("key:N"),
            alt.Tooltip("window_start:T", format=tip, title="time"),
            alt.Tooltip("sentiment_index:Q", format="+.2f", title="index"),
            alt.Tooltip("n:Q", title="messages"),
        ],
    )
    neutral = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#888", strokeDash=[2, 2]).encode(y="y:Q")
    # fitted into a short element, a layered chart's title sits past its top edge: room above keeps it whole
    return alt.layer(neutral, line).properties(title=title, height=300, padding=INDEX_PADDING)

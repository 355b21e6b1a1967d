"""The Overview's heatmap of one dimension: rows are keys, columns are windows (or buckets of them), colour the
negative ratio or the sentiment index; cells that raised an alert outlined; incidents marked on the time axis.

A click on a cell selects its row (the ``focus`` selection, on the field ``key``): the page then opens that
key's chart. Times are the viewer's local time (Vega's default), formatted per ``dashboard.timefmt``.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from dashboard.charts import INCIDENT_COLOURS

SELECTION = "focus"
ROW_PX, LANE_PX, LANES = 20, 12, 3
COLOURS = {
    "negative_ratio": ("negative ratio", alt.Scale(scheme="orangered", domain=[0, 1]), ".0%"),
    "sentiment_index": ("sentiment index", alt.Scale(scheme="redblue", domain=[-1, 1], domainMid=0), "+.2f"),
}


@dataclass(frozen=True)
class Layout:
    """What the heatmap shows: its rows in order (their labels), the colour field, and the time formats."""

    rows: list[str]
    labels: dict[str, str]  # key -> row label (a watched ticker gets a star)
    colour: str = "negative_ratio"
    axis_format: str = "%H:%M"
    tip_format: str = "%b %-d, %H:%M"


def cells(frame: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The grid frame cut to the layout's rows, with each row's label."""
    shown = frame[frame["key"].isin(layout.rows) & (frame["n"] > 0)].copy()
    shown["row"] = shown["key"].map(layout.labels)
    return shown


def alerted(frame: pd.DataFrame, alerts: pd.DataFrame, bucket_s: int, layout: Layout) -> pd.DataFrame:
    """The cells that raised an alert: one per (key, column), with the worst severity and how many alerts."""
    if alerts.empty:
        return pd.DataFrame(columns=["key", "row", "bucket", "bucket_end", "alerts", "severity"])
    hit = alerts[alerts["key"].isin(layout.rows)].copy()
    hit["bucket"] = hit["window_start"].dt.floor(f"{bucket_s}s")
    grouped = hit.groupby(["key", "bucket"]).agg(alerts=("severity", "size"), severity=("severity", "max"))
    out = grouped.reset_index()
    out["bucket_end"] = out["bucket"] + pd.Timedelta(seconds=bucket_s)
    out["row"] = out["key"].map(layout.labels)
    return out


def heatmap(
    frame: pd.DataFrame, alerts: pd.DataFrame, marks: pd.DataFrame, bucket_s: int, layout: Layout, title: str
) -> alt.LayerChart:
    """The chart: cells, alert outlines, and incidents as rules with their labels above the rows."""
    label, scale, number = COLOURS[layout.colour]
    order = [layout.labels[k] for k in layout.rows]
    x = alt.X("bucket:T", title=None, axis=alt.Axis(format=layout.axis_format, labelOverlap=True, labelFlush=False))
    y = alt.Y("row:N", sort=order, title=None, axis=alt.Axis(labelLimit=180))
    focus = alt.selection_point(name=SELECTION, fields=["key"], on="click", toggle=False)
    tip = [
        alt.Tooltip("key:N", title="key"),
        alt.Tooltip("bucket:T", format=layout.tip_format, title="from"),
        alt.Tooltip("negative_ratio:Q", format=".0%", title="negative"),
        alt.Tooltip("baseline:Q", format=".0%", title="baseline"),
        alt.Tooltip("threshold:Q", format=".0%", title="threshold"),
        alt.Tooltip("sentiment_index:Q", format="+.2f", title="index"),
        alt.Tooltip("n:Q", title="messages"),
    ]
    grid = (
        alt.Chart(cells(frame, layout))
        .mark_rect(stroke="#ffffff", strokeWidth=0.5)
        .encode(
            x=x,
            x2="bucket_end:T",
            y=y,
            color=alt.Color(f"{layout.colour}:Q", scale=scale, legend=alt.Legend(title=label, format=number)),
            tooltip=tip,
        )
        .add_params(focus)
    )
    layers: list[alt.Chart] = [grid]
    outlined = alerted(frame, alerts, bucket_s, layout)
    if not outlined.empty:
        layers.append(
            alt.Chart(outlined)
            .mark_rect(fillOpacity=0, stroke="#111111", strokeWidth=2)
            .encode(
                x=x,
                x2="bucket_end:T",
                y=y,
                tooltip=[alt.Tooltip("key:N"), alt.Tooltip("alerts:Q"), alt.Tooltip("severity:N", title="worst")],
            )
        )
    status = alt.Scale(domain=list(INCIDENT_COLOURS), range=list(INCIDENT_COLOURS.values()))
    if not marks.empty:
        lanes = marks.assign(lane=[i % LANES for i in range(len(marks))])
        layers.append(
            alt.Chart(lanes)
            .mark_rule(strokeDash=[6, 3], strokeWidth=1.5)
            .encode(
                x="window_start:T",
                stroke=alt.Stroke("status:N", scale=status, legend=alt.Legend(title="incident", orient="bottom")),
            )
        )
        for lane in range(LANES):  # labels above the rows, taking turns in lanes (a fixed pixel height each)
            taken = lanes[lanes["lane"] == lane]
            if taken.empty:
                continue
            layers.append(
                alt.Chart(taken)
                .mark_text(align="left", dx=3, baseline="bottom", fontWeight="bold", limit=220)
                .encode(
                    x="window_start:T",
                    y=alt.value(-4 - LANE_PX * lane),
                    text="label:N",
                    fill=alt.Fill("status:N", scale=status, legend=None),
                    tooltip=[
                        alt.Tooltip("label:N", title="incident"),
                        alt.Tooltip("window_start:T", format=layout.tip_format, title="first window"),
                        alt.Tooltip("n_alerts:Q", title="alerts"),
                        alt.Tooltip("acknowledged_by:N", title="by"),
                    ],
                )
            )
    lanes_px = 0 if marks.empty else LANE_PX * min(LANES, len(marks)) + 6
    return (
        alt.layer(*layers)
        .properties(height=alt.Step(ROW_PX), title=alt.TitleParams(title, offset=lanes_px + 4))
        .configure_view(clip=False)
    )

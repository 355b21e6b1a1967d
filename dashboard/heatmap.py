"""The Overview's heatmap of one dimension: rows are keys, columns are windows (or buckets of them), colour the
negative ratio or the sentiment index; cells that raised an alert outlined; incidents marked on the time axis.

A click on a cell selects its row (the ``focus`` selection, on the field ``key``): the page then opens that
key's chart. Times are the viewer's local time (Vega's default), formatted per ``dashboard.timefmt``.

The spec is written as a Vega-Lite dict, not built with Altair: Altair spends about half a second per chart
validating and hashing its schema objects, three times per Overview and on every refresh. The data go as
named datasets (frames), which Streamlit sends as Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.charts import INCIDENT_COLOURS

SELECTION = "focus"
ROW_PX, LANE_PX, LANES = 20, 12, 3
COLOURS: dict[str, tuple[str, dict[str, Any], str]] = {
    "negative_ratio": ("negative ratio", {"scheme": "orangered", "domain": [0, 1]}, ".0%"),
    "sentiment_index": ("sentiment index", {"scheme": "redblue", "domain": [-1, 1], "domainMid": 0}, "+.2f"),
}
CELL_COLUMNS = ["key", "row", "bucket", "bucket_end", "n", "negative_ratio", "baseline", "threshold", "sentiment_index"]
STATUS_SCALE = {"domain": list(INCIDENT_COLOURS), "range": list(INCIDENT_COLOURS.values())}


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
    return shown[CELL_COLUMNS].reset_index(drop=True)


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


def _tip(field: str, title: str, kind: str = "quantitative", fmt: str | None = None) -> dict[str, Any]:
    return {"field": field, "type": kind, "title": title, **({"format": fmt} if fmt else {})}


def heatmap(
    frame: pd.DataFrame, alerts: pd.DataFrame, marks: pd.DataFrame, bucket_s: int, layout: Layout, title: str
) -> dict[str, Any]:
    """The Vega-Lite spec: cells, alert outlines, and incidents as rules with their labels above the rows."""
    label, scale, number = COLOURS[layout.colour]
    order = [layout.labels[k] for k in layout.rows]
    axis = {"format": layout.axis_format, "labelOverlap": True, "labelFlush": False}
    x = {"field": "bucket", "type": "temporal", "title": None, "axis": axis}
    y = {"field": "row", "type": "nominal", "sort": order, "title": None, "axis": {"labelLimit": 180}}
    span = {"x": x, "x2": {"field": "bucket_end"}, "y": y}
    layers: list[dict[str, Any]] = [
        {
            "name": "cells",
            "data": {"name": "cells"},
            "mark": {"type": "rect", "stroke": "#ffffff", "strokeWidth": 0.5},
            "encoding": {
                **span,
                "color": {
                    "field": layout.colour,
                    "type": "quantitative",
                    "scale": scale,
                    "legend": {"title": label, "format": number},
                },
                "tooltip": [
                    _tip("key", "key", "nominal"),
                    _tip("bucket", "from", "temporal", layout.tip_format),
                    _tip("negative_ratio", "negative", fmt=".0%"),
                    _tip("baseline", "baseline", fmt=".0%"),
                    _tip("threshold", "threshold", fmt=".0%"),
                    _tip("sentiment_index", "index", fmt="+.2f"),
                    _tip("n", "messages"),
                ],
            },
        }
    ]
    datasets: dict[str, pd.DataFrame] = {"cells": cells(frame, layout)}
    outlined = alerted(frame, alerts, bucket_s, layout)
    if not outlined.empty:
        datasets["alerted"] = outlined
        layers.append(
            {
                "data": {"name": "alerted"},
                "mark": {"type": "rect", "fillOpacity": 0, "stroke": "#111111", "strokeWidth": 2},
                "encoding": {
                    **span,
                    "tooltip": [
                        _tip("key", "key", "nominal"),
                        _tip("alerts", "alerts"),
                        _tip("severity", "worst", "nominal"),
                    ],
                },
            }
        )
    if not marks.empty:
        lanes = marks.assign(lane=[i % LANES for i in range(len(marks))])
        datasets["incidents"] = lanes
        layers.append(
            {
                "data": {"name": "incidents"},
                "mark": {"type": "rule", "strokeDash": [6, 3], "strokeWidth": 1.5},
                "encoding": {
                    "x": {"field": "window_start", "type": "temporal"},
                    "stroke": {
                        "field": "status",
                        "type": "nominal",
                        "scale": STATUS_SCALE,
                        "legend": {"title": "incident", "orient": "bottom"},
                    },
                },
            }
        )
        for lane in range(LANES):  # labels above the rows, taking turns in lanes (a fixed pixel height each)
            if not (lanes["lane"] == lane).any():
                continue
            name = f"incidents_{lane}"
            datasets[name] = lanes[lanes["lane"] == lane]
            layers.append(
                {
                    "data": {"name": name},
                    "mark": {"type": "text", "align": "left", "dx": 3, "baseline": "bottom", "fontWeight": "bold"},
                    "encoding": {
                        "x": {"field": "window_start", "type": "temporal"},
                        "y": {"value": -4 - LANE_PX * lane},
                        "text": {"field": "label", "type": "nominal"},
                        "fill": {"field": "status", "type": "nominal", "scale": STATUS_SCALE, "legend": None},
                        "tooltip": [
                            _tip("label", "incident", "nominal"),
                            _tip("window_start", "first window", "temporal", layout.tip_format),
                            _tip("n_alerts", "alerts"),
                            _tip("acknowledged_by", "by", "nominal"),
                        ],
                    },
                }
            )
    lanes_px = 0 if marks.empty else LANE_PX * min(LANES, len(marks)) + 6
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": {"text": title, "offset": lanes_px + 4},
        "height": {"step": ROW_PX},
        "params": [
            {
                "name": SELECTION,
                "select": {"type": "point", "fields": ["key"], "on": "click", "toggle": False},
                "views": ["cells"],
            }
        ],
        "layer": layers,
        "datasets": datasets,
        "config": {"view": {"clip": False}},
    }

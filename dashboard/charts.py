"""Altair charts of the dashboard: negative-ratio timelines with the baseline band, volume, spikes."""

from __future__ import annotations

import altair as alt
import pandas as pd


def ratio_timeline(frame: pd.DataFrame, alerts: pd.DataFrame, title: str) -> alt.LayerChart | alt.FacetChart:
    """Negative ratio per key over time; the spike threshold as a dashed band; alerts as red points."""
    frame = frame.assign(threshold=frame["threshold"].clip(upper=1.0), baseline=frame["baseline"].clip(upper=1.0))
    base = alt.Chart(frame).encode(x=alt.X("window_start:T", title=None))
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
            alt.Tooltip("window_start:T", format="%H:%M:%S"),
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
    return alt.layer(*layers).properties(title=title, height=300)


def volume_bars(frame: pd.DataFrame, title: str) -> alt.Chart:
    return (
        alt.Chart(frame)
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("window_start:T", title=None),
            y=alt.Y("sum(n):Q", title="messages"),
            color=alt.Color("key:N", legend=None),
            tooltip=[alt.Tooltip("key:N"), alt.Tooltip("window_start:T", format="%H:%M:%S"), alt.Tooltip("n:Q")],
        )
        .properties(title=title, height=300)
    )

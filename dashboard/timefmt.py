"""Time as analysts read it: how wide a heatmap column is for a range, axis formats that never print ":45",
times in the viewer's own timezone, and signed numbers that never print "-0.00". Pure: no Streamlit."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_COLUMNS = 96  # a heatmap wider than this stops being readable on a laptop screen
STEPS_S = (
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    4 * 86400,
    7 * 86400,
    14 * 86400,
    28 * 86400,
)


def bucket_seconds(span_s: float, window_s: int) -> int:
    """The narrowest column, a whole number of windows, that shows ``span_s`` in at most ``MAX_COLUMNS`` columns:
    a column is one window wherever the range allows it."""
    window_s = max(1, int(window_s))
    for step in (window_s, *STEPS_S):
        if step >= window_s and step % window_s == 0 and span_s / step <= MAX_COLUMNS:
            return step
    return math.ceil(span_s / MAX_COLUMNS / window_s) * window_s


def axis_format(bucket_s: int, span_s: float) -> str:
    """A d3 time format for the x axis: hours and minutes within a day, the date as well beyond one."""
    if bucket_s >= 86400:
        return "%b %-d"
    if span_s > 86400:
        return "%b %-d %H:%M"
    return "%H:%M:%S" if bucket_s < 60 else "%H:%M"


def tooltip_format(bucket_s: int) -> str:
    if bucket_s >= 86400:
        return "%a %b %-d, %Y"
    return "%b %-d, %H:%M:%S" if bucket_s < 60 else "%b %-d, %H:%M"


def zone(name: str | None) -> tzinfo:
    """The viewer's timezone by IANA name (as the browser reports it); UTC when unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def human(moment: datetime, where: tzinfo, *, seconds: bool = False) -> str:
    """``Jan 5, 14:03`` in the viewer's timezone (an aware datetime in, whatever its zone)."""
    local = moment.astimezone(where)
    return f"{local:%b} {local.day}, {local:%H:%M:%S}" if seconds else f"{local:%b} {local.day}, {local:%H:%M}"


def zone_label(where: tzinfo, at: datetime) -> str:
    """The zone's short name at ``at`` (``UTC``, ``CET``, ``EDT``), for a caption."""
    return at.astimezone(where).strftime("%Z") or str(where)


def signed(value: float | None, digits: int = 2) -> str:
    """``+0.12`` / ``−0.30`` / ``0.00``: no sign on what rounds to zero, a real minus sign otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if round(value, digits) == 0:
        return f"{0:.{digits}f}"
    text = f"{value:+.{digits}f}"
    return "−" + text[1:] if text.startswith("-") else text


def points(value: float | None) -> str:
    """A change of a ratio in percentage points: ``+12 pp``, ``−3 pp``, ``0 pp``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    rounded = round(value * 100)
    return "0 pp" if rounded == 0 else (f"+{rounded} pp" if rounded > 0 else f"−{-rounded} pp")

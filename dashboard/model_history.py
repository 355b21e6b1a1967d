"""Reads of the served-model history (``model_versions``): what the daemons loaded or refused, and why.

Beside ``dashboard.data`` (same cache, same engine per URL); the daemons write the table
(``pipeline.model_history``), the dashboard only reads it through its table definition.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import inspect, select

from dashboard.data import cached, engine_for
from pipeline import tables as t

MODEL_VERSION_COLUMNS = (
    "version",
    "outcome",
    "loaded_at",
    "daemons",
    "sentiment accuracy",
    "sentiment macro-F1",
    "topic accuracy",
    "topic macro-F1",
    "test n (sentiment / topic)",
    "reason",
)


@cached
def model_versions(url: str) -> pd.DataFrame:
    """Models the daemons served or refused, newest first: one row per version and outcome, official test figures.

    ``loaded_at`` is the latest daemon's time (a refusal's for a refused one); ``reason`` its sentence.
    """
    if "model_versions" not in inspect(engine_for(url)).get_table_names():  # a store from before the table
        return pd.DataFrame(columns=list(MODEL_VERSION_COLUMNS))
    m = t.model_versions.c
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(m.version, m.outcome, m.loaded_at, m.daemon, m.reason, m.metrics).order_by(m.loaded_at)
        ).all()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:  # oldest first: the last row of a version and outcome is its latest word
        seen = latest.pop((row.version, row.outcome), {"daemons": set()})
        test = {task: ((row.metrics or {}).get(task) or {}).get("test") or {} for task in ("sentiment", "topic")}
        latest[(row.version, row.outcome)] = {
            "version": row.version,
            "outcome": row.outcome,
            "loaded_at": t.as_utc(row.loaded_at),
            "daemons": seen["daemons"] | {row.daemon},
            **{f"{task} accuracy": test[task].get("accuracy") for task in test},
            **{f"{task} macro-F1": test[task].get("macro_f1") for task in test},
            "test n (sentiment / topic)": f"{test['sentiment'].get('n', '—')} / {test['topic'].get('n', '—')}",
            "reason": row.reason or "",
        }
    frame = pd.DataFrame(list(reversed(latest.values())), columns=list(MODEL_VERSION_COLUMNS))
    frame["daemons"] = frame["daemons"].map(len)
    return frame

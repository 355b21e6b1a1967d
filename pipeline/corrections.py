"""Analysts' corrections as training rows, in the CSV that ``finsent train --extra-data`` reads.

One definition for the dashboard's download and ``finsent feedback-export``: the last correction
of each message wins, and every cell is quoted and neutralised against spreadsheet formulas
(``models.data.write_extra_csv``, whose inverse ``read_extra`` applies).
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from models.data import write_extra_csv
from pipeline import tables as t

Correction = tuple[str, str | None, str | None]  # text, sentiment, topic


def latest_corrections(engine: Engine) -> list[Correction]:
    """(text, sentiment, topic) of each corrected message, by its last correction, oldest first."""
    f = t.feedback.c
    with engine.connect() as conn:
        rows = conn.execute(select(f.message_id, f.text, f.sentiment, f.topic).order_by(f.created_at, f.id)).all()
    latest: dict[str, Correction] = {}
    for row in rows:
        latest.pop(row.message_id, None)  # a later word moves the message to its own time
        latest[row.message_id] = (row.text, row.sentiment, row.topic)
    return list(latest.values())


def training_csv(engine: Engine) -> tuple[str, int]:
    """The corrections as CSV text, and how many rows it holds."""
    rows = latest_corrections(engine)
    return write_extra_csv(rows), len(rows)

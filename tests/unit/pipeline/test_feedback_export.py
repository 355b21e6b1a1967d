"""``finsent feedback-export``: the analysts' corrections as training rows, the dashboard's download byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from models.data import read_extra
from pipeline import migrate
from pipeline import tables as t
from pipeline.corrections import latest_corrections, training_csv
from pipeline.engine import create_store_engine
from tests.unit.pipeline.test_cli import finsent

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
# message id, text, sentiment, topic, minutes after T0: two words on m1 (the later wins), a formula on m3
ROWS = [
    ("m1", "Apple falls after the recall", "neutral", None, 0),
    ("m2", "Tesla beats delivery estimates", "positive", "Earnings", 1),
    ("m1", "Apple falls after the recall", "negative", "Company | Product News", 2),
    ("m3", '=HYPERLINK("https://evil.example") shares slump', "negative", None, 3),
]


def _store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for message_id, text, sentiment, topic, minutes in ROWS:
            conn.execute(
                insert(t.feedback).values(
                    message_id=message_id,
                    text=text,
                    sentiment=sentiment,
                    topic=topic,
                    analyst="dana",
                    created_at=T0 + timedelta(minutes=minutes),
                )
            )
    engine.dispose()
    return url


def test_the_last_correction_of_each_message_wins(tmp_path: Path) -> None:
    engine = create_store_engine(_store(tmp_path))
    assert latest_corrections(engine) == [
        ("Tesla beats delivery estimates", "positive", "Earnings"),
        ("Apple falls after the recall", "negative", "Company | Product News"),
        ('=HYPERLINK("https://evil.example") shares slump', "negative", None),
    ]
    text, n = training_csv(engine)
    engine.dispose()
    assert n == 3 and "\"'=HYPERLINK(" in text, "formula cells are neutralised"


def test_feedback_export_writes_what_train_reads(tmp_path: Path) -> None:
    url = _store(tmp_path)
    out = tmp_path / "feedback.csv"
    result = finsent("feedback-export", "--store", url, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 3 correction(s)" in result.stdout
    rows = read_extra(out)
    assert [r.text for r in rows][2] == '=HYPERLINK("https://evil.example") shares slump'
    engine = create_store_engine(url)
    assert out.read_text(encoding="utf-8") == training_csv(engine)[0]
    engine.dispose()


def test_feedback_export_from_a_store_without_the_table_is_one_sentence(tmp_path: Path) -> None:
    result = finsent("feedback-export", "--store", f"sqlite:///{tmp_path / 'empty.db'}", "-o", str(tmp_path / "f.csv"))
    assert result.returncode == 2
    assert "cannot read the feedback table" in result.stderr and "no such table" in result.stderr
    assert "Traceback" not in result.stderr

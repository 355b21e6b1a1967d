"""Extra training rows (analysts' corrections) never include a test-set text, and the count is reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from models.data import IGNORE, Example, drop_test_texts, load_splits, read_extra, write_extra_csv
from tests.fixtures.tiny_data import write_data_dir


def _first_test_text(data: Path, sub: str, name: str) -> str:
    with (data / sub / name).open(newline="") as fh:
        return next(csv.DictReader(fh))["text"]


TEST_TEXT = "Nvidia plunges after a probe"


@pytest.mark.parametrize(
    ("extra_text", "dropped"),
    [
        ("Nvidia plunges after a probe", 1),
        ("NVIDIA plunges   after a probe", 1),  # case and spaces do not make a new story
        ("Nvidia plunges after a probe https://t.co/x", 1),  # nor does a link
        ("Nvidia plunges after a second probe", 0),
        ("Apple falls falls #1", 0),
    ],
)
def test_drop_test_texts(extra_text: str, dropped: int) -> None:
    rows = [Example(extra_text, sentiment=0), Example("a new text", topic=3)]
    kept, n = drop_test_texts(rows, ["unrelated test text", TEST_TEXT])
    assert n == dropped
    assert [r.text for r in kept] == [extra_text, "a new text"][dropped:]


def test_extra_rows_in_either_test_set_are_dropped_and_counted(tmp_path: Path) -> None:
    data = write_data_dir(tmp_path / "data", n_train=30, n_valid=12)
    in_sentiment_test = _first_test_text(data, "twitter-financial-news-sentiment", "sent_valid.csv")
    in_topic_test = _first_test_text(data, "twitter-financial-news-topic", "topic_valid.csv")
    extra = tmp_path / "feedback.csv"
    extra.write_text(
        write_extra_csv(
            [
                (in_sentiment_test.lower() + " https://t.co/q", "negative", None),  # same story as a test text
                (in_topic_test, None, "Earnings"),
                ("=HYPERLINK(1) Exxon cuts guidance", "negative", "Energy | Oil"),
                ("Chevron names a new chief executive", None, "Personnel Change"),
            ]
        )
    )
    splits = load_splits(data, extra=[extra], limit=4)  # the limit trims the test sets, not the de-duplication
    assert splits.extra_counts == {"read": 4, "kept": 2, "dropped_in_test_sets": 2}
    assert [r.text for r in splits.extra] == [
        "=HYPERLINK(1) Exxon cuts guidance",
        "Chevron names a new chief executive",
    ]
    assert splits.extra[1].sentiment == IGNORE
    assert load_splits(data).extra_counts == {}, "no extra data, nothing to report"


def test_written_csv_reads_back_as_written(tmp_path: Path) -> None:
    rows = [("+1 beat", "positive", ""), ("'=quoted", None, "Dividend"), ('say "hi", twice', "neutral", None)]
    path = tmp_path / "x.csv"
    path.write_text(write_extra_csv(rows))
    assert path.read_text().splitlines()[0] == '"text","sentiment","topic"'
    assert '"\'+1 beat"' in path.read_text(), "formula cells are neutralised on disk"
    back = read_extra(path)
    assert [r.text for r in back] == ["+1 beat", "'=quoted", 'say "hi", twice']


def test_training_summary_reports_the_counts(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training extras (torch) are not installed")
    from models.network import MultiTaskClassifier
    from models.train import TrainConfig, train
    from tests.fixtures.tiny_data import write_tiny_bert

    data = write_data_dir(tmp_path / "data", n_train=30, n_valid=12)
    test_text = _first_test_text(data, "twitter-financial-news-sentiment", "sent_valid.csv")
    extra = tmp_path / "feedback.csv"
    extra.write_text(write_extra_csv([(test_text, "negative", None), ("Intel warns on margins", "negative", None)]))
    splits = load_splits(data, extra=[extra])
    base = write_tiny_bert(tmp_path / "base", [r.text for r in splits.training_rows()])
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"), base_model=str(base), extra_data=[str(extra)], max_steps=1, max_length=16
    )
    summary = train(cfg, splits=splits, model=MultiTaskClassifier.from_config(str(base)))
    assert summary["extra_data"] == {"files": ["feedback.csv"], "read": 2, "kept": 1, "dropped_in_test_sets": 1}
    saved = json.loads((tmp_path / "run" / "best" / "training.json").read_text())
    assert saved["extra_data"]["dropped_in_test_sets"] == 1

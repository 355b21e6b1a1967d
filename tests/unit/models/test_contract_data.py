from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

import models.contract as contract
from models.data import (
    IGNORE,
    DataError,
    Example,
    load_splits,
    map_label,
    read_extra,
    resolve_data_dir,
    split_overlap,
    stratified_split,
)
from tests.fixtures.tiny_data import write_data_dir


def test_contract_labels_and_names() -> None:
    assert contract.SENTIMENT_LABELS == ("negative", "neutral", "positive")
    assert len(contract.TOPIC_LABELS) == 20 == len(set(contract.TOPIC_LABELS))
    assert contract.TOPIC_LABELS[0] == "Analyst Update" and contract.TOPIC_LABELS[19] == "Stock Movement"
    assert contract.INPUT_NAMES == ("input_ids", "attention_mask")
    assert set(contract.DYNAMIC_AXES) == {*contract.INPUT_NAMES, *contract.OUTPUT_NAMES}


def test_contract_imports_no_torch() -> None:
    tree = ast.parse(Path(contract.__file__).read_text())
    imported = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"torch", "transformers"}


@pytest.mark.parametrize(
    ("text", "normalised"),
    [("Apple falls  https://t.co/abc", "Apple falls"), ("a\n\tb", "a b"), ("HTTPS://X.CO/1 Oil", "Oil")],
)
def test_normalize_text(text: str, normalised: str) -> None:
    assert contract.normalize_text(text) == normalised


@pytest.mark.parametrize(("raw", "label"), [("0", "negative"), ("1", "positive"), ("2", "neutral")])
def test_sentiment_label_mapping(raw: str, label: str) -> None:
    assert contract.SENTIMENT_LABELS[map_label("sentiment", raw)] == label


def test_bad_labels_are_refused() -> None:
    with pytest.raises(DataError, match="not one of"):
        map_label("sentiment", "3")
    with pytest.raises(DataError, match="outside"):
        map_label("topic", "20")


def test_stratified_split_is_deterministic_and_keeps_shares() -> None:
    rows = [Example(f"t{i}", topic=i % 4 if i < 300 else 0) for i in range(400)]
    train_a, dev_a = stratified_split(rows, "topic", 0.1, seed=7)
    _train_b, dev_b = stratified_split(rows, "topic", 0.1, seed=7)
    assert [r.text for r in dev_a] == [r.text for r in dev_b]
    assert len(train_a) + len(dev_a) == 400 and not {r.text for r in train_a} & {r.text for r in dev_a}
    assert Counter(r.topic for r in dev_a) == {0: 18, 1: 8, 2: 8, 3: 8}
    _, dev_c = stratified_split(rows, "topic", 0.1, seed=8)
    assert [r.text for r in dev_c] != [r.text for r in dev_a]


def test_overlap_uses_normalised_text() -> None:
    train = [Example("Apple falls https://t.co/1", sentiment=0)]
    test = [Example("APPLE  falls https://t.co/2", sentiment=0), Example("Apple rises", sentiment=2)]
    kept, overlap = split_overlap(train, test)
    assert overlap == 1 and [r.text for r in kept] == ["Apple rises"]


def test_load_splits_from_directory(tmp_path: Path) -> None:
    data = write_data_dir(tmp_path)
    splits = load_splits(data, seed=1)
    assert splits.overlap == {"sentiment": 2, "topic": 2}
    assert len(splits.train["sentiment"]) + len(splits.dev["sentiment"]) == 120
    assert all(r.topic == IGNORE for r in splits.train["sentiment"])
    assert all(r.sentiment == IGNORE for r in splits.train["topic"])


def test_missing_data_dir_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINSENT_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="--data-dir or set FINSENT_DATA_DIR"):
        resolve_data_dir(None)
    with pytest.raises(DataError, match=r"lacks twitter-financial-news-sentiment/sent_train\.csv"):
        resolve_data_dir(tmp_path)


def test_extra_data_csv_and_jsonl(tmp_path: Path) -> None:
    csv_file = tmp_path / "fb.csv"
    csv_file.write_text("text,sentiment,topic\nOil slumps,negative,Energy | Oil\nFed speaks,,Macro\n")
    rows = read_extra(csv_file)
    assert rows[0].sentiment == 0 and rows[0].topic == 6 and rows[1].sentiment == IGNORE
    jsonl = tmp_path / "fb.jsonl"
    jsonl.write_text('{"text": "x", "sentiment": "bullish"}\n')
    with pytest.raises(DataError, match="row 1"):
        read_extra(jsonl)

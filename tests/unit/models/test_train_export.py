"""Train -> export -> parity -> quantise -> evaluate on a tiny random BERT, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training extras (torch) are not installed")

from models.benchmark import batch_dependence  # noqa: E402
from models.card import ModelError, verify_card  # noqa: E402
from models.data import load_splits  # noqa: E402
from models.evaluate import run_evaluation  # noqa: E402
from models.export import export_checkpoint  # noqa: E402
from models.inference import OnnxModel  # noqa: E402
from models.network import MultiTaskClassifier  # noqa: E402
from models.train import TrainConfig, train  # noqa: E402
from tests.fixtures.tiny_data import write_data_dir, write_tiny_bert  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    data = write_data_dir(root / "data")
    splits = load_splits(data, seed=1)
    base = write_tiny_bert(root / "base", [r.text for r in splits.training_rows()])
    cfg = TrainConfig(
        output_dir=str(root / "run"),
        base_model=str(base),
        epochs=2,
        batch_size=16,
        lr=1e-3,
        eval_every=5,
        patience=50,
        max_length=32,
        seed=1,
    )
    summary = train(cfg, splits=splits, model=MultiTaskClassifier.from_config(str(base)))
    assert summary["steps"] > 0
    return root / "run", data


def test_training_writes_log_and_best_checkpoint(trained: tuple[Path, Path]) -> None:
    run, _ = trained
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert records, "every evaluation is logged"
    assert {"step", "sentiment_macro_f1", "topic_macro_f1", "score"} <= set(records[0])
    assert (run / "best" / "model.pt").is_file()
    best = json.loads((run / "best" / "training.json").read_text())["best"]
    assert best["score"] == max(r["score"] for r in records)


def test_export_quantise_evaluate(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = trained
    texts = [r.text for r in load_splits(data).test["topic"]]
    result = export_checkpoint(run / "best", tmp_path / "artifact", texts=texts, version="tiny-1")
    assert result.checks["fp32_max_abs_diff"] <= 1e-4
    assert set(result.checks["int8_vs_fp32_argmax_agreement"]) == {"sentiment", "topic"}
    assert result.checks["int8_activation_scales"].startswith("static")
    card = verify_card(tmp_path / "artifact")
    assert card.version == "tiny-1" and card.precision == "int8"
    model = OnnxModel(tmp_path / "artifact")
    preds = model.predict(["Apple falls", "a much longer text about Tesla rising " * 5, ""])
    assert preds.sentiment.shape == (3, 3) and preds.topic.shape == (3, 20)
    assert abs(float(preds.sentiment.sum(axis=1).max()) - 1.0) < 1e-4
    dependence = batch_dependence(model, texts)
    assert dependence.changed_labels == 0 and dependence.max_prob_diff <= 1e-5, "static scales: one text, one answer"

    results = run_evaluation(tmp_path / "artifact", data, plots_dir=tmp_path / "plots", update_card=True)
    assert results["topic"]["overlap_with_train"] == 2
    assert results["topic"]["test_dedup"]["n"] == results["topic"]["test"]["n"] - 2
    assert (tmp_path / "plots" / "confusion_topic.png").stat().st_size > 1000
    assert verify_card(tmp_path / "artifact").metrics["sentiment"]["test"]["n"] == 40


def test_tampered_artifact_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = trained
    export_checkpoint(run / "best", tmp_path / "a", version="tiny-2")
    with (tmp_path / "a" / "model.int8.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="does not match its card"):
        OnnxModel(tmp_path / "a")

"""The watcher serves a new card only when it passes the gate and the smoke check; a refused card is not retried."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from models.card import SHIPPED_MODEL_DIR, ModelError, read_card
from pipeline.scorer import ModelRefused, ModelWatcher, OnnxScorer, smoke_check


def publish(folder: Path, version: str, change: Any = None) -> None:
    """The shipped card under another version (its metrics changed by ``change``), written atomically."""
    card = json.loads((SHIPPED_MODEL_DIR / "card.json").read_text())
    card["version"] = version
    if change is not None:
        change(card["metrics"])
    (folder / ".card.tmp").write_text(json.dumps(card))
    os.replace(folder / ".card.tmp", folder / "card.json")


@pytest.fixture
def live(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.int8.onnx", "tokenizer.json", "card.json"):
        shutil.copy(SHIPPED_MODEL_DIR / name, folder / name)
    return folder


def watcher_for(folder: Path, max_drop: float = 0.01) -> ModelWatcher:
    card = read_card(folder)
    watcher = ModelWatcher(folder, card.version, 0.001, serving_card=card, max_drop=max_drop, threads=1)
    watcher.next_check = 0.0
    return watcher


def poll(watcher: ModelWatcher) -> OnnxScorer | None:
    watcher.next_check = 0.0
    return watcher.poll()


def worse_sentiment(metrics: dict[str, Any]) -> None:
    metrics["sentiment"]["test_dedup"]["macro_f1"] -= 0.05


def test_an_equal_model_is_swapped_in_and_a_worse_one_refused_once(live: Path) -> None:
    watcher = watcher_for(live)
    assert poll(watcher) is None, "same version: nothing to do"
    publish(live, "v-equal")
    scorer = poll(watcher)
    assert scorer is not None and scorer.version == "v-equal" and watcher.version == "v-equal"
    assert watcher.verdict.startswith(f"accepted against {read_card(SHIPPED_MODEL_DIR).version}")

    publish(live, "v-worse", worse_sentiment)
    with pytest.raises(
        ModelRefused, match=r"v-worse fails the quality gate: its sentiment test_dedup macro-F1 .* v-equal"
    ):
        poll(watcher)
    assert watcher.candidate is not None and watcher.candidate.version == "v-worse"
    assert poll(watcher) is None, "the same card is not tried again"
    assert watcher.version == "v-equal"

    publish(live, "v-fixed")  # a new card: tried again
    assert (scorer := poll(watcher)) is not None and scorer.version == "v-fixed"


def test_a_card_without_test_figures_is_refused(live: Path) -> None:
    watcher = watcher_for(live)
    publish(live, "v-unevaluated", lambda m: m.clear())
    with pytest.raises(ModelRefused, match=r"no test-set figures .*'finsent evaluate"):
        poll(watcher)


def test_a_tolerance_lets_a_small_drop_through(live: Path) -> None:
    watcher = watcher_for(live, max_drop=0.1)
    publish(live, "v-slightly-worse", worse_sentiment)
    assert poll(watcher) is not None


def test_broken_files_are_refused_before_the_gate(live: Path) -> None:
    watcher = watcher_for(live)
    card = json.loads((live / "card.json").read_text())
    card["version"] = "v-broken"
    card["files"]["model.int8.onnx"] = "0" * 64
    (live / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        poll(watcher)


def test_the_smoke_check_passes_on_the_shipped_model() -> None:
    assert smoke_check(OnnxScorer(SHIPPED_MODEL_DIR, threads=1)) is None

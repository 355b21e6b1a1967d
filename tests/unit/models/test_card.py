"""Model files are read once, hashed, and loaded from those bytes; card file names stay in their folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import models.inference as inference
from models.card import SHIPPED_MODEL_DIR, ModelError, VerifiedArtifact, load_verified, sha256_of_bytes, verify_card


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """A copy of the shipped artifact (card, ONNX graph, tokenizer) that a test may tamper with."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("card.json", "model.int8.onnx", "tokenizer.json"):
        shutil.copyfile(SHIPPED_MODEL_DIR / name, folder / name)
    return folder


def edit_card(folder: Path, **changes: object) -> None:
    path = folder / "card.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


@pytest.mark.parametrize(
    "name",
    ["../x", "/etc/passwd", "sub/../../x", "..\\x", "C:\\Windows\\win.ini", "\\\\server\\share\\x", ""],
)
def test_card_names_outside_the_folder_are_refused(artifact: Path, name: str) -> None:
    card = json.loads((artifact / "card.json").read_text())
    edit_card(artifact, files={**card["files"], name: "0" * 64})
    with pytest.raises(ModelError, match="outside its folder"):
        verify_card(artifact)


def test_model_file_named_outside_the_folder_is_refused(artifact: Path, tmp_path: Path) -> None:
    outside = tmp_path / "evil.onnx"
    outside.write_bytes(b"not a model")
    card = json.loads((artifact / "card.json").read_text())
    files = {"../evil.onnx": sha256_of_bytes(b"not a model"), "tokenizer.json": card["files"]["tokenizer.json"]}
    edit_card(artifact, model_file="../evil.onnx", files=files)
    with pytest.raises(ModelError, match=r"names the file '\.\./evil\.onnx', which is outside its folder"):
        verify_card(artifact)


def test_tampered_and_missing_files_are_refused(artifact: Path) -> None:
    (artifact / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match="does not match its card"):
        verify_card(artifact)
    (artifact / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="is missing"):
        verify_card(artifact)


def test_verified_bytes_are_the_files(artifact: Path) -> None:
    loaded = load_verified(artifact)
    assert set(loaded.files) == {loaded.card.model_file, loaded.card.tokenizer_file}
    assert loaded.files["tokenizer.json"] == (artifact / "tokenizer.json").read_bytes()


def test_a_file_swapped_after_the_check_is_never_loaded(artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session and tokenizer come from the hashed bytes, so replacing the files afterwards changes nothing."""

    def verify_then_swap(model: Path) -> VerifiedArtifact:
        verified = load_verified(model)
        (artifact / "model.int8.onnx").write_bytes(b"swapped in after the check")
        (artifact / "tokenizer.json").write_text("{not json")
        return verified

    monkeypatch.setattr(inference, "load_verified", verify_then_swap)
    model = inference.OnnxModel(artifact, threads=1, provider="cpu")
    out = model.predict(["Shares plunge after the profit warning", "Fed holds rates"])
    assert out.sentiment.shape == (2, 3)
    assert (artifact / "model.int8.onnx").read_bytes() == b"swapped in after the check"


def test_a_broken_tokenizer_is_a_model_error(artifact: Path) -> None:
    broken = b"{not json"
    card = json.loads((artifact / "card.json").read_text())
    (artifact / "tokenizer.json").write_bytes(broken)
    edit_card(artifact, files={**card["files"], "tokenizer.json": sha256_of_bytes(broken)})
    with pytest.raises(ModelError, match=r"tokenizer .* cannot be loaded"):
        inference.OnnxModel(artifact, threads=1, provider="cpu")
